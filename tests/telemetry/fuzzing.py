"""Hypothesis strategies shared by the fuzz tests: arbitrary JSON and mutations of the real examples."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from tests.telemetry.examples import all_examples

EXAMPLES = all_examples()

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "0x", "1767966802512", "1767966892.05", "2400000000000000 WEI", "1e999", "NaN"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


_DELETE = object()


@st.composite
def mutated_examples(draw: st.DrawFn) -> Any:
    """A real example with one to three of its values replaced by arbitrary JSON or removed."""
    event = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(event)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        target: Any = event
        try:
            for key in path[:-1]:
                target = target[key]
            replacement = draw(st.just(_DELETE) | json_values)
            if replacement is _DELETE and isinstance(target, dict):
                del target[path[-1]]
            elif replacement is not _DELETE:
                target[path[-1]] = replacement
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the path
    return event
