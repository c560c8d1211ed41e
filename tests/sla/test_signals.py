from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sla.signals import refresh_completed
from sla.tasks import run_pipeline
from tests.conftest import ANCHOR
from tests.sla.rollup_factories import SegSpec, make_session, mark_dirty

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


def test_a_refresh_that_changed_rollups_announces_its_ranges_after_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    received: list[dict[str, Any]] = []

    def listener(sender: object, **kwargs: Any) -> None:
        received.append(kwargs)

    refresh_completed.connect(listener)
    try:
        make_session("s0", segments=(SegSpec(fps={0: [20.0] * 3}),))
        mark_dirty(ANCHOR, ANCHOR + HOUR)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            run_pipeline(ANCHOR + HOUR)
        assert received == []  # nothing is announced before the commit
        for callback in callbacks:
            callback()
    finally:
        refresh_completed.disconnect(listener)
    assert len(received) == 1
    assert any(start <= ANCHOR < end for start, end in received[0]["ranges"])


def test_a_refresh_with_nothing_new_announces_nothing(django_capture_on_commit_callbacks: Any) -> None:
    received: list[object] = []
    refresh_completed.connect(lambda sender, **kw: received.append(kw), weak=False, dispatch_uid="t2")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run_pipeline(ANCHOR + HOUR)
    finally:
        refresh_completed.disconnect(dispatch_uid="t2")
    assert received == []


def test_a_completed_refresh_drops_cached_public_responses(client: Any) -> None:
    from sla.http import _cache_get, _cache_put, response_cache_key

    key = response_cache_key("/v1/sla/leaderboard", "period=1h")
    other = "unrelated:key"
    _cache_put(key, b"stale", 60)
    _cache_put(other, b"keep", 60)
    refresh_completed.send(sender=object, ranges=[], scores=0)
    assert _cache_get(key) is None
    assert _cache_get(other) == b"keep"
