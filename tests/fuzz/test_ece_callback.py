"""`POST /ece/<integration>/callback` under generated batches, headers and credentials: never a 5xx,
and a 200 accounts for every event of the batch (accepted into the conversation's outbox, a
duplicate, or for a conversation the connector does not know), as docs/protocols/ece.md
("Callback webhook") promises; a refused batch stores nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector import create_app
from connector.runtime import Runtime
from connector.settings import Settings
from connector.store import keys
from connector.store.boxes import Box
from tests.e2e.stack import CALLBACK_TOKEN, INTEGRATION, write_config

from .strategies import dumps, header_value, json_values, mutated, rarely
from .test_webhooks import crashes, note

THREAD = "0" * 32
KNOWN = "conv-1"
PATH = f"/ece/{INTEGRATION}/callback"
KINDS = [
    *("text/plain", "text/html", "startTyping", "endTyping", "pagePush", "uploadAttachment", "assigned"),
    *("transfer", "acceptAttachment", "rejectAttachment", "complete", "somethingNew"),
]


@pytest.fixture
def ece_client(tmp_path, redis, redis_url):
    """The app on a configuration with one ECE integration (bearer callback auth) and conversation
    `conv-1` of ECE mapped to a thread of the connector."""
    folder = write_config(tmp_path / "config", "http://127.0.0.1:9", "http://127.0.0.1:9")
    settings = Settings.from_env(redis_url=redis_url, config_dir=folder, secret_key="x", data_dir=tmp_path)
    return create_app(runtime=Runtime(settings)).test_client()


def map_conversation(redis) -> None:
    redis.set(keys.ece_conversation(INTEGRATION, KNOWN), json.dumps({"thread": THREAD, "sequence": 1}))


@st.composite
def ece_event(draw: st.DrawFn) -> dict[str, Any]:
    """An event as ECE documents it: every type, known and unknown conversations, then mutated."""
    event = {
        "id": draw(st.integers(1, 50).map(str) | st.integers(1, 50)),
        "conversation": {"id": draw(st.sampled_from([KNOWN, KNOWN, "not-ours", 7]))},
        "type": {"value": draw(st.sampled_from(KINDS))},
        "content": "Hello from the agent <a href='https://example.com/page'>page</a>",
        "sender": {"type": "user", "user": {"id": "1001", "name": "Alice"}},
        "attachment": {
            "id": "a1",
            "name": "f.pdf",
            "url": "https://ece.example.com/f.pdf",
            "mimeType": "application/pdf",
            "size": 10,
        },
        "transfer": {"type": "agent", "name": "Bob"},
        "timeStamp": draw(st.integers(0, 2_000_000_000_000)),
    }
    return draw(mutated(event))


@st.composite
def callback_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str], str]:
    if rarely(draw):
        body = draw(st.binary(max_size=300)) if draw(st.booleans()) else dumps(draw(json_values))
    else:
        batch: Any = {"message": draw(st.lists(ece_event(), min_size=1, max_size=5))}
        if rarely(draw):
            batch = draw(mutated(batch))
        body = dumps(batch, ascii_only=draw(st.booleans()))
    auth = draw(
        st.sampled_from([f"Bearer {CALLBACK_TOKEN}"] * 6 + ["", "Bearer wrong", f"Basic {CALLBACK_TOKEN}"])
        | header_value
    )
    content_type = "application/json" if not rarely(draw) else draw(st.sampled_from(["text/plain", ""]) | header_value)
    return body, ({"Authorization": auth} if auth else {}), content_type


def outbox_keys(redis) -> list[str]:
    return [json.loads(item)["event"]["key"] for item in redis.lrange(Box.OUT.key(THREAD), 0, -1)]


def check(client, redis, request: tuple[bytes, dict[str, str], str]) -> None:
    redis.flushall()
    map_conversation(redis)
    body, headers, content_type = request
    with crashes("connector") as log:
        answer = client.post(PATH, data=body, headers=headers, content_type=content_type)
    assert answer.status_code < 500, answer.get_data(as_text=True)
    assert not log.records, [r.getMessage() for r in log.records]
    note(f"answer {answer.status_code}")
    stored = outbox_keys(redis)
    if answer.status_code >= 400:
        assert answer.get_json()["error"] and stored == []
        return
    events = json.loads(body)["message"]
    counts = answer.get_json()
    assert counts["accepted"] + counts["duplicates"] + counts["unknown"] == len(events)
    ours = {f"ece:{e['id']}" for e in events if str(e["conversation"]["id"]) == KNOWN}
    assert set(stored) == ours and len(stored) == counts["accepted"] == len(ours)
    note(f"accepted {counts['accepted']}")


@given(data=st.data())
def test_never_5xx_and_every_event_accounted_for(ece_client, redis, data):
    check(ece_client, redis, data.draw(callback_requests(), label="request"))


@pytest.mark.parametrize(
    "change",
    [
        {"id": "\u00b2"},  # str.isdigit() is true for it; int() refuses it (was a 500)
        {"timeStamp": 10**400},  # float() overflows (was a 500)
        {"timeStamp": float("inf")},
        {"sender": ["Alice"]},
        {"attachment": "f.pdf", "type": {"value": "uploadAttachment"}},
        {"transfer": "Bob", "type": {"value": "transfer"}},
    ],
)
def test_found_by_the_fuzzer(ece_client, redis, change):
    """Regressions: batches that answered 500 before the fixes (issue 17 §2)."""
    event = {"id": "1", "conversation": {"id": KNOWN}, "type": {"value": "text/plain"}, "content": "x", **change}
    check(
        ece_client,
        redis,
        (dumps({"message": [event]}), {"Authorization": f"Bearer {CALLBACK_TOKEN}"}, "application/json"),
    )
