"""Hypothesis strategies the fuzzers share: arbitrary JSON, the values parsers branch on, and a real
document with a few nodes changed or removed anywhere in its tree (a valid-looking payload that gets
past the first checks and into a parser's later steps)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
# Values the parsers branch on (ids of the test assets, type names, counts, times) next to arbitrary ones.
interesting = st.sampled_from(
    [
        *("", "0", "1", "2", "11", "-1", "\u00b2", "\u0661", "1e400", "NaN", "99999999999999999999999999"),
        *("+15550001111", "1234567890", "106540352242922", "3f2a9c1e-1111-2222-3333-444455556666"),
        *("text", "image", "file", "fallback", "sticker", "interactive", "attachment", "typing_stop", "close"),
        *("messages", "page", "whatsapp_business_account", "2026-01-01T09:30:00", "2026-13-01"),
        *("conv-1", "text/plain", "READY", "NOT_READY", "\x00", "a" * 300),
    ]
)
numbers = (
    st.integers()
    | st.floats()
    | st.sampled_from([0, -1, True, False, 2**70, -(2**70), 1e308, 10**400, float("inf"), float("nan")])
)
leaves = st.none() | st.booleans() | numbers | interesting | text
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(interesting | text, children, max_size=4),
    max_leaves=20,
)


def dumps(value: Any, *, ascii_only: bool = True) -> bytes:
    """JSON as a sender may write it: NaN, Infinity and 400-digit numbers included (Python's
    json writes them; a careless sender does too)."""
    return json.dumps(value, ensure_ascii=ascii_only).encode()


def node_paths(document: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every node below the root, as the keys that lead to it."""
    items = (
        document.items() if isinstance(document, dict) else enumerate(document) if isinstance(document, list) else ()
    )
    for key, value in items:
        yield (*prefix, key)
        yield from node_paths(value, (*prefix, key))


def similar(value: Any) -> st.SearchStrategy[Any]:
    """Values of the same JSON type, which get past type checks and into the parser's later steps."""
    if isinstance(value, str):
        return interesting | text
    if isinstance(value, int | float) and not isinstance(value, bool):
        return numbers
    return json_values


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """`document` with zero to three nodes, anywhere in the tree, replaced (mostly by a value of the
    same type, sometimes by arbitrary JSON) or removed. Zero (the valid document) is rare but kept:
    it is what shows a 2xx stores what the document says."""
    copy = json.loads(json.dumps(document))
    changes = 0 if draw(st.integers(0, 9)) == 9 else draw(st.integers(1, 3))
    for _ in range(changes):
        # Deepest first: hypothesis leans to the first choice, and deep fields are the parser's work.
        paths = sorted(node_paths(copy), key=len, reverse=True)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = copy
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["similar", "similar", "arbitrary", "remove"]))
        if action == "remove":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(similar(parent[path[-1]]) if action == "similar" else json_values)
    return copy


def rarely(draw: st.DrawFn) -> bool:
    """True about one time in eight; hypothesis's simplest choice (0) is the common case."""
    return draw(st.integers(0, 7)) == 7
