"""Who served a session: signing address or URL → on-chain address, and the GPU/region of an address.

Lookups take the latest mapping at or before the moment asked; when there is none yet they take the
earliest mapping seen no later than ``limit`` (the session's last event), so that an orchestrator whose
capabilities were first advertised a little after the session began is still resolved, and so that facts
about times after a session's last event never change it (which makes incremental derivation exact).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from telemetry.queries import HardwarePoint, IdentityPoint


def _lookup(times: list[datetime], values: list[str], at: datetime, limit: datetime) -> str | None:
    i = bisect_right(times, at)
    if i > 0:
        return values[i - 1]
    if times and times[0] <= limit:
        return values[0]
    return None


@dataclass(frozen=True, slots=True)
class Hardware:
    gpu_id: str = ""
    gpu_type: str = ""
    region: str = ""


@dataclass
class _Series:
    times: list[datetime] = field(default_factory=list)
    values: list[str] = field(default_factory=list)


@dataclass
class IdentityBook:
    """Change points of the identity and hardware mappings, loaded for the keys a chunk needs."""

    signing: dict[str, _Series] = field(default_factory=dict)
    urls: dict[str, _Series] = field(default_factory=dict)
    hardware: dict[str, list[HardwarePoint]] = field(default_factory=dict)

    def add_signing(self, points: Iterable[IdentityPoint]) -> None:
        _add(self.signing, points)

    def add_urls(self, points: Iterable[IdentityPoint]) -> None:
        _add(self.urls, points)

    def add_hardware(self, points: Iterable[HardwarePoint]) -> None:
        for p in points:
            self.hardware.setdefault(p.address, []).append(p)

    def on_chain(self, signing_address: str, at: datetime, limit: datetime) -> str:
        """The on-chain address of a signing address; the address itself when no mapping is known."""
        series = self.signing.get(signing_address)
        if series is None:
            return signing_address
        found = _lookup(series.times, series.values, at, limit)
        return signing_address if found is None else found

    def by_url(self, url: str, at: datetime, limit: datetime) -> str:
        """The on-chain address advertised at ``url``; "" when unknown."""
        series = self.urls.get(url)
        if series is None:
            return ""
        return _lookup(series.times, series.values, at, limit) or ""

    def hardware_of(self, address: str, pipeline: str, at: datetime, limit: datetime) -> Hardware:
        """GPU of the latest advertisement for ``pipeline`` (the events' pipeline names the model, so it
        matches the capability's pipeline or model id; else any pipeline); region preferably from
        NaaP orch.health rows."""
        points = self.hardware.get(address)
        if not points:
            return Hardware()
        gpu = _pick(
            points, at, limit, lambda p: p.gpu_id != "" and pipeline in (p.pipeline, p.model_id)
        ) or _pick(points, at, limit, lambda p: p.gpu_id != "" or p.gpu_type != "")
        region = _pick(points, at, limit, lambda p: p.region != "" and p.origin == "naap") or _pick(
            points, at, limit, lambda p: p.region != ""
        )
        return Hardware(
            gpu_id=gpu.gpu_id if gpu else "",
            gpu_type=gpu.gpu_type if gpu else "",
            region=region.region if region else "",
        )


def _add(target: dict[str, _Series], points: Iterable[IdentityPoint]) -> None:
    for p in points:
        series = target.setdefault(p.key, _Series())
        series.times.append(p.event_time)
        series.values.append(p.address)


def _pick(
    points: list[HardwarePoint], at: datetime, limit: datetime, wanted: Callable[[HardwarePoint], bool]
) -> HardwarePoint | None:
    """Latest matching point at or before ``at``, else the earliest matching one up to ``limit``."""
    before: HardwarePoint | None = None
    earliest_after: HardwarePoint | None = None
    for p in points:  # ordered by (event_time, dedup_key, ord)
        if not wanted(p):
            continue
        if p.event_time <= at:
            before = p
        elif earliest_after is None and p.event_time <= limit:
            earliest_after = p
    return before or earliest_after
