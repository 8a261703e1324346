"""Calls in flight to each contact-center integration, in this process.

An integration's `max_in_flight` bounds the HTTP calls one process makes to it at once (the
drain's loops grow with latency, docs/architecture.md "Calls in flight"); a backend's client holds
one turn per call (`IN_FLIGHT.call`). A call that finds the bound taken waits up to
TURN_WAIT_SECONDS for a turn, then raises NoTurn: the drain retries the item a moment later, in
order, never lost, not counted as a failed attempt nor against the integration's circuit breaker
(the contact center never failed).

Each process publishes how many calls it holds per integration (`publish`, from its drain jobs'
watch, every PUBLISH_SECONDS) to one Redis hash, so `/metrics`, the home page and `/readyz`
(operations/backpressure.py) show the calls in flight of every worker together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis

from connector.config.model import Integration
from connector.errors import RetryableError
from connector.store import keys, replies

TURN_WAIT_SECONDS = 5.0
"""Longest wait for a free call before the item is retried later (well inside a conversation's
lease, which the waiting loop holds)."""
PUBLISH_SECONDS = 1.0
"""How often a draining process writes its calls in flight to Redis."""
FRESH_SECONDS = 5.0
"""A process's published count older than this is not counted (the process stopped or died)."""
FORGET_SECONDS = 300.0
"""Published counts this old are removed by the next reader (processes that are gone)."""
FIELD_SEPARATOR = "|"


class NoTurn(RetryableError):
    """Every call the integration allows this process is taken: the item waits and is retried."""


class InFlight:
    """One gate per integration name; a changed `max_in_flight` (a reload) gets a new gate, and the
    calls already through the old one finish there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[str, tuple[int, threading.BoundedSemaphore]] = {}
        self._held: dict[str, int] = {}
        self._published_at = 0.0

    @contextmanager
    def call(self, integration: Integration, wait_seconds: float = TURN_WAIT_SECONDS) -> Iterator[None]:
        """Hold one of the integration's calls for the block; NoTurn when none frees in time."""
        gate = self._gate(integration)
        if not gate.acquire(timeout=wait_seconds):
            raise NoTurn(
                f"{integration.max_in_flight} calls to {integration.name} already in flight in this process"
                " (max_in_flight): the message waits its turn",
                wait=1.0,
            )
        with self._lock:
            self._held[integration.name] = self._held.get(integration.name, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._held[integration.name] -= 1
            gate.release()

    def held(self) -> dict[str, int]:
        """Calls this process holds now, per integration it has called."""
        with self._lock:
            return dict(self._held)

    def publish(self, redis: Redis, process: str, *, force: bool = False) -> None:
        """Write this process's calls in flight (`integration|process` → `count|unix time`), at most
        once per PUBLISH_SECONDS unless `force` (a job ending writes its last count at once)."""
        now = time.time()
        if not force and now - self._published_at < PUBLISH_SECONDS:
            return
        self._published_at = now
        held = self.held()
        if held:
            fields = {
                f"{name}{FIELD_SEPARATOR}{process}": f"{count}{FIELD_SEPARATOR}{now:.3f}"
                for name, count in held.items()
            }
            redis.hset(keys.in_flight(), mapping=fields)

    def _gate(self, integration: Integration) -> threading.BoundedSemaphore:
        with self._lock:
            found = self._gates.get(integration.name)
            if found is None or found[0] != integration.max_in_flight:
                found = (integration.max_in_flight, threading.BoundedSemaphore(integration.max_in_flight))
                self._gates[integration.name] = found
            return found[1]


IN_FLIGHT = InFlight()
"""This process's gates (its drain loops and availability probes share them)."""


def published(redis: Redis, now: float) -> dict[str, int]:
    """Calls in flight per integration, summed over the processes that published lately; entries
    of processes gone for FORGET_SECONDS are removed on the way."""
    totals: dict[str, int] = {}
    forgotten: list[str] = []
    for field, value in replies.bytes_hash(redis.hgetall(keys.in_flight())).items():
        key = field.decode()
        name = key.partition(FIELD_SEPARATOR)[0]
        count, _, at = value.decode().partition(FIELD_SEPARATOR)
        try:
            age = now - float(at)
            calls = int(count)
        except ValueError:
            forgotten.append(key)
            continue
        if age > FORGET_SECONDS:
            forgotten.append(key)
        elif age <= FRESH_SECONDS:
            totals[name] = totals.get(name, 0) + calls
    if forgotten:
        redis.hdel(keys.in_flight(), *forgotten)
    return totals
