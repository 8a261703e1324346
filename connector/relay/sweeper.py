"""The sweeper: re-wakes every inbox that holds items while no drain holds its lease.

RQ alone notices an abandoned job only after 90 s to 11 min (anchors §2.2); the inbox is the record
and the job only a wake-up, so a lost or killed job delays a thread by one sweep interval at most
after its lease lapses. One worker sweeps per round (a short Redis lock), the others skip.
"""

from __future__ import annotations

import logging
import threading

from redis import Redis
from redis.exceptions import RedisError

from connector.relay.queues import enqueue_dispatch
from connector.store import keys
from connector.store.inbox import Inboxes

log = logging.getLogger(__name__)


def sweep(redis: Redis, lock_seconds: float, inboxes: Inboxes) -> list[str]:
    """Wake the stranded threads once; returns their ids (empty if another worker swept this round).

    A thread whose wake-up is still queued is left alone: under a backlog the queue is slow, not
    lost, and a second job would only add load. A lost wake-up's flag expires (wake TTL) and the
    next sweep re-wakes the thread.
    """
    if not redis.set(keys.sweeper_lock(), "1", nx=True, px=max(int(lock_seconds * 1000), 100)):
        return []
    woken: list[str] = []
    for thread_id in inboxes.active():
        if inboxes.stranded(thread_id):
            if (slot := inboxes.make_ready(thread_id)) is not None:
                enqueue_dispatch(redis, slot)
            woken.append(thread_id)
    # Ready threads whose dispatch job was lost: its slot has lapsed, so claim a new one.
    if (slot := inboxes.claim_dispatch()) is not None:
        enqueue_dispatch(redis, slot)
    if woken:
        log.warning("sweeper re-woke stranded inboxes", extra={"count": len(woken)})
    return woken


class Sweeper(threading.Thread):
    """Runs `sweep` every `interval` seconds beside a worker until `stop()`."""

    def __init__(self, redis: Redis, interval: float, inboxes: Inboxes) -> None:
        super().__init__(name="inbox-sweeper", daemon=True)
        self.redis = redis
        self.interval = interval
        self.inboxes = inboxes
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                sweep(self.redis, self.interval * 0.8, self.inboxes)
            except RedisError as exc:
                log.warning("sweep skipped, Redis unavailable: %s", exc)

    def stop(self) -> None:
        self._stop_event.set()
