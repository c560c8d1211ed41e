"""Exports of the operator's own data for a chosen window: sessions (its segments) and per-bucket metrics,
as CSV (streamed row by row) or Parquet (pyarrow, typed columns).

Rows come only from ``sla.personal`` reads for the signed-in operator's orchestrator.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from leaderboard import personal_views
from sla import personal

Column = tuple[str, pa.DataType, Callable[[Any], Any]]

SESSION_COLUMNS: tuple[Column, ...] = (
    ("stream_id", pa.string(), lambda r: r.stream_id),
    ("request_id", pa.string(), lambda r: r.request_id),
    ("segment", pa.int32(), lambda r: r.ordinal),
    ("gateway", pa.string(), lambda r: r.gateway),
    ("pipeline", pa.string(), lambda r: r.pipeline),
    ("region", pa.string(), lambda r: r.region),
    ("gpu_id", pa.string(), lambda r: r.gpu_id),
    ("gpu_type", pa.string(), lambda r: r.gpu_type),
    ("request_at", pa.timestamp("ms", tz="UTC"), lambda r: r.request_at),
    ("started_at", pa.timestamp("ms", tz="UTC"), lambda r: r.started_at),
    ("ended_at", pa.timestamp("ms", tz="UTC"), lambda r: r.ended_at),
    ("outcome", pa.string(), lambda r: r.outcome),
    ("started", pa.bool_(), lambda r: r.started),
    ("swapped_away", pa.bool_(), lambda r: r.swapped_away),
    ("swap_reason", pa.string(), lambda r: r.swap_reason),
    ("error_class", pa.string(), lambda r: r.error_class),
    ("error_message", pa.string(), lambda r: r.error_message),
    ("p2ff_ms", pa.float64(), lambda r: r.p2ff_ms),
    ("startup_ms", pa.float64(), lambda r: r.startup_ms),
    ("e2e_ms", pa.float64(), lambda r: r.e2e_ms),
    ("output_fps_mean", pa.float64(), lambda r: r.fps_mean),
    ("restarts", pa.int32(), lambda r: r.restart_count),
)

METRIC_COLUMNS: tuple[Column, ...] = (
    ("bucket", pa.timestamp("ms", tz="UTC"), lambda b: b.bucket),
    ("pipeline", pa.string(), lambda b: b.pipeline),
    ("region", pa.string(), lambda b: b.region),
    ("gpu_id", pa.string(), lambda b: b.gpu_id),
    ("gpu_type", pa.string(), lambda b: b.gpu_type),
    ("fps_samples", pa.int64(), lambda b: b.perf.samples if b.perf else 0),
    ("output_fps", pa.float64(), lambda b: b.perf.output_fps if b.perf else None),
    ("jitter_mean", pa.float64(), lambda b: b.perf.jitter_mean if b.perf else None),
    ("output_hours", pa.float64(), lambda b: b.perf.output_hours if b.perf else None),
    ("restarts", pa.int64(), lambda b: b.perf.restarts if b.perf else 0),
    ("segments", pa.int64(), lambda b: b.rel.segments if b.rel else 0),
    ("ended", pa.int64(), lambda b: b.rel.ended if b.rel else 0),
    ("started", pa.int64(), lambda b: b.rel.effective_success.denominator if b.rel else 0),
    ("effective_ok", pa.int64(), lambda b: b.rel.effective_success.numerator if b.rel else 0),
    ("swaps", pa.int64(), lambda b: b.rel.swaps if b.rel else 0),
    ("p2ff_p50_ms", pa.float64(), lambda b: b.rel.p2ff_ms.p50 if b.rel else None),
    ("p2ff_p95_ms", pa.float64(), lambda b: b.rel.p2ff_ms.p95 if b.rel else None),
)

KINDS = ("sessions", "metrics")
FORMATS = ("csv", "parquet")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(columns: tuple[Column, ...], rows: Iterable[Any]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([name for name, _, _ in columns])
    for row in rows:
        yield writer.writerow([_cell(get(row)) for _, _, get in columns])


def parquet_bytes(columns: tuple[Column, ...], rows: Iterable[Any]) -> bytes:
    data: dict[str, list[Any]] = {name: [] for name, _, _ in columns}
    for row in rows:
        for name, _, get in columns:
            data[name].append(get(row))
    schema = pa.schema([(name, kind) for name, kind, _ in columns])
    table = pa.Table.from_pydict(data, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _rows(kind: str, orchestrator: str, window: personal.Window) -> tuple[tuple[Column, ...], Iterable[Any]]:
    if kind == "sessions":
        return SESSION_COLUMNS, personal.iter_segments(orchestrator, window.start, window.end)
    return METRIC_COLUMNS, personal.metric_buckets(orchestrator, window.interval, window.start, window.end)


@require_GET
def export(request: HttpRequest, kind: str, fmt: str) -> HttpResponse | StreamingHttpResponse:
    if kind not in KINDS or fmt not in FORMATS:
        raise Http404("exports are sessions or metrics, as csv or parquet")
    op = personal_views.operator_of(request)
    if op is None:
        return personal_views._login_redirect(request)
    if not op.orchestrator:
        return personal_views._refused(request, op)
    window_name = request.GET.get("window", "24h")
    if window_name not in personal.WINDOWS:
        return HttpResponse(
            f"window: one of {', '.join(personal.WINDOWS)}", status=400, content_type="text/plain"
        )
    window = personal.window_for(window_name, personal_views.now())
    columns, rows = _rows(kind, op.orchestrator, window)
    stamp = window.end.strftime("%Y%m%dT%H%MZ")
    filename = f"naap-{op.orchestrator[:10]}-{kind}-{window_name}-{stamp}.{fmt}"
    disposition = f'attachment; filename="{filename}"'
    response: HttpResponse | StreamingHttpResponse
    if fmt == "csv":
        response = StreamingHttpResponse(csv_lines(columns, rows), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(parquet_bytes(columns, rows), content_type="application/vnd.apache.parquet")
    response["Content-Disposition"] = disposition
    response["Cache-Control"] = "private, no-store"
    return response
