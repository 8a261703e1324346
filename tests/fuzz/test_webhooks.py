"""Whatever a provider (or anyone) sends, a channel webhook answers 2xx/4xx, never 5xx, no parser
crashes, and a 2xx never drops a message (docs/architecture.md, "Webhook answers").

Bodies are arbitrary bytes, arbitrary JSON, or real fixtures with nodes replaced or removed; most
carry a valid signature the test computes itself, so the parsers (not just the signature checks)
are exercised. The oracle of "acknowledged means stored" reads the provider's documented format
(where a customer message's id and text are), not the connector's parser.
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
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from connector.channels.base import InboundEvent
from connector.store import keys
from tests.channels.signing import (
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

from .strategies import dumps, header_value, json_values, mutated, rarely

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

Request = tuple[str, dict[str, Any]]


def fixtures(channel: str) -> list[Any]:
    return [fixture_json(channel, path.name) for path in sorted((FIXTURES / channel).glob("*.json"))]


@st.composite
def json_body(draw: st.DrawFn, channel: str) -> bytes:
    document = draw(st.sampled_from(fixtures(channel)))
    if channel == "apple":
        document = document["body"]
    value = draw(json_values) if rarely(draw) else draw(mutated(document))
    return dumps(value, ascii_only=draw(st.booleans()))


@st.composite
def requests(draw: st.DrawFn, channel: str) -> Request:
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


# -- the oracle: what the provider's format says a 2xx must have stored --------------------------------


def _json_document(request: Request) -> Any:
    kwargs = request[1]
    body = kwargs["data"]
    if kwargs["headers"].get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return json.loads(body)


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def promised(channel: str, request: Request) -> dict[str, str | None]:
    """Provider message id → its text (None: any), for every customer message the body carries in
    the provider's documented place. A 2xx answer means each of them is in an inbox."""
    path, kwargs = request
    if channel == "sms":
        form = dict(parse_qsl(kwargs["data"].decode("utf-8", "replace")))
        sid = form.get("MessageSid")
        if path.endswith("/status"):
            return {f"{sid}:{form.get('MessageStatus')}": None}
        return {str(sid): form.get("Body") or None}
    document = _json_document(request)
    if channel == "inapp":
        return {document["message_id"]: _string(document.get("text"))}
    if channel == "apple":
        return {document.get("id") or kwargs["headers"].get("id"): None}
    found: dict[str, str | None] = {}
    for entry in document.get("entry") or []:
        if channel == "whatsapp":
            for change in entry.get("changes") or []:
                if isinstance(change, dict) and change.get("field") == "messages":
                    for message in change["value"].get("messages") or []:
                        text = message.get("text") if message.get("type") == "text" else None
                        found[str(message["id"])] = _string(text.get("body")) if isinstance(text, dict) else None
        else:  # messenger: messages in messaging[] (standby[] while another app owns the thread), echoes aside
            for item in [*(entry.get("messaging") or []), *(entry.get("standby") or [])]:
                message = item.get("message")
                if isinstance(message, dict) and not message.get("is_echo"):
                    found[str(message["mid"])] = _string(message.get("text"))
    return found


class Crashes(logging.Handler):
    """Collects ERROR records of the intake: a parser exception is logged there before the 400."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def crashes(*loggers: str) -> Iterator[Crashes]:
    handler = Crashes()
    for name in loggers:
        logging.getLogger(name).addHandler(handler)
    try:
        yield handler
    finally:
        for name in loggers:
            logging.getLogger(name).removeHandler(handler)


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


def note(what: str) -> None:
    """A line of `--hypothesis-show-statistics`: how many examples got past the checks."""
    if currently_in_test_context():
        event(what)


def stored_events(redis) -> list[InboundEvent]:
    return [
        InboundEvent.from_json(raw)
        for key in redis.scan_iter(match=keys.inbox("*"))
        for raw in redis.lrange(key, 0, -1)
    ]


def check(client, redis, channel: str, request: Request) -> None:
    redis.flushall()
    path, kwargs = request
    with crashes("connector") as log:
        response = client.post(path, **kwargs)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert not log.records, [r.getMessage() for r in log.records]
    note(f"answer {response.status_code}")
    events = stored_events(redis)
    for one in events:
        well_typed(one)
    if response.status_code >= 400:
        assert response.is_json and response.get_json()["error"]
        assert events == [], "a refused request stored nothing"
        return
    stored = {one.provider_id: one for one in events}
    expected = promised(channel, request)
    note(f"acknowledged {len(expected)} promised message(s)")
    for provider_id, text in expected.items():
        assert provider_id in stored, f"acknowledged, but {provider_id!r} is in no inbox"
        if text is not None:
            assert stored[provider_id].text == text


@pytest.mark.parametrize("channel", sorted(PATHS))
@given(data=st.data())
def test_never_5xx_and_acknowledged_means_stored(client, redis, channel, data):
    check(client, redis, channel, data.draw(requests(channel), label="request"))


def test_deeply_nested_field_in_a_signed_message(client, redis):
    """A referral 900 levels deep, just under the interpreter's recursion limit, in a validly signed
    Messenger message: Messenger's parser copies referrals into the stored event, which every later
    step (the drain, the timeline, the API) parses again deeper in its own stack. It is refused at the
    door (400, connector/json_input.py), before anything is stored."""
    document = fixture_json("messenger", "text.json")
    nested: Any = "x"
    for _ in range(900):
        nested = [nested]
    document["entry"][0]["messaging"][0]["referral"] = nested
    body = dumps(document)
    headers = {"X-Hub-Signature-256": meta_signature(body, asset("test-messenger")["app_secret"])}
    request = (PATHS["messenger"], {"data": body, "content_type": "application/json", "headers": headers})
    check(client, redis, "messenger", request)
    answer = client.post(request[0], **request[1])
    assert answer.status_code == 400 and "nested deeper" in answer.get_json()["message"]
