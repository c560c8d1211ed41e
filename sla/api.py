"""The public read API under ``/v1/sla``: parse parameters, call one query function, serialise.

HTTP behaviour shared by every endpoint here (rate limit, CORS, ETag/304, shared cache) lives in
``sla.http.PublicReadMiddleware``; parameter rules (windows, caps, pages) in ``sla.params``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router
from ninja.errors import HttpError

from sla import queries, shapes
from sla.http import run_db, set_max_age
from sla.names import names_for
from sla.params import (
    DEFAULT_LIMIT,
    INTERVALS,
    PERIODS,
    ParamError,
    ceil_to,
    check_page,
    next_link,
    normalise_address,
    resolve_window,
    time_window,
)
from sla.rollups import Filters
from sla.schemas import (
    ComplianceListOut,
    ComplianceOut,
    DemandInterval,
    DemandOut,
    ErrorOut,
    GpuMetricsOut,
    GpuOut,
    Headline,
    Interval,
    LeaderboardOut,
    LeaderboardRow,
    OrchestratorOut,
    OrchestratorWindow,
    Page,
    Period,
    QualityOut,
    SeriesPoint,
    Subscores,
    WorkflowMetrics,
)

router = Router(tags=["sla"])
ERRORS: dict[int, Any] = {422: ErrorOut, 429: ErrorOut}
SCORE_MAX_AGE_S = 60
QUALITY_MAX_AGE_S = 30
QUALITY_MAX_RANGE = timedelta(days=7)
# Freshness of rollup reads, by bucket width: a 1 m bucket changes every few seconds, a 1 d bucket rarely.
SERIES_MAX_AGE_S: dict[str, int] = {"1m": 5, "5m": 15, "1h": 30, "1d": 60}
ORCHESTRATOR_WINDOWS: dict[str, tuple[timedelta, str]] = {
    "1h": (timedelta(hours=1), "1m"),
    "24h": (timedelta(hours=24), "1h"),
    "7d": (timedelta(days=7), "1h"),
    "30d": (timedelta(days=30), "1d"),
}


def _query_params(request: HttpRequest) -> dict[str, str]:
    return {k: str(request.GET.get(k, "")) for k in request.GET if k not in {"limit", "offset"}}


def _page(request: HttpRequest, limit: int, offset: int, total: int) -> Page:
    return Page(
        limit=limit,
        offset=offset,
        total=total,
        next=next_link(request.path, _query_params(request), limit, offset, total),
    )


def _aware(param: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ParamError(param, "must include a UTC offset, e.g. 2026-01-09T14:00:00Z")
    return value


def _compliance_out(stored: queries.StoredScore) -> ComplianceOut:
    return ComplianceOut(
        orchestrator_id=stored.orchestrator,
        workflow=stored.workflow,
        period=stored.period,  # type: ignore[arg-type]  # stored windows are "1h" | "24h"
        window_start=stored.window_start,
        window_end=stored.window_end,
        score=stored.score,
        subscores=Subscores(
            latency=stored.latency, reliability=stored.reliability, performance=stored.performance
        ),
        inputs=stored.inputs,
        scoring_version=stored.version,
        sufficient=stored.sufficient,
    )


def _number(inputs: dict[str, Any], key: str) -> float | None:
    value = inputs.get(key)
    return float(value) if isinstance(value, int | float) else None


def _headline(stored: queries.StoredScore) -> Headline:
    inputs = stored.inputs
    started = _number(inputs, "started") or 0.0
    effective_ok = _number(inputs, "effective_ok") or 0.0
    streams = _number(inputs, "streams") or 0.0
    swaps = _number(inputs, "swaps") or 0.0
    return Headline(
        output_fps=_number(inputs, "output_fps_mean"),
        prompt_to_first_frame_p95_ms=_number(inputs, "p2ff_p95_ms"),
        effective_success_ratio=effective_ok / started if started else None,
        swap_rate_pct=100.0 * swaps / streams if streams else None,
        sessions=stored.sessions,
    )


@router.get(
    "/compliance",
    response={200: ComplianceListOut, 404: ErrorOut, **ERRORS},
    summary="SLA compliance score of one orchestrator",
    description="The newest stored score per workflow (or for one workflow) over a 1 h or 24 h window, "
    "with subscores, the inputs it was computed from, the scoring version, and whether the sample "
    "reached the minimum size.",
)
async def compliance(
    request: HttpRequest,
    response: HttpResponse,
    orchestrator_id: str,
    period: Period = "24h",
    workflow: str | None = None,
) -> ComplianceListOut:
    return await run_db(_compliance, request, response, orchestrator_id, period, workflow)


def _compliance(
    request: HttpRequest,
    response: HttpResponse,
    orchestrator_id: str,
    period: Period = "24h",
    workflow: str | None = None,
) -> ComplianceListOut:
    address = normalise_address("orchestrator_id", orchestrator_id)
    assert address is not None  # required parameter
    stored = queries.latest_scores_of(address, period, workflow or None)
    if not stored:
        raise HttpError(404, f"no {period} score for orchestrator {address}")
    set_max_age(response, SCORE_MAX_AGE_S)
    return ComplianceListOut(
        orchestrator_id=address, period=period, data=[_compliance_out(s) for s in stored]
    )


@router.get(
    "/leaderboard",
    response={200: LeaderboardOut, **ERRORS},
    summary="Orchestrators ranked by SLA score",
    description="Sufficient scores of the newest scored window, best first. `region` keeps orchestrators "
    "that served sessions in that region during the window. Paginated with `limit`/`offset`.",
)
async def leaderboard(
    request: HttpRequest,
    response: HttpResponse,
    workflow: str | None = None,
    region: str | None = None,
    period: Period = "24h",
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> LeaderboardOut:
    return await run_db(_leaderboard, request, response, workflow, region, period, limit, offset)


def _leaderboard(
    request: HttpRequest,
    response: HttpResponse,
    workflow: str | None = None,
    region: str | None = None,
    period: Period = "24h",
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> LeaderboardOut:
    check_page(limit, offset)
    set_max_age(response, SCORE_MAX_AGE_S)
    window_end = queries.latest_window_end(period, workflow or None)
    if window_end is None:
        return LeaderboardOut(
            period=period,
            workflow=workflow,
            region=region,
            window_start=None,
            window_end=None,
            data=[],
            page=_page(request, limit, offset, 0),
        )
    window_start = window_end - PERIODS[period]
    members = queries.orchestrators_in_region(region, window_start, window_end) if region else None
    ranked = queries.ranked_scores(period, window_end, workflow or None, members)
    chosen = ranked[offset : offset + limit]
    names = names_for({s.orchestrator for s in chosen})
    rows = [
        LeaderboardRow(
            rank=offset + i + 1,
            address=s.orchestrator,
            ens_name=names.get(s.orchestrator),
            workflow=s.workflow,
            score=s.score or 0.0,
            subscores=Subscores(latency=s.latency, reliability=s.reliability, performance=s.performance),
            headline=_headline(s),
            scoring_version=s.version,
        )
        for i, s in enumerate(chosen)
    ]
    return LeaderboardOut(
        period=period,
        workflow=workflow,
        region=region,
        window_start=window_start,
        window_end=window_end,
        data=rows,
        page=_page(request, limit, offset, len(ranked)),
    )


@router.get(
    "/quality",
    response={200: QualityOut, **ERRORS},
    summary="Data-quality figures",
    description="Over events received in [from, to) (default: the last 24 h, at most 7 days): accepted "
    "events per publisher and type, rejected events per publisher and reason, lateness "
    "(received − event time) percentiles overall and per publisher, and each publisher's clock offset.",
)
async def quality(
    request: HttpRequest,
    response: HttpResponse,
    from_: datetime | None = Query(None, alias="from"),  # noqa: B008
    to: datetime | None = None,
) -> QualityOut:
    return await run_db(_quality, request, response, from_, to)


def _quality(
    request: HttpRequest,
    response: HttpResponse,
    from_: datetime | None = None,
    to: datetime | None = None,
) -> QualityOut:
    end = _aware("to", to) or timezone.now()
    start = _aware("from", from_) or end - timedelta(hours=24)
    if start >= end:
        raise ParamError("from", "must be earlier than to")
    if end - start > QUALITY_MAX_RANGE:
        raise ParamError("from", f"range is longer than {QUALITY_MAX_RANGE.days} days")
    figures = queries.quality(start, end)
    set_max_age(response, QUALITY_MAX_AGE_S)
    return QualityOut.model_validate(
        {
            "start": start,
            "end": end,
            "accepted_total": figures.accepted_total,
            "rejected_total": figures.rejected_total,
            "accepted": [vars(c) for c in figures.accepted],
            "rejected": [vars(c) for c in figures.rejected],
            "lag": [vars(lag) for lag in figures.lag],
            "clock_skew": [vars(s) for s in figures.skew],
        }
    )


def _text(value: str | None) -> str | None:
    """An optional text filter: empty means absent."""
    return value.strip() if value and value.strip() else None


@router.get(
    "/gpu/metrics",
    response={200: GpuMetricsOut, 404: ErrorOut, **ERRORS},
    summary="SLA metrics per orchestrator GPU and time bucket",
    description="One row per `interval` bucket × orchestrator × workflow × region × GPU in [from, to) "
    "(aligned outward to the interval; default: the last hours up to now; at most 1,440 buckets), oldest "
    "first, with latency distributions, success ratios with Wilson intervals, failure and swap rates with "
    "their breakdowns, network figures, the labelled CUE proxy and the sample counts behind each number. "
    "An `o_wallet` never seen is 404; a known one with no data in the window gives an empty list.",
)
async def gpu_metrics(
    request: HttpRequest,
    response: HttpResponse,
    o_wallet: str | None = None,
    gpu_id: str | None = None,
    region: str | None = None,
    workflow: str | None = None,
    from_: datetime | None = Query(None, alias="from"),  # noqa: B008
    to: datetime | None = None,
    interval: Interval = "5m",
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> GpuMetricsOut:
    return await run_db(
        _gpu_metrics,
        request,
        response,
        o_wallet,
        gpu_id,
        region,
        workflow,
        from_,
        to,
        interval,
        limit,
        offset,
    )


def _gpu_metrics(
    request: HttpRequest,
    response: HttpResponse,
    o_wallet: str | None = None,
    gpu_id: str | None = None,
    region: str | None = None,
    workflow: str | None = None,
    from_: datetime | None = None,
    to: datetime | None = None,
    interval: Interval = "5m",
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> GpuMetricsOut:
    address = normalise_address("o_wallet", o_wallet)
    check_page(limit, offset)
    window = resolve_window(from_, to, interval, timezone.now())
    if address is not None and not queries.orchestrator_known(address):
        raise HttpError(404, f"orchestrator {address} was never seen")
    filters = Filters(
        orchestrator=address, pipeline=_text(workflow), region=_text(region), gpu_id=_text(gpu_id)
    )
    page = queries.gpu_metric_page(filters, interval, window.start, window.end, limit, offset)
    set_max_age(response, SERIES_MAX_AGE_S[interval])
    return GpuMetricsOut(
        interval=interval,
        start=window.start,
        end=window.end,
        data=[shapes.gpu_row(row, window.step) for row in page.rows],
        page=_page(request, limit, offset, page.total),
    )


@router.get(
    "/network/demand",
    response={200: DemandOut, **ERRORS},
    summary="Network demand and supply per workflow, region and time bucket",
    description="Per `interval` bucket (1 h or 1 d) × workflow × region in [from, to): streams, sessions, "
    "failed sessions, missing capacity, inference minutes (total and by GPU type), advertised capacity and "
    "the capacity rate, fees in wei and ETH (exact decimal strings) and active orchestrators. `gateway` keeps "
    "one gateway's demand; capacity belongs to orchestrators, so it is 0 (rate null) when a gateway is chosen.",
)
async def network_demand(
    request: HttpRequest,
    response: HttpResponse,
    gateway: str | None = None,
    region: str | None = None,
    workflow: str | None = None,
    interval: DemandInterval = "1h",
    from_: datetime | None = Query(None, alias="from"),  # noqa: B008
    to: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> DemandOut:
    return await run_db(
        _network_demand, request, response, gateway, region, workflow, interval, from_, to, limit, offset
    )


def _network_demand(
    request: HttpRequest,
    response: HttpResponse,
    gateway: str | None = None,
    region: str | None = None,
    workflow: str | None = None,
    interval: DemandInterval = "1h",
    from_: datetime | None = None,
    to: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> DemandOut:
    check_page(limit, offset)
    window = resolve_window(from_, to, interval, timezone.now())
    chosen = _text(gateway)
    filters = Filters(gateway=chosen, pipeline=_text(workflow), region=_text(region))
    rows = queries.demand_rows(filters, interval, window.start, window.end)
    set_max_age(response, SERIES_MAX_AGE_S[interval])
    return DemandOut(
        interval=interval,
        start=window.start,
        end=window.end,
        data=[shapes.demand_row(r, window.step, chosen) for r in rows[offset : offset + limit]],
        page=_page(request, limit, offset, len(rows)),
    )


@router.get(
    "/orchestrators/{address}",
    response={200: OrchestratorOut, 404: ErrorOut, **ERRORS},
    summary="One orchestrator: summary and time series",
    description="Over the `window` ending at `to` (default now): newest scores, headline metrics in total "
    "and per workflow (with failure classes and swap reasons), the GPUs it served, and a per-workflow "
    "series whose bucket width follows the window (1h→1m, 24h→1h, 7d→1h, 30d→1d). The address must be a "
    "0x address (ENS names are resolved by the pages, not here); never-seen addresses are 404.",
)
async def orchestrator(
    request: HttpRequest,
    response: HttpResponse,
    address: str,
    window: OrchestratorWindow = "24h",
    to: datetime | None = None,
) -> OrchestratorOut:
    return await run_db(_orchestrator, request, response, address, window, to)


def _orchestrator(
    request: HttpRequest,
    response: HttpResponse,
    address: str,
    window: OrchestratorWindow = "24h",
    to: datetime | None = None,
) -> OrchestratorOut:
    chosen = normalise_address("address", address)
    assert chosen is not None  # path parameter
    length, interval = ORCHESTRATOR_WINDOWS[window]
    end = ceil_to(_aware("to", to) or timezone.now(), INTERVALS[interval])
    if not queries.orchestrator_known(chosen):
        raise HttpError(404, f"orchestrator {chosen} was never seen")
    profile = queries.orchestrator_profile(chosen, length, end, interval)
    set_max_age(response, SERIES_MAX_AGE_S[interval])
    step = INTERVALS[interval]
    return OrchestratorOut(
        address=chosen,
        ens_name=names_for([chosen]).get(chosen),
        window=window,
        start=profile.start,
        end=profile.end,
        latest_scores=[_compliance_out(s) for s in profile.latest_scores],
        metrics=shapes.gpu_metrics(profile.total),
        samples=shapes.sample_counts(profile.total),
        workflows=[
            WorkflowMetrics(
                workflow=r.pipeline, metrics=shapes.gpu_metrics(r), samples=shapes.sample_counts(r)
            )
            for r in profile.by_workflow
        ],
        gpus=[
            GpuOut(
                gpu_id=g.gpu_id,
                gpu_type=g.gpu_type,
                region=g.region,
                workflows=list(g.workflows),
                output_fps=g.output_fps,
                segments=g.segments,
            )
            for g in profile.gpus
        ],
        interval=interval,  # type: ignore[arg-type]  # ORCHESTRATOR_WINDOWS holds Interval values
        series=[
            SeriesPoint(
                time_window=time_window(p.bucket or profile.start, (p.bucket or profile.start) + step),
                workflow=p.pipeline,
                metrics=shapes.gpu_metrics(p),
                samples=shapes.sample_counts(p),
            )
            for p in profile.series
        ],
    )
