"""Hypothesis strategies for hostile registry documents: any JSON value, drawn often from what a
careless or hostile writer puts where a number belongs (1e400 and Infinity read as inf, NaN,
numbers as text, booleans, other digits), and a way to put one at any place in a document.

The property the tests state over them holds for any parser of a registry document (today's
hand-written ones, or one JSON Schema per document): a document either reads as a valid
document or is refused with a ValueError, never another exception.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

HOSTILE = [float("inf"), float("-inf"), float("nan"), 0, -1, 1, 99, 100, 50.9, 2**70, 10**400]
HOSTILE += [True, False, "12", "١٢", "50", "", "1e400", "Infinity", None, [], {}]

JSON_SCALARS = (
    st.sampled_from(HOSTILE)
    | st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-3, max_value=300)
    | st.floats()  # NaN and +-inf included
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def places(document: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in `document` a value can go: each key and index, at every depth, and a new
    key in each object."""
    found = []
    if isinstance(document, dict):
        found.append((*prefix, "unknown"))
        items = document.items()
    elif isinstance(document, list):
        items = enumerate(document)
    else:
        return found
    for key, value in items:
        found.append((*prefix, key))
        found += places(value, (*prefix, key))
    return found


def with_value(document: Any, place: tuple, value: Any) -> Any:
    """A copy of `document` with `value` at `place`."""
    document = json.loads(json.dumps(document))
    target = document
    for step in place[:-1]:
        target = target[step]
    target[place[-1]] = value
    return document
