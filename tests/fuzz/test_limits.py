"""Oversized and over-nested bodies on every door that reads JSON or a form: a body over
CONNECTOR_MAX_BODY_BYTES is a 413 before it is read whole, and JSON nested 100,000 levels deep is a
clean 400 (422 where the REST API validates; never a RecursionError 500), within bounded memory
(tracemalloc's peak during the request).
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from connector.json_input import MAX_DEPTH
from tests.channels.signing import FORM, apple_token, asset, inapp_signature, meta_signature, twilio_signature
from tests.e2e.stack import CALLBACK_TOKEN, INTEGRATION

from .test_ece_callback import ece_client  # noqa: F401 - the app with an ECE integration
from .test_webhooks import PATHS, crashes

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECTS = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
PEAK_BYTES = 8 * 1024 * 1024
"""Memory a refused 200 kB body may take while it is refused: the body and a few copies, no tree."""


def signed(channel: str, body: bytes) -> dict[str, Any]:
    """A request to `channel` with `body` signed the provider's way (so the parser is reached)."""
    if channel in ("messenger", "whatsapp"):
        headers = {"X-Hub-Signature-256": meta_signature(body, asset(f"test-{channel}")["app_secret"])}
    elif channel == "inapp":
        stamp = str(int(time.time()))
        headers = {"X-Timestamp": stamp, "X-Signature": inapp_signature(body, stamp)}
    elif channel == "apple":
        headers = {"Authorization": f"Bearer {apple_token()}", "destination-id": asset("test-apple")["business_id"]}
    else:
        raise ValueError(channel)
    return {"data": body, "content_type": "application/json", "headers": headers}


Door = Callable[[Any, Any, bytes], Any]
"""(test client of the app, test client of the ECE app, body) → the answer."""


def webhook(channel: str) -> Door:
    return lambda client, ece, body: client.post(PATHS[channel], **signed(channel, body))


DOORS: dict[str, Door] = {
    **{channel: webhook(channel) for channel in ("messenger", "whatsapp", "inapp", "apple")},
    "ece callback": lambda client, ece, body: ece.post(
        f"/ece/{INTEGRATION}/callback",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {CALLBACK_TOKEN}"},
    ),
    "agent login": lambda client, ece, body: client.post("/agent/login", data=body, content_type="application/json"),
    "api create rule": lambda client, ece, body: client.post(
        "/api/v1/rules", data=body, content_type="application/json"
    ),
    "api rule test": lambda client, ece, body: client.post(
        "/api/v1/rules/test", data=body, content_type="application/json"
    ),
}


@pytest.fixture
def clients(api_client, ece_client):  # noqa: F811 - the fixture imported above
    return api_client("admin"), ece_client


def measured(call: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        answer = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return answer, peak


def each_door(check: Callable[[str], None]) -> None:
    """Run `check` on every door (one app set-up for all: building the apps is most of the cost);
    the failures of all doors are reported together."""
    failures = []
    for door in sorted(DOORS):
        try:
            check(door)
        except AssertionError as exc:
            failures.append(f"{door}: {exc}")
    assert not failures, "\n".join(failures)


def test_json_nested_100000_levels_is_refused_cleanly(clients):
    client, ece = clients

    def check(door: str) -> None:
        for body in (DEEP, DEEP_OBJECTS):
            with crashes("connector") as log:
                answer, peak = measured(lambda body=body: DOORS[door](client, ece, body))
            assert answer.status_code in (400, 422), answer.get_data(
                as_text=True
            )  # refused as malformed: signed, so read
            assert answer.is_json
            assert not log.records, [r.getMessage() for r in log.records]
            assert peak < PEAK_BYTES, f"{peak} bytes at peak"

    each_door(check)


def test_json_just_past_the_depth_limit_is_refused(clients):
    """Deeper than MAX_DEPTH but far from the interpreter's limit: refused too, so nothing that deep is
    stored for a later step (in a deeper stack) to trip over."""
    client, ece = clients
    body = json.dumps({"a": json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)}).encode()

    def check(door: str) -> None:
        answer = DOORS[door](client, ece, body)
        assert answer.status_code in (400, 422), answer.get_data(as_text=True)  # refused as malformed: signed, so read

    each_door(check)


def test_a_body_over_the_limit_is_413(clients, settings):
    client, ece = clients
    body = b'{"x": "' + b"a" * settings.max_body_bytes + b'"}'

    def check(door: str) -> None:
        with crashes("connector") as log:
            answer, peak = measured(lambda: DOORS[door](client, ece, body))
        assert answer.status_code == 413, answer.get_data(as_text=True)[:300]
        assert answer.is_json
        assert not log.records, [r.getMessage() for r in log.records]
        assert peak < 3 * len(body), f"{peak} bytes at peak for a {len(body)}-byte body"

    each_door(check)
    path = PATHS["sms"]
    form = b"Body=" + b"x" * settings.max_body_bytes
    headers = {"X-Twilio-Signature": twilio_signature(f"https://connector.example.com{path}", {"Body": "x"})}
    answer = client.post(path, data=form, content_type=FORM, headers=headers)
    assert answer.status_code == 413 and answer.get_json()["error"] == "body_too_large"
