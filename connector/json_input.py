"""JSON from outside (webhooks, the ECE callback, the agent API, the REST API), parsed so that no
body can take the process down.

`json.loads` recurses once per nesting level: `[[[[…` 100,000 levels deep (200 kB, well under the
body limit) raises RecursionError, which is not a ValueError, so every caller that refuses
malformed JSON with `except ValueError` would answer 500. Here it is a ValueError like any other
malformed body, and nesting deeper than MAX_DEPTH is refused too, so a document just under the
interpreter's limit cannot blow the stack later, when the connector copies or re-serialises it.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Request
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

MAX_DEPTH = 64
"""Nesting levels a body may have: providers' and ECE's documents use about ten."""


class NestedTooDeeply(json.JSONDecodeError):
    """A JSONDecodeError (hence a ValueError), so every `except ValueError` refuses it as malformed."""

    def __init__(self) -> None:
        # A non-empty `doc`: webargs reads an empty one as "no body" rather than a malformed one.
        super().__init__(f"JSON nested deeper than {MAX_DEPTH} levels", "(body)", 0)

    def __str__(self) -> str:
        return self.msg


def loads(raw: str | bytes | bytearray) -> Any:
    """`json.loads`, raising ValueError (never RecursionError) for documents nested too deeply."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise NestedTooDeeply() from None
    _check_depth(value)
    return value


def refusal(error: ValueError) -> str:
    """What a 400 says of a body `loads` refused (a decoder's position means little to a sender)."""
    return f"body is not valid JSON: {error}" if isinstance(error, NestedTooDeeply) else "body is not valid JSON"


def _check_depth(value: Any) -> None:
    """Iterative (a recursive walk would fail the way the parser did), and stops at the first
    container past MAX_DEPTH."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            raise NestedTooDeeply()
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON with `loads` above: `request.get_json()` refuses (400, or None when silent)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


class ArgumentsParser(FlaskParser):
    """webargs' parser of the REST API's bodies, with `loads` above (webargs answers 400 for it)."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):  # webargs' own rule: a body of another type is "missing"
            return core.missing
        return loads(req.get_data(cache=True))
