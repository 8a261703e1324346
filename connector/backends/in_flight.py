"""Calls in flight to each contact-center integration, in this process.

An integration's `max_in_flight` bounds the HTTP calls one process makes to it at once (the
drain's loops grow with latency, docs/architecture.md "Calls in flight"); a backend's client holds
one turn per call (`IN_FLIGHT.call`). A call that finds the bound taken waits up to
TURN_WAIT_SECONDS for a turn, then raises NoTurn: the drain retries the item a moment later, in
order, never lost, not counted as a failed attempt nor against the integration's circuit breaker
(the contact center never failed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from connector.config.model import Integration
from connector.errors import RetryableError

TURN_WAIT_SECONDS = 5.0
"""Longest wait for a free call before the item is retried later (well inside a conversation's
lease, which the waiting loop holds)."""


class NoTurn(RetryableError):
    """Every call the integration allows this process is taken: the item waits and is retried."""


class InFlight:
    """One gate per integration name; a changed `max_in_flight` (a reload) gets a new gate, and the
    calls already through the old one finish there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[str, tuple[int, threading.BoundedSemaphore]] = {}

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
        try:
            yield
        finally:
            gate.release()

    def _gate(self, integration: Integration) -> threading.BoundedSemaphore:
        with self._lock:
            found = self._gates.get(integration.name)
            if found is None or found[0] != integration.max_in_flight:
                found = (integration.max_in_flight, threading.BoundedSemaphore(integration.max_in_flight))
                self._gates[integration.name] = found
            return found[1]


IN_FLIGHT = InFlight()
"""This process's gates (its drain loops and availability probes share them)."""
