"""Events to a waiting agent: the long poll (`GET /agent/api/events`) and Server-Sent Events
(`GET /agent/api/stream`), over the agent's event stream (`stream.py`).

Each waiting request holds one of the web process's threads (gunicorn gthread). So that webhooks are
always acknowledged, at most `stream_slots(threads)` requests of a process wait at once; past that a
long poll answers at once (the client asks again) and an SSE response sends what is there and ends
with a longer `retry:`. An SSE response also ends after STREAM_SECONDS (the browser's EventSource
reconnects with `Last-Event-ID`), so no thread is held for good; it sends a comment every
HEARTBEAT_SECONDS so that proxies and the browser see the connection alive.

Redis is asked in waits of at most READ_SECONDS: the connector's Redis client gives up on a socket
that is silent for 10 s, and a blocked XREAD is silent.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Generator, Iterator

from redis import Redis, RedisError

from connector.backends.hybrid import stream

log = logging.getLogger(__name__)

STREAM_SECONDS = 60.0
"""How long one SSE response lasts before the browser reconnects."""
HEARTBEAT_SECONDS = 15.0
READ_SECONDS = 5.0
RETRY_MS = 1000
"""What an SSE client waits before reconnecting after a response ends."""
BUSY_RETRY_MS = 5000
"""... when the process had no slot free: the client polls gently instead."""
CURSOR = re.compile(r"^\d{1,20}(-\d{1,20})?$")


def stream_slots(threads: int) -> int:
    """Waiting requests one web process serves at once: its threads less a quarter (at least 4),
    kept for webhooks, pages and the agents' own actions; at least one."""
    return max(1, threads - max(4, threads // 4))


class Slots:
    """The waiting requests of this process, counted against a limit given at each take."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.used = 0

    def take(self, limit: int) -> bool:
        with self._lock:
            if self.used >= limit:
                return False
            self.used += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.used = max(0, self.used - 1)


SLOTS = Slots()


def valid_cursor(cursor: str) -> bool:
    return bool(CURSOR.match(cursor))


def wait_for_events(redis: Redis, agent: str, after: str | None, wait_seconds: float) -> tuple[list[stream.Event], str]:
    """The events after `after` (None: only new ones), waiting up to `wait_seconds` for the first,
    in reads of at most READ_SECONDS."""
    deadline = time.monotonic() + max(0.0, wait_seconds)
    events, cursor = stream.read(redis, agent, after, 0)
    while not events:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        events, cursor = stream.read(redis, agent, cursor, _blocking(min(left, READ_SECONDS)))
    return events, cursor


def _blocking(seconds: float) -> float:
    """A wait `stream.read` blocks for: at least a millisecond (XREAD BLOCK 0 would wait forever)."""
    return max(seconds, 0.001)


class SseBody:
    """The SSE body: `retry:`, then each event as `id: <cursor>` + `data: <event JSON>`, comments as
    heartbeats, until `seconds` have passed. `slot`: this request holds one of the process's slots,
    given back when the server closes the body (also when the client went away, or before it ever
    started), once."""

    def __init__(self, redis: Redis, agent: str, after: str | None, *, slot: bool, seconds: float) -> None:
        self.redis = redis
        self.agent = agent
        self.after = after
        self.slot = slot
        self.seconds = seconds
        self._body = self._chunks()
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[bytes]:
        return self._body

    def close(self) -> None:
        self._body.close()
        with self._lock:
            slot, self.slot = self.slot, False
        if slot:
            SLOTS.give_back()

    def _chunks(self) -> Generator[bytes, None, None]:
        slot = self.slot
        yield f"retry: {RETRY_MS if slot else BUSY_RETRY_MS}\n\n".encode()
        deadline = time.monotonic() + self.seconds
        cursor, wait = self.after, 0.0
        beat = time.monotonic()
        first = True
        while True:
            try:
                events, cursor = stream.read(self.redis, self.agent, cursor, max(0.0, wait))
            except RedisError as exc:
                log.warning("agent event stream unreadable; the client reconnects", extra={"error": str(exc)})
                return
            for event_id, event in events:
                yield _message(event_id, event)
                beat = time.monotonic()
            if first and not events:
                # No data, but the browser keeps the id as its Last-Event-ID: a reconnect misses nothing.
                yield f"id: {cursor}\n\n".encode()
            first = False
            now = time.monotonic()
            if not slot or now >= deadline:
                return
            if now - beat >= HEARTBEAT_SECONDS:
                yield b": keep-alive\n\n"
                beat = now
            wait = _blocking(min(READ_SECONDS, deadline - now, beat + HEARTBEAT_SECONDS - now))


def _message(event_id: str, event: dict[str, object]) -> bytes:
    data = json.dumps({**event, "id": event_id}, separators=(",", ":"))
    return f"id: {event_id}\ndata: {data}\n\n".encode()
