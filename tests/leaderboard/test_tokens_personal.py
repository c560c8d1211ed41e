"""Private API tokens: created with a name, shown once, stored hashed, revocable; /v1/me routes read the
token owner's own sessions, errors and scores; a revoked or unknown token gets 401."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from leaderboard.models import ApiToken
from tests.leaderboard.test_personal_support import (
    ADDR_A,
    KEY_A,
    NOW,
    build_network,
    clock,  # noqa: F401  (fixture)
    post,
    sign_in,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


def create_token(browser: Client, name: str) -> str:
    assert post(browser, "/me/tokens", {"name": name}).status_code == 303
    page = browser.get("/me")
    new = page.context["new_token"]
    assert new["name"] == name
    return str(new["secret"])


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_token_is_shown_once_and_stored_only_as_a_hash():
    build_network()
    browser = sign_in(KEY_A)
    secret = create_token(browser, "grafana")
    assert secret.startswith("naap_") and len(secret) > 40
    assert browser.get("/me").context["new_token"] is None  # not shown a second time
    (row,) = ApiToken.objects.all()
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {row.digest, row.prefix, row.name} and secret.startswith(row.prefix)
    assert (row.orchestrator, row.created_by) == (ADDR_A, ADDR_A)
    assert "grafana" in browser.get("/me").content.decode()


def test_the_token_reads_my_sessions_errors_and_scores():
    build_network()
    secret = create_token(sign_in(KEY_A), "cli")
    api = Client()

    sessions = api.get("/v1/me/sessions", {"window": "1h"}, **bearer(secret))
    assert sessions.status_code == 200, sessions.content
    assert sessions["Cache-Control"] == "private, no-store"
    body = sessions.json()
    assert body["orchestrator"] == ADDR_A and body["total"] == 7
    ids = sorted(s["stream_id"] for s in body["sessions"])
    assert ids == sorted([*(f"a-only-{i}" for i in range(5)), "a-only-failed", "shared-swap"])
    swap = next(s for s in body["sessions"] if s["stream_id"] == "shared-swap")
    assert (swap["outcome"], swap["swap_reason"], swap["segment"]) == ("swapped", "timeout", 0)

    page = api.get("/v1/me/sessions", {"window": "1h", "limit": 2, "offset": 1}, **bearer(secret)).json()
    assert page["total"] == 7 and len(page["sessions"]) == 2

    errors = api.get("/v1/me/errors", {"window": "1h"}, **bearer(secret)).json()
    assert [(e["stream_id"], e["error_class"], e["outcome"]) for e in errors["errors"]] == [
        ("a-only-failed", "orchestrator", "failed")
    ]

    scores = api.get("/v1/me/scores", {"window": "1h"}, **bearer(secret)).json()["scores"]
    assert {(s["period"], s["window_end"][:16]) for s in scores} == {
        ("1h", NOW.isoformat()[:16]),
        ("24h", NOW.isoformat()[:16]),
    }
    assert all(s["inputs"]["sessions"] == 7 for s in scores)
    assert ApiToken.objects.get().last_used_at is not None


def test_a_revoked_missing_or_unknown_token_gets_401():
    build_network()
    browser = sign_in(KEY_A)
    secret = create_token(browser, "old")
    api = Client()
    assert api.get("/v1/me/sessions").status_code == 401
    assert api.get("/v1/me/sessions", **bearer("naap_" + "x" * 43)).status_code == 401
    assert api.get("/v1/me/sessions", **bearer(secret)).status_code == 200

    token = ApiToken.objects.get()
    assert browser.post(f"/me/tokens/{token.id}/revoke").status_code == 403  # CSRF refused
    assert post(browser, f"/me/tokens/{token.id}/revoke").status_code == 303
    for route in ("/v1/me/sessions", "/v1/me/errors", "/v1/me/scores"):
        assert api.get(route, **bearer(secret)).status_code == 401
    assert post(browser, f"/me/tokens/{token.id}/revoke").status_code == 404  # already revoked


def test_a_token_needs_a_name_and_a_bad_window_is_a_clear_422():
    build_network()
    browser = sign_in(KEY_A)
    response = post(browser, "/me/tokens", {"name": "  "})
    assert response.status_code == 400
    assert "a token needs a name" in response.content.decode()
    secret = create_token(browser, "ok")
    bad = Client().get("/v1/me/sessions", {"window": "2y"}, **bearer(secret))
    assert bad.status_code == 422 and bad.json()["param"] == "window"
