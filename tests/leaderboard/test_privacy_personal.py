"""Privacy: two operators signed in through real SIWE. No /me page, export or /v1/me route shows one
operator's private data to the other, and neither can act on the other's alerts or tokens."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from django.test import Client

from leaderboard import alerts
from leaderboard.models import ApiToken, PersonalAlert
from tests.leaderboard.test_personal_support import (
    ADDR_A,
    ADDR_B,
    KEY_A,
    KEY_B,
    build_network,
    clock,  # noqa: F401  (fixture)
    post,
    sign_in,
)
from tests.sla.rollup_factories import PIPE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

# Strings that exist only in B's private data (its own sessions, GPU, traces, alert and token).
B_ONLY = (
    "b-secret-",
    "gpu-b-secret",
    "b_private_runner_ready",
    "b-detail",
    "b-alert-name",
    "b-token-name",
    "b-hook.example",
)
A_ONLY = ("a-only-", "gpu-a0", "gpu-a1", "a-alert-name", "a-token-name", "a-hook.example")


def _setup() -> tuple[Client, Client, str, str]:
    build_network()
    a, b = sign_in(KEY_A), sign_in(KEY_B)
    for browser, who in ((a, "a"), (b, "b")):
        form = {
            "name": f"{who}-alert-name",
            "metric": "score",
            "workflow": PIPE,
            "period": "1h",
            "threshold": "50",
            "webhook_url": f"https://{who}-hook.example/x",
        }
        assert post(browser, "/me/alerts", form).status_code == 303
        assert post(browser, "/me/tokens", {"name": f"{who}-token-name"}).status_code == 303
    token_a = a.get("/me").context["new_token"]["secret"]
    token_b = b.get("/me").context["new_token"]["secret"]
    return a, b, token_a, token_b


def _leaks(text: str, forbidden: tuple[str, ...]) -> list[str]:
    return [s for s in forbidden if s in text]


def _everything(browser: Client, token: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for window in ("1h", "24h", "7d"):
        out[f"page {window}"] = browser.get("/me", {"window": window}).content.decode()
        for kind in ("sessions", "metrics"):
            csv = browser.get(f"/me/export/{kind}.csv", {"window": window})
            out[f"{kind}.csv {window}"] = b"".join(csv.streaming_content).decode()
            parquet = browser.get(f"/me/export/{kind}.parquet", {"window": window}).content
            out[f"{kind}.parquet {window}"] = str(pq.read_table(io.BytesIO(parquet)).to_pylist())
        for route in ("sessions", "errors", "scores"):
            response = Client().get(
                f"/v1/me/{route}", {"window": window}, HTTP_AUTHORIZATION=f"Bearer {token}"
            )
            assert response.status_code == 200
            out[f"/v1/me/{route} {window}"] = response.content.decode()
    return out


def test_no_page_export_or_api_route_of_one_operator_shows_the_others_private_data():
    a, b, token_a, token_b = _setup()
    seen_by_a = _everything(a, token_a)
    seen_by_b = _everything(b, token_b)
    assert {k: _leaks(v, B_ONLY) for k, v in seen_by_a.items() if _leaks(v, B_ONLY)} == {}
    assert {k: _leaks(v, A_ONLY) for k, v in seen_by_b.items() if _leaks(v, A_ONLY)} == {}
    # ... while each sees its own data (so the check above is not vacuous).
    assert "a-only-failed" in seen_by_a["page 1h"] and "a-alert-name" in seen_by_a["page 1h"]
    assert "b-secret-0" in seen_by_b["sessions.csv 1h"] and "b-token-name" in seen_by_b["page 24h"]
    assert '"orchestrator":"' + ADDR_A + '"' in seen_by_a["/v1/me/sessions 1h"].replace(" ", "")
    # The session both served shows for each, each with only its own segment and timeline.
    assert "b-detail" not in seen_by_a["page 1h"] and "orchestrator_swap" in seen_by_a["page 1h"]
    assert "shared-swap" in seen_by_b["sessions.csv 1h"]


def test_a_token_of_one_operator_reads_only_that_operators_data():
    _, _, token_a, token_b = _setup()
    api = Client()
    mine = api.get("/v1/me/sessions", {"window": "1h"}, HTTP_AUTHORIZATION=f"Bearer {token_a}").json()
    theirs = api.get("/v1/me/sessions", {"window": "1h"}, HTTP_AUTHORIZATION=f"Bearer {token_b}").json()
    assert (mine["orchestrator"], theirs["orchestrator"]) == (ADDR_A, ADDR_B)
    assert not {s["stream_id"] for s in mine["sessions"]} & {f"b-secret-{i}" for i in range(5)}
    assert {s["stream_id"] for s in theirs["sessions"]} == {
        *(f"b-secret-{i}" for i in range(5)),
        "shared-swap",
    }
    # No parameter lets a token choose another orchestrator.
    other = api.get(
        "/v1/me/sessions", {"orchestrator": ADDR_B}, HTTP_AUTHORIZATION=f"Bearer {token_a}"
    ).json()
    assert other["orchestrator"] == ADDR_A


def test_one_operator_cannot_test_delete_or_revoke_the_others_alerts_and_tokens():
    a, b, _, token_b = _setup()
    b_alert = PersonalAlert.objects.get(orchestrator=ADDR_B)
    b_token = ApiToken.objects.get(orchestrator=ADDR_B)
    assert post(a, f"/me/alerts/{b_alert.id}/test").status_code == 404
    assert post(a, f"/me/alerts/{b_alert.id}/delete").status_code == 404
    assert post(a, f"/me/tokens/{b_token.id}/revoke").status_code == 404
    assert PersonalAlert.objects.filter(id=b_alert.id).exists()
    assert not b_alert.deliveries.exists()
    assert ApiToken.objects.get(id=b_token.id).revoked_at is None
    assert Client().get("/v1/me/scores", HTTP_AUTHORIZATION=f"Bearer {token_b}").status_code == 200
    assert alerts.alert_of(ADDR_A, b_alert.id) is None


def test_signing_out_ends_access_to_the_personal_pages():
    a, _, _, _ = _setup()
    assert post(a, "/auth/logout").status_code == 302
    assert a.get("/me").status_code == 302
    assert a.get("/me/export/sessions.csv").status_code == 302
