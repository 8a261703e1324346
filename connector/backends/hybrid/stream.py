"""An agent's desktop events: a Redis stream per agent, read by `GET /agent/api/events` (long poll)
and `GET /agent/api/stream` (Server-Sent Events). An entry id is the cursor: a client that resumes
from its last id (`Last-Event-ID`) misses nothing the stream still holds.

Event shapes (docs/hybrid.md, DESIGN §5a): `{"type", "at", "chat_id"?, ...}` with type
`chat_offered` (chat), `offer_withdrawn`, `chat_assigned` (chat), `customer_message` (message_id,
text?, attachments?), `customer_typing` (typing), `chat_closed` (by), `chat_transferred`,
`state_changed` (chat_state, voice_state), `note` (text: what the connector tells the agent).
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis
from redis.client import Pipeline

from connector.store import keys, replies

MAX_EVENTS = 1000
"""Entries kept per agent: an agent away longer than this many events reloads their chats."""
MAX_WAIT_SECONDS = 30.0


def publish(redis: Redis, agent: str, event_type: str, **fields: Any) -> str:
    """Append an event to the agent's stream; returns its id (the cursor after it)."""
    entry = _add(redis, agent, event_type, fields)
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def queue(pipe: Pipeline, agent: str, event_type: str, **fields: Any) -> None:
    """`publish` queued on a caller's transaction, to be one step with its other writes."""
    _add(pipe, agent, event_type, fields)


def encoded(event_type: str, **fields: Any) -> str:
    """An event as its stream entry holds it, for a script that writes it with its own change
    (`state._OFFER`: an offer and its `chat_offered` land together or not at all)."""
    return json.dumps({"type": event_type, "at": time.time(), **fields}, separators=(",", ":"))


def _add(redis: Redis | Pipeline, agent: str, event_type: str, fields: dict[str, Any]) -> Any:
    return redis.xadd(keys.hybrid_events(agent), {"event": encoded(event_type, **fields)}, maxlen=MAX_EVENTS)


Event = tuple[str, dict[str, Any]]
"""(stream id, event)."""


def read(redis: Redis, agent: str, after: str | None, wait_seconds: float) -> tuple[list[Event], str]:
    """The events after cursor `after` ('' or None: only new ones), waiting up to `wait_seconds`
    (≤ 30) for one to arrive; returns them with their ids, and the cursor to ask from next."""
    cursor = after or last_id(redis, agent)
    wait = max(0.0, min(wait_seconds, MAX_WAIT_SECONDS))
    found = replies.stream_reads(
        # BLOCK 0 would wait forever: any wait at all is at least a millisecond
        redis.xread({keys.hybrid_events(agent): cursor}, count=100, block=max(1, int(wait * 1000)) if wait else None)
    )
    events: list[Event] = []
    for _stream, entries in found or []:
        for entry_id, data in entries:
            event_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            cursor = event_id
            try:
                events.append((event_id, json.loads(data.get(b"event") or b"")))
            except ValueError:
                continue  # not an event of ours: skipped, the cursor moves past it
    return events, cursor


def last_id(redis: Redis, agent: str) -> str:
    """The id of the agent's newest event ('0-0' when none): a new reader starts after it."""
    newest = redis.xrevrange(keys.hybrid_events(agent), count=1)
    if not newest:
        return "0-0"
    entry_id = newest[0][0]  # type: ignore[index]  # sync client: a list of (id, fields)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
