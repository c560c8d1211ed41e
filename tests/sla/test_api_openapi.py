"""The committed OpenAPI schema is the one the code serves, so API changes show in review."""

from __future__ import annotations

from django.test import Client

from sla.management.commands.export_openapi import DEFAULT_PATH, openapi_text


def test_the_committed_openapi_schema_matches_the_code() -> None:
    assert DEFAULT_PATH.read_text() == openapi_text(), "run: python manage.py export_openapi"


def test_the_served_schema_lists_every_sla_endpoint() -> None:
    paths = Client().get("/v1/openapi.json").json()["paths"]
    for endpoint in (
        "gpu/metrics",
        "network/demand",
        "compliance",
        "leaderboard",
        "orchestrators/{address}",
        "quality",
    ):
        assert f"/v1/sla/{endpoint}" in paths, endpoint
        assert set(paths[f"/v1/sla/{endpoint}"]) == {"get"}
    assert "/v1/ingest" in paths
    gpu = paths["/v1/sla/gpu/metrics"]["get"]
    params = {p["name"] for p in gpu["parameters"]}
    assert {"o_wallet", "gpu_id", "region", "workflow", "from", "to", "interval", "limit", "offset"} <= params
    assert {"200", "404", "422", "429"} <= set(gpu["responses"])


def test_interactive_docs_are_served() -> None:
    assert Client().get("/v1/docs").status_code == 200
