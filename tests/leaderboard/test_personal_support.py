"""Shared set-up for the personal-page tests (no tests here): two operators with their own sessions,
rollups and scores, and a real Sign-In with Ethereum through /auth/nonce and /auth/verify."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from eth_account import Account
from eth_account.messages import encode_defunct

from leaderboard import auth, personal_views
from leaderboard.models import OrchestratorAllowlist
from sla.models import Segment
from sla.refresh import refresh
from sla.scores import active_config, compute_window
from tests.conftest import ANCHOR
from tests.sla.rollup_factories import PIPE, SegSpec, insert_fact, make_session, mark_dirty

KEY_A = "0x" + "a1" * 32
KEY_B = "0x" + "b2" * 32
KEY_STRANGER = "0x" + "c3" * 32
ADDR_A = Account.from_key(KEY_A).address.lower()
ADDR_B = Account.from_key(KEY_B).address.lower()
ADDR_STRANGER = Account.from_key(KEY_STRANGER).address.lower()
NOW = ANCHOR + timedelta(hours=1)  # the pages' clock: the 1 h window is [ANCHOR, ANCHOR + 1 h)
HOUR = timedelta(hours=1)


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.now = moment

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(NOW)
    monkeypatch.setattr(auth, "now", c)
    monkeypatch.setattr(personal_views, "now", c)
    return c


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def sign_in(key: str, moment: datetime = NOW) -> Client:
    """A browser that signed in with ``key`` through the real nonce and verify endpoints."""
    account = Account.from_key(key)
    client = Client(enforce_csrf_checks=True)
    assert client.get("/login").status_code == 200  # CSRF cookie
    nonce = client.get("/auth/nonce", {"address": account.address}).json()["nonce"]
    text = "\n".join(
        [
            "testserver wants you to sign in with your Ethereum account:",
            account.address,
            "",
            "Sign in to NaaP Analytics as the operator of this address.",
            "",
            "URI: http://testserver/login",
            "Version: 1",
            "Chain ID: 42161",
            f"Nonce: {nonce}",
            f"Issued At: {_iso(moment)}",
            f"Expiration Time: {_iso(moment + timedelta(minutes=5))}",
        ]
    )
    signature = Account.sign_message(encode_defunct(text=text), private_key=key).signature.hex()
    response = client.post(
        "/auth/verify",
        {"message": text, "signature": "0x" + signature.removeprefix("0x")},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 200, response.content
    return client


def csrf(client: Client) -> str:
    return client.cookies["csrftoken"].value


def post(client: Client, url: str, data: dict[str, str] | None = None):
    return client.post(url, data or {}, HTTP_X_CSRFTOKEN=csrf(client))


def at(minutes: float) -> datetime:
    return ANCHOR + timedelta(minutes=minutes)


def trace(stream: str, when: datetime, trace_type: str, orch: str = "", detail: str = "") -> None:
    insert_fact(
        "telemetry_fact_trace",
        when,
        when,
        gateway="gw-1",
        stream_id=stream,
        request_id="r1",
        pipeline=PIPE,
        trace_type=trace_type,
        orchestrator=orch,
        detail=detail,
    )


def build_network() -> None:
    """A: five good sessions, one failed, one swapped away to B; B: five good sessions of its own.

    Stream ids and GPU ids name their owner, so that a leak shows as a string in a response.
    """
    for a in (ADDR_A, ADDR_B):
        OrchestratorAllowlist.objects.create(address=a)
    fps = {0: [20.0, 20.0, 20.0], 1: [20.0, 20.0, 20.0]}
    for i in range(5):
        make_session(
            f"a-only-{i}",
            request_at=at(5 + i),
            segments=(SegSpec(orchestrator=ADDR_A, gpu_id="gpu-a0", region="eu", p2ff_ms=900.0, fps=fps),),
        )
        make_session(
            f"b-secret-{i}",
            request_at=at(5 + i),
            segments=(
                SegSpec(
                    orchestrator=ADDR_B,
                    gpu_id="gpu-b-secret",
                    region="eu",
                    p2ff_ms=1500.0,
                    fps={0: [30.0, 30.0, 30.0]},
                ),
            ),
        )
    make_session(
        "a-only-failed",
        request_at=at(20),
        segments=(
            SegSpec(
                orchestrator=ADDR_A,
                gpu_id="gpu-a1",
                region="eu",
                started=False,
                ended_cleanly=False,
                error_class="orchestrator",
                p2ff_ms=None,
            ),
        ),
        outcome="failed",
    )
    make_session(
        "shared-swap",
        request_at=at(30),
        segments=(
            SegSpec(
                orchestrator=ADDR_A,
                gpu_id="gpu-a0",
                region="eu",
                swapped_away=True,
                swap_reason="timeout",
                ended_cleanly=False,
                fps={0: [10.0, 10.0, 10.0]},
            ),
            SegSpec(orchestrator=ADDR_B, offset_s=40.0, gpu_id="gpu-b-secret", region="eu", p2ff_ms=1400.0),
        ),
    )
    # The swapped session's traces: A's part, then B's part (which A must not see).
    trace("shared-swap", at(30), "gateway_receive_stream_request")
    trace("shared-swap", at(30) + timedelta(seconds=1), "orchestrator_session_start", orch=ADDR_A)
    trace("shared-swap", at(30) + timedelta(seconds=39), "orchestrator_swap", orch=ADDR_A, detail="timeout")
    trace(
        "shared-swap",
        at(30) + timedelta(seconds=41),
        "b_private_runner_ready",
        orch=ADDR_B,
        detail="b-detail",
    )
    # The factory writes per-minute samples only; give segments their totals as derivation does.
    for seg in Segment.objects.all():
        minutes = list(seg.minutes.all())
        seg.fps_samples = sum(m.samples for m in minutes)
        seg.fps_sum = sum(m.fps_sum for m in minutes)
        seg.save(update_fields=["fps_samples", "fps_sum"])
    mark_dirty(ANCHOR - HOUR, ANCHOR + 2 * HOUR)
    refresh(ANCHOR + 3 * HOUR)
    config = active_config()
    compute_window(config, "1h", NOW, NOW)
    compute_window(config, "24h", NOW, NOW)
