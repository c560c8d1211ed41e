"""Scores stored per orchestrator × workflow × window, and reproducible from the raw log."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command

from sla.metrics import wilson_interval
from sla.models import Score, ScoringConfig
from sla.refresh import rebuild_all, refresh
from sla.scores import compute_scores, window_ends_for
from tests.conftest import ANCHOR, ANCHOR_MS
from tests.sla.rollup_factories import ORCH_A, PIPE, SegSpec, make_session, mark_dirty

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


def test_version_one_is_seeded_from_metrics_md() -> None:
    config = ScoringConfig.objects.get(version=1)
    params = config.params()
    assert config.active and params.min_sessions == 5
    assert (params.weight_latency, params.weight_reliability, params.weight_performance) == (0.3, 0.4, 0.3)
    assert (params.latency_zero_multiple, params.jitter_free, params.jitter_span) == (3.0, 0.1, 0.4)


def test_a_stored_score_keeps_subscores_inputs_and_version() -> None:
    # 6 sessions, p2ff 6000 ms (target 4000 → latency 100·(12000−6000)/8000 = 75), fps 15 = target, jitter 0
    for i in range(6):
        make_session(
            f"s{i}",
            request_at=ANCHOR + timedelta(minutes=i),
            segments=(SegSpec(p2ff_ms=6000.0, fps={0: [15.0, 15.0, 15.0]}),),
        )
    mark_dirty(ANCHOR, ANCHOR + HOUR)
    refresh(ANCHOR + HOUR)
    compute_scores([ANCHOR + HOUR], now=ANCHOR + HOUR)
    s = Score.objects.get(orchestrator=ORCH_A, workflow=PIPE, window="1h", window_end=ANCHOR + HOUR)
    reliability = 100 * wilson_interval(6, 6)[0]  # type: ignore[index]
    assert s.sufficient and s.version == 1 and s.sessions == 6
    assert s.latency == pytest.approx(100 * (12000 - 6000) / 8000, abs=3)  # p95 read from the histogram
    assert s.performance == 100.0
    assert s.reliability == pytest.approx(reliability, abs=1e-5)
    assert s.score == pytest.approx(0.3 * s.latency + 0.4 * reliability + 30.0, abs=1e-5)
    assert s.inputs["started"] == 6 and s.inputs["target_p2ff_ms"] == 4000.0


def test_few_sessions_are_stored_as_insufficient_without_a_score() -> None:
    make_session("s0", segments=(SegSpec(fps={0: [20.0] * 3}),))
    mark_dirty(ANCHOR, ANCHOR + HOUR)
    refresh(ANCHOR + HOUR)
    compute_scores([ANCHOR + HOUR], now=ANCHOR + HOUR)
    s = Score.objects.get(window="1h", window_end=ANCHOR + HOUR)
    assert not s.sufficient and s.score is None


def test_changed_ranges_touch_the_hour_windows_that_contain_them() -> None:
    ends = window_ends_for(
        [(ANCHOR + timedelta(minutes=10), ANCHOR + timedelta(minutes=11))], ANCHOR + 2 * HOUR
    )
    assert ends == [ANCHOR + HOUR, ANCHOR + 2 * HOUR]  # capped at the current hour's end


def test_compute_scores_command_scores_the_requested_hours(capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(5):
        make_session(
            f"s{i}", request_at=ANCHOR + timedelta(minutes=i), segments=(SegSpec(fps={0: [20.0] * 3}),)
        )
    mark_dirty(ANCHOR, ANCHOR + HOUR)
    refresh(ANCHOR + HOUR)
    end = (ANCHOR + HOUR).isoformat()
    call_command("compute_scores", "--from", end, "--to", end)
    assert "2 windows, 2 scores, 2 sufficient" in capsys.readouterr().out


def _events() -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    orch = {"address": ORCH_A, "url": "https://o:1"}
    for i in range(6):
        t0 = ANCHOR_MS + i * 120_000
        sid, rid = f"stream-{i}", f"req-{i}"

        def trace(kind: str, at: int, sid: str = sid, rid: str = rid) -> dict[str, object]:
            return {
                "id": f"{sid}-{kind}",
                "type": "stream_trace",
                "timestamp": str(at),
                "gateway": "gw-1",
                "data": {
                    "type": kind,
                    "stream_id": sid,
                    "request_id": rid,
                    "pipeline": PIPE,
                    "orchestrator_info": orch,
                    "timestamp": at,
                },
            }

        events += [
            trace("gateway_receive_stream_request", t0),
            trace("gateway_send_first_ingest_segment", t0 + 300),
            trace("gateway_receive_first_processed_segment", t0 + 1500 + 100 * i),
        ]
        for k in range(4):
            events.append(
                {
                    "id": f"{sid}-st{k}",
                    "type": "ai_stream_status",
                    "timestamp": str(t0 + 2000 + 10_000 * k),
                    "gateway": "gw-1",
                    "data": {
                        "stream_id": sid,
                        "request_id": rid,
                        "pipeline": PIPE,
                        "orchestrator_info": orch,
                        "inference_status": {"fps": 18.0 + k},
                    },
                }
            )
        events.append(trace("gateway_ingest_stream_closed", t0 + 60_000))
    return events


def _clear_rollups() -> None:
    from django.db import connection

    from sla.rollup_defs import ROLLUPS

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join([*ROLLUPS, "sla_refresh_state"]))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_recomputing_from_the_raw_log_reproduces_the_stored_scores_exactly(clean_time_tables: None) -> None:
    try:
        _reproduce()
    finally:
        _clear_rollups()


def _reproduce() -> None:
    from sla.sessions.derive import derive
    from telemetry.pipeline.ingest import Message, ingest_messages
    from telemetry.services import rebuild_facts

    ingest_messages([Message(body=json.dumps(_events()))], source="test", received_at=ANCHOR + 3 * HOUR)
    derive(ANCHOR + 3 * HOUR)
    refresh(ANCHOR + 3 * HOUR)
    compute_scores([ANCHOR + HOUR], now=ANCHOR + 3 * HOUR)
    first = list(
        Score.objects.order_by("orchestrator", "window").values_list(
            "orchestrator",
            "workflow",
            "window",
            "score",
            "latency",
            "reliability",
            "performance",
            "inputs",
            "version",
        )
    )
    assert first and first[0][0] == ORCH_A and first[0][3] is not None

    rebuild_facts(ANCHOR - 24 * HOUR, ANCHOR + 24 * HOUR)
    derive(ANCHOR + 4 * HOUR, rebuild=True)
    rebuild_all(ANCHOR - 24 * HOUR, ANCHOR + 24 * HOUR)
    Score.objects.all().delete()
    compute_scores([ANCHOR + HOUR], now=ANCHOR + 4 * HOUR)
    again = list(
        Score.objects.order_by("orchestrator", "window").values_list(
            "orchestrator",
            "workflow",
            "window",
            "score",
            "latency",
            "reliability",
            "performance",
            "inputs",
            "version",
        )
    )
    assert again == first


def test_the_migration_seed_and_the_code_seed_of_version_one_are_the_same() -> None:
    import importlib

    from sla.scoring_seed import VERSION_1

    migration = importlib.import_module("sla.migrations.0004_scoring")
    assert migration.SEED_V1 == VERSION_1


def test_version_one_is_recreated_when_the_config_table_was_emptied() -> None:
    from sla.scores import active_config

    ScoringConfig.objects.all().delete()
    config = active_config()
    assert config.version == 1 and config.active and config.params().min_sessions == 5
