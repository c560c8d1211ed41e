"""The single NinjaAPI: one router per app, OpenAPI at /v1/openapi.json, docs at /v1/docs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import ValidationError

from leaderboard.me_api import router as me_router
from sla.api import router as sla_router
from sla.params import ParamError
from telemetry.access.api import router as access_router
from telemetry.api import router as telemetry_router

api = NinjaAPI(
    title="NaaP Analytics API",
    version="1",
    description="Open, reproducible SLA measurements of the Livepeer AI network.",
    urls_namespace="v1",
)
api.add_router("/", telemetry_router)
api.add_router("/sla", sla_router)
api.add_router("/me", me_router)
api.add_router("/access", access_router)


def _param_of(loc: object) -> str:
    """The parameter named by a pydantic error location such as ("query", "interval")."""
    if isinstance(loc, list | tuple):
        parts = [str(p) for p in loc if p not in {"query", "path", "body", "header", "cookie"}]
        return ".".join(parts) or "request"
    return str(loc)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """422 whose ``detail`` names the parameter first ("interval: Input should be ...")."""
    first = exc.errors[0] if exc.errors else {}
    param = _param_of(first.get("loc", ()))
    message = str(first.get("msg", "invalid value"))
    return api.create_response(
        request,
        {"detail": f"{param}: {message}", "param": param, "errors": exc.errors},
        status=422,
    )


@api.exception_handler(ParamError)
def param_error(request: HttpRequest, exc: ParamError) -> HttpResponse:
    return api.create_response(
        request, {"detail": f"{exc.param}: {exc.message}", "param": exc.param}, status=422
    )
