"""The single NinjaAPI: one router per app, OpenAPI at /v1/openapi.json, docs at /v1/docs."""

from __future__ import annotations

from ninja import NinjaAPI

from telemetry.api import router as telemetry_router

api = NinjaAPI(
    title="NaaP Analytics API",
    version="1",
    description="Open, reproducible SLA measurements of the Livepeer AI network.",
    urls_namespace="v1",
)
api.add_router("/", telemetry_router)
