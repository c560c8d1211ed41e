"""Display names for orchestrator addresses, supplied by whichever app knows them.

``sla`` publishes numbers and never imports the apps built on it (one direction: telemetry → sla →
leaderboard). The leaderboard app owns verified ENS names; it registers its lookup here from its
``AppConfig.ready()``, and the API asks :func:`names_for` without knowing who answers. With no provider
registered (sla on its own, or a deployment without the pages) every address simply has no name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

NameProvider = Callable[[Iterable[str]], dict[str, str]]

_provider: NameProvider | None = None


def set_name_provider(provider: NameProvider | None) -> None:
    """Register the lookup that maps lower-case addresses to names (None removes it)."""
    global _provider  # noqa: PLW0603  (one process-wide registration, made once at start-up)
    _provider = provider


def name_provider() -> NameProvider | None:
    return _provider


def names_for(addresses: Iterable[str]) -> dict[str, str]:
    """Names of those ``addresses`` that have one; ``{}`` when no provider is registered."""
    wanted = sorted(set(addresses))
    if not wanted or _provider is None:
        return {}
    return dict(_provider(wanted))
