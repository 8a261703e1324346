"""Whatever a provider (or anyone) sends, a webhook answers 2xx/4xx, never 5xx, and no parser crashes.

Bodies are arbitrary bytes, arbitrary JSON, or real fixtures with one subtree replaced or removed;
many carry a valid signature, so the parsers (not just the signature checks) are exercised.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.channels.base import InboundEvent
from connector.store import keys

from .signing import (
    FIXTURES,
    FORM,
    PUBLIC_BASE_URL,
    apple_token,
    asset,
    fixture_json,
    inapp_signature,
    meta_signature,
    twilio_signature,
)

PATHS = {
    "sms": "/webhooks/sms/test-sms",
    "messenger": "/webhooks/messenger/test-messenger",
    "whatsapp": "/webhooks/whatsapp/test-whatsapp",
    "apple": "/webhooks/apple/test-apple",
    "inapp": "/webhooks/inapp/test-inapp",
}
CONTENT_TYPES = ["application/json", FORM, "text/plain", "text/xml", "multipart/form-data; boundary=x", ""]
HEADER_NAMES = [
    "X-Twilio-Signature",
    "X-Hub-Signature-256",
    "Authorization",
    "X-Signature",
    "X-Timestamp",
    "destination-id",
    "source-id",
    "id",
    "capability-list",
    "device-agent",
    "Content-Encoding",
]

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
# Values the parsers branch on (ids of the test assets, type names, counts, times) next to arbitrary ones.
interesting = st.sampled_from(
    [
        *("", "0", "1", "2", "11", "-1", "\u00b2", "\u0661", "1e400", "NaN", "99999999999999999999999999"),
        *("+15550001111", "1234567890", "106540352242922", "3f2a9c1e-1111-2222-3333-444455556666"),
        *("text", "image", "file", "fallback", "sticker", "interactive", "attachment", "typing_stop", "close"),
        *("messages", "page", "whatsapp_business_account", "2026-01-01T09:30:00", "2026-13-01"),
    ]
)
numbers = st.integers() | st.floats() | st.sampled_from([0, -1, 2**70, -(2**70), 1e308, 10**400])
leaves = st.none() | st.booleans() | numbers | interesting | text
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(interesting | text, children, max_size=4),
    max_leaves=20,
)


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
    """`document` with one to three nodes, anywhere in the tree, replaced (mostly by a value of the
    same type, sometimes by arbitrary JSON) or removed."""
    copy = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, 3))):
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


def fixtures(channel: str) -> list[Any]:
    return [fixture_json(channel, path.name) for path in sorted((FIXTURES / channel).glob("*.json"))]


@st.composite
def json_body(draw: st.DrawFn, channel: str) -> bytes:
    document = draw(st.sampled_from(fixtures(channel)))
    if channel == "apple":
        document = document["body"]
    value = draw(json_values) if rarely(draw) else draw(mutated(document))
    return json.dumps(value, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def requests(draw: st.DrawFn, channel: str) -> tuple[str, dict[str, Any]]:
    path = PATHS[channel] + draw(st.sampled_from(["", "/status"]))
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), header_value, max_size=3))
    content_type = draw(st.sampled_from([*CONTENT_TYPES, "application/json"]) | header_value)
    if channel == "sms":
        params = draw(mutated(draw(st.sampled_from(fixtures("sms")))))
        pairs = list(params.items()) if isinstance(params, dict) else []
        pairs = [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in pairs]
        body = draw(st.binary(max_size=300)) if rarely(draw) else urlencode(pairs).encode()
        if not rarely(draw):
            content_type = FORM
            headers["X-Twilio-Signature"] = twilio_signature(PUBLIC_BASE_URL + path, dict(pairs))
    else:
        body = draw(st.binary(max_size=300)) if rarely(draw) else draw(json_body(channel))
        if not rarely(draw):  # mostly signed, so the parsers are reached
            content_type = "application/json"
            headers.update(valid_signature(channel, body, draw))
    if channel == "apple" and draw(st.booleans()):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return path, {"data": body, "content_type": content_type, "headers": headers}


def valid_signature(channel: str, body: bytes, draw: st.DrawFn) -> dict[str, str]:
    if channel in ("messenger", "whatsapp"):
        return {"X-Hub-Signature-256": meta_signature(body, asset(f"test-{channel}")["app_secret"])}
    if channel == "inapp":
        stamp = str(int(time.time()))
        return {"X-Timestamp": stamp, "X-Signature": inapp_signature(body, stamp)}
    business = asset("test-apple")["business_id"]
    return {
        "Authorization": f"Bearer {apple_token()}",
        "destination-id": draw(st.sampled_from([business] * 5 + ["another-business"])),
    }


class Crashes(logging.Handler):
    """Collects ERROR records of the intake: a parser exception is logged there before the 400."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def crashes() -> Iterator[Crashes]:
    handler = Crashes()
    logger = logging.getLogger("connector.webhooks")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def well_typed(event: InboundEvent) -> None:
    """What the drain relies on: strings where it expects text, a finite time, known kinds."""
    assert isinstance(event.customer, str) and event.customer
    assert isinstance(event.provider_id, str) and event.provider_id
    assert isinstance(event.timestamp, float | int) and math.isfinite(event.timestamp)
    for value in (event.text, event.payload, event.status):
        assert value is None or isinstance(value, str)
    assert all(isinstance(ref, str) for ref in event.refers_to)
    for attachment in event.attachments:
        for value in (attachment.mime_type, attachment.url, attachment.media_id, attachment.name, attachment.caption):
            assert value is None or isinstance(value, str)
        assert attachment.size is None or isinstance(attachment.size, int)
    assert isinstance(event.details, dict)


@pytest.mark.parametrize("channel", sorted(PATHS))
def test_never_5xx(client, redis, channel):
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests(channel))
    def check(request: tuple[str, dict[str, Any]]) -> None:
        redis.flushall()
        path, kwargs = request
        with crashes() as log:
            response = client.post(path, **kwargs)
        assert response.status_code < 500, response.get_data(as_text=True)
        assert not log.records, [r.getMessage() for r in log.records]
        if response.status_code >= 400:
            assert response.is_json and response.get_json()["error"]
        for key in redis.scan_iter(match=keys.inbox("*")):
            for raw in redis.lrange(key, 0, -1):
                well_typed(InboundEvent.from_json(raw))

    check()
