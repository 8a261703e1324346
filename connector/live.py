"""Waiting web requests, for every live page: the agents' long poll and Server-Sent Events (Hybrid
Chat, `/agent/api/events` and `/agent/api/stream`) and the operators' pages (`/admin/live/...`).

What is read is the caller's: a `Reader` answers "the events after this cursor, waiting up to this
long for the first": an agent's Redis stream (backends/hybrid/stream.py), or `polled(probe)`, what an
operator page shows read every POLL_SECONDS (operations/watch.py). This module owns how a request
waits for it:

- each waiting request holds one of the web process's threads (gunicorn gthread). So that webhooks
  are always acknowledged, at most `stream_slots(threads)` requests of a process wait at once, and
  operator pages at most `operator_slots(threads)` of those, so agents always keep half. Past the
  bound a long poll answers at once (the client asks again) and an SSE response sends what is there
  and ends with a longer `retry:` (a 503 would end an EventSource for good: the spec retries only
  after a 200);
- an SSE response ends after STREAM_SECONDS (the browser's EventSource reconnects with
  `Last-Event-ID`, which resumes), so no thread is held for good; it sends a comment every
  HEARTBEAT_SECONDS so that proxies and the browser see the connection alive, and so that a stream
  whose client left frees its thread within that time;
- Redis is asked in waits of at most READ_SECONDS: the connector's Redis client gives up on a socket
  that is silent for 10 s, and a blocked XREAD is silent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

from flask import Response
from redis import RedisError

log = logging.getLogger(__name__)

STREAM_SECONDS = 60.0
"""How long one SSE response lasts before the browser reconnects."""
HEARTBEAT_SECONDS = 2.0
"""A comment this often keeps proxies and the browser seeing the connection alive, and is how soon a
stream whose client has gone (or whose server is stopping: gunicorn's graceful shutdown, a reload)
gives its thread back: only a write finds out. About 15 bytes per stream every 2 s."""
READ_SECONDS = 5.0
RETRY_MS = 1000
"""What an SSE client waits before reconnecting after a response ends."""
BUSY_RETRY_MS = 5000
"""... when the process had no slot free: the client polls gently instead."""
POLL_SECONDS = 1.0
"""How often a `polled` reader asks what a page shows: the most an operator waits for a change."""
CURSOR = re.compile(r"^\d{1,20}(-\d{1,20})?$")
"""A Redis stream entry id, as an agent's cursor is."""
VERSION = re.compile(r"^[0-9a-f]{16}$")
"""A `version` of what a polled reader watches, as its cursor is."""

Event = tuple[str, dict[str, Any]]
"""(id, event): the id is the cursor after the event (SSE `id:`)."""
Reader = Callable[[str | None, float], tuple[list[Event], str]]
"""read(after, wait_seconds) → the events after cursor `after` (None: only new ones), waiting up to
`wait_seconds` (≤ READ_SECONDS when a stream asks) for the first, and the cursor to ask from next."""
Probe = Callable[[], tuple[str, dict[str, Any]]]
"""probe() → (version, event): what a page shows now, as a short version that changes when it does
(`version`), and the event that tells the page so. Cheap: a reader calls it every POLL_SECONDS."""


def stream_slots(threads: int) -> int:
    """Waiting requests one web process serves at once: its threads less a quarter (at least 4),
    kept for webhooks, pages and the agents' own actions; at least one."""
    return max(1, threads - max(4, threads // 4))


def operator_slots(threads: int) -> int:
    """The bound operator pages take a slot under: half the slots, so that a room of open overview
    and conversation pages never keeps an agent's desktop from its events."""
    return max(1, stream_slots(threads) // 2)


class Slots:
    """The waiting requests of this process, counted against a limit given at each take (agents and
    operators share the count, each under its own limit)."""

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


def blocking(seconds: float) -> float:
    """A wait a reader blocks for: at least a millisecond (XREAD BLOCK 0 would wait forever)."""
    return max(seconds, 0.001)


def long_poll(read: Reader, after: str | None, wait_seconds: float) -> tuple[list[Event], str]:
    """The events after `after` (None: only new ones), waiting up to `wait_seconds` for the first,
    in reads of at most READ_SECONDS."""
    deadline = time.monotonic() + max(0.0, wait_seconds)
    events, cursor = read(after, 0)
    while not events:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        events, cursor = read(cursor, blocking(min(left, READ_SECONDS)))
    return events, cursor


def version(*parts: object) -> str:
    """A short digest of what a probe read: equal reads give equal versions (16 hex digits)."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()


def valid_version(cursor: str) -> bool:
    return bool(VERSION.match(cursor))


def polled(probe: Probe, every: float = POLL_SECONDS) -> Reader:
    """A reader of something that has no event stream of its own: it asks `probe` every `every`
    seconds and gives one event when the version differs from the cursor. Changes in between are
    one event (the page reads them all at once), and a client that resumes with the version it last
    saw gets an event at once if anything changed meanwhile: none is missed."""

    def read(after: str | None, wait_seconds: float) -> tuple[list[Event], str]:
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            now_version, event = probe()
            if after is None:
                return [], now_version  # a new reader starts from what is there now
            if now_version != after:
                return [(now_version, event)], now_version
            left = deadline - time.monotonic()
            if left <= 0:
                return [], after
            time.sleep(min(every, left))

    return read


class SseBody:
    """The SSE body: `retry:`, then each event as `id: <cursor>` + `data: <event JSON>`, comments as
    heartbeats, until `seconds` have passed. `slot`: this request holds one of the process's slots,
    given back when the server closes the body (also when the client went away, or before it ever
    started), once."""

    def __init__(self, read: Reader, after: str | None, *, slot: bool, seconds: float) -> None:
        self.read = read
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
                events, cursor = self.read(cursor, max(0.0, wait))
            except RedisError as exc:
                log.warning("event stream unreadable; the client reconnects", extra={"error": str(exc)})
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
            wait = blocking(min(READ_SECONDS, deadline - now, beat + HEARTBEAT_SECONDS - now))


def event_stream(read: Reader, after: str | None, limit: int) -> Response:
    """The `text/event-stream` response of `read` from `after`, holding a slot if one is free under
    `limit`. The reader runs after the request has ended: it must not need the request context."""
    slot = SLOTS.take(limit)
    response = Response(SseBody(read, after, slot=slot, seconds=STREAM_SECONDS), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy in front must not hold the events back
    return response


def _message(event_id: str, event: dict[str, Any]) -> bytes:
    data = json.dumps({**event, "id": event_id}, separators=(",", ":"))
    return f"id: {event_id}\ndata: {data}\n\n".encode()
