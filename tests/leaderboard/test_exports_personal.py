"""Exports of my own sessions and metrics for a chosen window: CSV (streamed) and Parquet (pyarrow)."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.leaderboard.test_personal_support import (
    KEY_A,
    build_network,
    clock,  # noqa: F401  (fixture)
    sign_in,
)
from tests.sla.rollup_factories import PIPE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
MY_STREAMS = sorted([*(f"a-only-{i}" for i in range(5)), "a-only-failed", "shared-swap"])


def test_sessions_export_as_a_streamed_csv():
    build_network()
    response = sign_in(KEY_A).get("/me/export/sessions.csv", {"window": "1h"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="naap-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(r["stream_id"] for r in rows) == MY_STREAMS
    swap = next(r for r in rows if r["stream_id"] == "shared-swap")
    assert (swap["outcome"], swap["swap_reason"], swap["segment"]) == ("swapped", "timeout", "0")
    ok = next(r for r in rows if r["stream_id"] == "a-only-0")
    assert float(ok["p2ff_ms"]) == 900.0 and float(ok["output_fps_mean"]) == 20.0


def test_sessions_export_as_typed_parquet():
    build_network()
    response = sign_in(KEY_A).get("/me/export/sessions.parquet", {"window": "24h"})
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(response.content))
    assert table.num_rows == 7
    assert table.schema.field("request_at").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("p2ff_ms").type == pa.float64()
    assert sorted(table.column("stream_id").to_pylist()) == MY_STREAMS


def test_metrics_export_has_my_buckets_per_gpu_in_both_formats():
    build_network()
    browser = sign_in(KEY_A)
    table = pq.read_table(io.BytesIO(browser.get("/me/export/metrics.parquet", {"window": "1h"}).content))
    rows = table.to_pylist()
    assert {r["gpu_id"] for r in rows} == {"gpu-a0", "gpu-a1"}
    assert {r["pipeline"] for r in rows} == {PIPE}
    assert sum(r["segments"] for r in rows) == 7
    assert sum(r["fps_samples"] for r in rows) == 33
    text = b"".join(browser.get("/me/export/metrics.csv", {"window": "1h"}).streaming_content).decode()
    assert len(list(csv.DictReader(io.StringIO(text)))) == len(rows)


def test_a_bad_window_or_kind_is_refused_clearly():
    build_network()
    browser = sign_in(KEY_A)
    bad = browser.get("/me/export/sessions.csv", {"window": "1y"})
    assert bad.status_code == 400 and "window: one of 1h, 24h, 7d" in bad.content.decode()
    assert browser.get("/me/export/payments.csv").status_code == 404
    assert browser.get("/me/export/sessions.xlsx").status_code == 404
