"""Backpressure per integration: calls in flight, items waiting, and how long the oldest has waited.

What an operator needs when the contact center is slow: intake keeps accepting (webhooks are
acknowledged once stored), so the sign of trouble is not refused work but work that waits. One
reading serves `/metrics`, the home page and `/readyz`'s warning; it is kept in Redis for
CACHE_SECONDS so probes and pages that ask often cost one GET, not a pass over every inbox.

Cost of a fresh reading: SMEMBERS of the active set, then per conversation with a box (in batches
of BATCH) LLEN and LINDEX of its inbox and HGET of its integration; the head of an inbox is its
oldest item (boxes are drained in order), so the oldest wait is the oldest head.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from redis import Redis

from connector.backends.in_flight import published
from connector.store import keys, replies

CACHE_SECONDS = 2.0
BATCH = 1000
NOT_ROUTED = ""
"""The row of conversations whose first message waits to be routed (no integration yet)."""


@dataclass(frozen=True)
class Pressure:
    """One integration's figures (`integration` NOT_ROUTED: conversations not routed yet)."""

    integration: str
    in_flight: int = 0
    queued: int = 0
    """Customer events waiting in the inboxes of its conversations (the one being sent included)."""
    conversations: int = 0
    """Conversations with events waiting."""
    oldest_seconds: float = 0.0
    """Age of the oldest waiting event, since the connector accepted it (0: nothing waits)."""


@dataclass(frozen=True)
class Reading:
    at: float
    rows: tuple[Pressure, ...]

    @property
    def oldest_seconds(self) -> float:
        return max((row.oldest_seconds for row in self.rows), default=0.0)

    def warning(self, threshold_seconds: float) -> str | None:
        """Words for `/readyz` and the home page when an item has waited longer than the threshold."""
        late = [row for row in self.rows if row.oldest_seconds > threshold_seconds]
        if not late:
            return None
        worst = max(late, key=lambda row: row.oldest_seconds)
        where = worst.integration or "conversations not routed yet"
        return (
            f"the oldest customer message has waited {worst.oldest_seconds:.0f} s ({where}; warning above "
            f"{threshold_seconds:g} s): the contact center is slower than the traffic"
        )


def reading(redis: Redis, integrations: Iterable[str], *, now: float | None = None) -> Reading:
    """The last reading if it is at most CACHE_SECONDS old, else a fresh one (stored for the next)."""
    names = list(integrations)
    stored = replies.bytes_or_none(redis.get(keys.backpressure()))
    if stored is not None:
        data = json.loads(stored)
        if data.get("integrations") == names:
            return Reading(at=data["at"], rows=tuple(Pressure(**row) for row in data["rows"]))
    fresh = measure(redis, names, now=now)
    document = {"at": fresh.at, "integrations": names, "rows": [asdict(row) for row in fresh.rows]}
    redis.set(keys.backpressure(), json.dumps(document), px=int(CACHE_SECONDS * 1000))
    return fresh


def measure(redis: Redis, integrations: Iterable[str], *, now: float | None = None) -> Reading:
    """A fresh reading: every configured integration has a row, so a dashboard's rows stay put;
    others (removed from the configuration, conversations not routed yet) only while they have work."""
    configured = list(integrations)
    at = time.time() if now is None else now
    in_flight = published(redis, at)
    queued: dict[str, int] = {}
    waiting: dict[str, int] = {}
    oldest: dict[str, float] = {}
    threads = sorted(member.decode() for member in replies.bytes_set(redis.smembers(keys.active_inboxes())))
    for start in range(0, len(threads), BATCH):
        batch = threads[start : start + BATCH]
        pipe = redis.pipeline(transaction=False)
        for thread_id in batch:
            pipe.llen(keys.inbox(thread_id))
            pipe.lindex(keys.inbox(thread_id), 0)
            pipe.hget(keys.thread(thread_id), "integration")
        answers = replies.execute(pipe)
        for index in range(len(batch)):
            depth, head, integration = answers[3 * index : 3 * index + 3]
            if not depth:
                continue
            name = integration.decode() if integration else NOT_ROUTED
            queued[name] = queued.get(name, 0) + int(depth)
            waiting[name] = waiting.get(name, 0) + 1
            oldest[name] = max(oldest.get(name, 0.0), _age(head, at))
    extra = sorted((set(queued) | set(in_flight)) - set(configured))
    rows = tuple(
        Pressure(
            integration=name,
            in_flight=in_flight.get(name, 0),
            queued=queued.get(name, 0),
            conversations=waiting.get(name, 0),
            oldest_seconds=round(oldest.get(name, 0.0), 3),
        )
        for name in [*configured, *extra]
    )
    return Reading(at=at, rows=rows)


def _age(head: bytes | None, now: float) -> float:
    """Seconds since the connector accepted an inbox item (0 for an item that does not say)."""
    if not head:
        return 0.0
    try:
        received_at = json.loads(head).get("received_at")
    except (ValueError, AttributeError):
        return 0.0
    return max(0.0, now - float(received_at)) if isinstance(received_at, int | float) else 0.0
