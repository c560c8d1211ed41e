"""Serve Plotly's browser bundle straight out of the installed Python ``plotly`` package.

The file is never copied into git and never fetched from a CDN: ``{% static "vendor/plotly.min.js" %}``
finds ``plotly/package_data/plotly.min.js`` of whatever plotly version is installed, both under
``runserver``/ASGI static serving and for ``collectstatic``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.contrib.staticfiles.utils import matches_patterns
from django.core.checks import CheckMessage
from django.core.checks import Error as CheckError
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor"
FILES = ("plotly.min.js",)


def plotly_package_data() -> Path | None:
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "package_data"


class PlotlyFinder(BaseFinder):
    """Finds ``vendor/plotly.min.js`` in the installed plotly package."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.root = plotly_package_data()
        self.storage = FileSystemStorage(location=str(self.root) if self.root else None)
        self.storage.prefix = PREFIX  # type: ignore[attr-defined]  # collectstatic reads it

    def check(self, **kwargs: Any) -> list[CheckMessage]:
        if self.root is None or not (self.root / FILES[0]).is_file():
            return [
                CheckError("plotly.min.js not found: is the plotly package installed?", id="leaderboard.E001")
            ]
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:  # str | list[str]
        find_all = find_all or bool(kwargs.get("all", False))
        if self.root is not None:
            for name in FILES:
                if path == f"{PREFIX}/{name}":
                    full = self.root / name
                    if full.is_file():
                        return [str(full)] if find_all else str(full)
        return [] if find_all else ""

    def list(self, ignore_patterns: Iterable[str] | None) -> Iterator[tuple[str, FileSystemStorage]]:
        if self.root is None:
            return
        for name in FILES:
            if (self.root / name).is_file() and not matches_patterns(name, list(ignore_patterns or [])):
                yield name, self.storage
