"""Retry state of a box's head item: backoff with jitter, the server's wait honoured, a horizon.

Only the head of a box is ever retried (its order matters), so one record per box suffices. The
record is keyed by a digest of the item: a different head (the failed one was dead-lettered or
requeued) starts from zero. The commit that takes the item out deletes the record.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline

from connector.settings import Settings
from connector.store import keys, replies
from connector.store.boxes import Box


@dataclass(frozen=True)
class RetryDecision:
    give_up: bool
    """The item has failed for longer than the horizon: dead-letter it."""
    wait: float
    attempts: int
    until: float = 0.0
    """When the head is due again (unix s); the box sits out until then."""


def backoff_seconds(attempts: int, base: float, cap: float, hint: float | None = None) -> float:
    """Exponential backoff with jitter in [½, 1] of the step (so retries of many threads spread
    out), never shorter than the server's own hint (429 Retry-After)."""
    step: float = min(cap, base * (2 ** max(attempts - 1, 0)))  # int ** int is Any to typeshed
    wait = step * (0.5 + random.random() / 2)
    return max(wait, hint or 0.0)


def record_failure(
    redis: Redis,
    thread_id: str,
    box: Box,
    item: bytes,
    settings: Settings,
    hint: float | None,
    now: float,
    *,
    not_after: float | None = None,
) -> RetryDecision:
    """Count the head's failure and choose its retry time: the backoff, or `not_after` when that is
    sooner (the thread probes a service whose breaker it opened)."""
    digest = hashlib.sha256(item).hexdigest()[:16]
    raw = replies.bytes_or_none(redis.hget(keys.retry_state(thread_id), box.value))
    state = json.loads(raw) if raw else {}
    if state.get("digest") != digest:
        state = {"digest": digest, "attempts": 0, "first_at": now}
    state["attempts"] += 1
    if now - state["first_at"] >= settings.retry_horizon_seconds:
        return RetryDecision(give_up=True, wait=0.0, attempts=state["attempts"])
    wait = backoff_seconds(state["attempts"], settings.retry_base_seconds, settings.retry_max_seconds, hint)
    if not_after is not None:
        wait = max(0.0, min(wait, not_after - now))
    redis.hset(keys.retry_state(thread_id), mapping={box.value: json.dumps(state), f"{box.value}_until": now + wait})
    return RetryDecision(give_up=False, wait=wait, attempts=state["attempts"], until=now + wait)


def sit_out(client: Redis | Pipeline, thread_id: str, box: Box, until: float) -> None:
    """The box's head waits until `until` without a failed attempt counted (its item never failed:
    e.g. every call its integration allows was in flight)."""
    client.hset(keys.retry_state(thread_id), f"{box.value}_until", repr(until))
