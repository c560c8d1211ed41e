"""The contract examples (telemetry/contracts/examples/*.json) as test data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "telemetry" / "contracts" / "examples"


def example_files() -> list[Path]:
    return sorted(EXAMPLES_DIR.glob("*.json"))


def examples(event_type: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((EXAMPLES_DIR / f"{event_type}.json").read_text())
    return data


def all_examples() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in example_files():
        out.extend(json.loads(path.read_text()))
    return out
