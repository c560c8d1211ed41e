"""/me is live like the public pages: it subscribes to its orchestrator's stream, and every number a delta
carries has a target on the page (through the real ASGI application and the broadcast task)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from leaderboard.models import OrchestratorAllowlist
from leaderboard.tasks import broadcast_all
from naap_site.asgi import application
from tests.leaderboard.test_personal_support import (
    ADDR_A,
    KEY_A,
    NOW,
    clock,  # noqa: F401  (fixture)
    sign_in,
)

pytestmark = [pytest.mark.usefixtures("clock")]
HEADERS = [(b"origin", b"http://testserver")]


def _live_targets(html: str) -> tuple[set[str], dict[str, float]]:
    """The data-live fields of the /me "Right now" numbers, and the values painted into them."""
    section = html.split('id="me-live"', 1)[1].split("</section>", 1)[0]
    names = set(re.findall(r'data-live="([a-z0-9_]+)"', section))
    values = re.findall(r'data-live="([a-z0-9_]+)" [^>]*?data-value="([^"]*)"', section)
    return names, {name: float(value) for name, value in values}


NOT_SHOWN = {"success_lo", "success_hi"}  # the interval travels too; the public page does not show it live


@pytest.mark.django_db(transaction=True)
def test_me_subscribes_to_its_orchestrator_and_deltas_name_its_numbers(make_score, clean_time_tables):
    OrchestratorAllowlist.objects.create(address=ADDR_A)
    make_score(ADDR_A, 72.5, window="1h", window_end=NOW, fps=21.0, sessions=12)
    page = sign_in(KEY_A).get("/me")
    html = page.content.decode()
    stream = f"orchestrator:{ADDR_A}"
    assert f'data-live-streams="{stream}"' in html
    names, painted = _live_targets(html)
    assert painted["score"] == 72.5 and painted["fps"] == 21.0 and painted["sessions"] == 12

    async def scenario() -> None:
        ws = WebsocketCommunicator(application, "/ws/live", headers=HEADERS)
        assert (await ws.connect())[0]
        await ws.send_json_to({"subscribe": [stream]})
        assert (await ws.receive_json_from(timeout=5)) == {"type": "subscribed", "streams": [stream]}

        assert await sync_to_async(broadcast_all)() == 1
        first = (await ws.receive_json_from(timeout=5))["data"]["rows"]["summary"]
        # the stream's first snapshot is exactly what /me painted, field by field
        assert set(first) - NOT_SHOWN == names
        for field in names:
            assert painted.get(field) == (None if first[field] is None else pytest.approx(first[field]))

        # the next score run: only the numbers that changed travel, and /me has a place for each
        await sync_to_async(make_score)(
            ADDR_A, 91.0, window="1h", window_end=NOW + timedelta(hours=1), fps=27.5, sessions=12
        )
        assert await sync_to_async(broadcast_all)() == 1
        second = (await ws.receive_json_from(timeout=5))["data"]["rows"]["summary"]
        assert second == {"score": 91.0, "fps": 27.5}
        assert set(second) <= names
        await ws.disconnect()

    asyncio.run(scenario())
