"""The sweeper: re-wakes every inbox that holds items while no drain holds its lease, puts the
threads whose retry time has come back on the ready list, and fires the timers that came due.

RQ alone notices an abandoned job only after 90 s to 11 min
(docs/architecture.md, "Leases and the sweeper"); the inbox is the record and the job only a
wake-up, so a lost or killed job delays a thread by one sweep interval at most after its lease
lapses. One worker sweeps per round (a short Redis lock), the others skip.

Retries and timers (`store/timers.py`) wait in Redis zsets rather than as RQ scheduled jobs:
during an outage every conversation retries, and a scheduled job costs a job hash, two registries,
the scheduler's move and a worker's pick-up each time, where a zset member costs one ZADD and a
share of one poll. Every worker polls (one atomic script, so two polls never wake a thread twice or
claim a timer twice), so retries and timers go on while any worker lives.
"""

from __future__ import annotations

import logging
import threading
import time

from redis import Redis
from redis.exceptions import RedisError

from connector import backends
from connector.queues import DEFERRED_POLL_SECONDS, enqueue_dispatch
from connector.relay.outbox import fire_due_timers
from connector.runtime import Runtime
from connector.store import keys
from connector.store.boxes import Boxes
from connector.store.dispatch import Dispatch

log = logging.getLogger(__name__)


def sweep(redis: Redis, lock_seconds: float, boxes: Boxes, dispatch: Dispatch) -> list[str]:
    """Wake the stranded threads once; returns their ids (empty if another worker swept this round).

    A thread whose wake-up is still queued is left alone: under a backlog the queue is slow, not
    lost, and a second job would only add load. A lost wake-up's flag expires (wake TTL) and the
    next sweep re-wakes the thread.
    """
    if not redis.set(keys.sweeper_lock(), "1", nx=True, px=max(int(lock_seconds * 1000), 100)):
        return []
    woken: list[str] = []
    for thread_id in boxes.stranded_among(boxes.active()):
        if (slot := dispatch.make_ready(thread_id)) is not None:
            enqueue_dispatch(redis, slot)
        woken.append(thread_id)
    # Ready threads whose dispatch job was lost: its slot has lapsed, so claim a new one.
    if (slot := dispatch.claim()) is not None:
        enqueue_dispatch(redis, slot)
    if woken:
        log.warning("sweeper re-woke stranded inboxes", extra={"count": len(woken)})
    return woken


def promote_due(redis: Redis, dispatch: Dispatch) -> int:
    """Wake the threads whose retry time has come; returns how many deferred wake-ups came due."""
    moved, slot = dispatch.promote_due()
    if slot is not None:
        enqueue_dispatch(redis, slot)
    return moved


class Sweeper(threading.Thread):
    """Beside a worker until `stop()`: `promote_due`, the timers come due (`fire_due_timers`) and the
    backends' periodic work (`backends.tick`) every DEFERRED_POLL_SECONDS, `sweep` every `interval`
    seconds."""

    def __init__(
        self, redis: Redis, interval: float, boxes: Boxes, dispatch: Dispatch, runtime: Runtime | None = None
    ) -> None:
        super().__init__(name="inbox-sweeper", daemon=True)
        self.runtime = runtime
        self.redis = redis
        self.interval = interval
        self.boxes = boxes
        self.dispatch = dispatch
        self._stop_event = threading.Event()

    def run(self) -> None:
        next_sweep = time.monotonic() + self.interval
        while not self._stop_event.wait(DEFERRED_POLL_SECONDS):
            try:
                promote_due(self.redis, self.dispatch)
                if self.runtime is not None:
                    fire_due_timers(self.runtime)
                    backends.tick(self.runtime)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.interval
                    sweep(self.redis, self.interval * 0.8, self.boxes, self.dispatch)
            except RedisError as exc:
                log.warning("sweep skipped, Redis unavailable: %s", exc)
            except Exception:  # a backend's bug must not stop the retries and sweeps of this worker
                log.exception("periodic work failed")

    def stop(self) -> None:
        self._stop_event.set()
