"""The contact-center side: where a routed conversation goes (ECE, or the Hybrid Chat router).

This is the seam between the relay and a backend, and the only part of `backends/` the rest of the
connector imports. A backend registers itself for an integration `type`; the drain hands it each
customer event of an open conversation, in order (`deliver`); what the agent side does comes back
as neutral outbox items (`backends/outbox.py`, `backends/events.py`), so the relay never reads a
backend's own event vocabulary. A type with no backend records routed events on the thread and
logs them as waiting.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from connector.channels.base import InboundEvent
from connector.config.model import EntryPoint, Integration
from connector.store.effects import Effects
from connector.store.threads import Thread

if TYPE_CHECKING:
    from flask import Blueprint
    from redis import Redis

    from connector.runtime import Runtime


@dataclass(frozen=True)
class Availability:
    """The live state of an entry point: the availability gate before a start, and the Agent /
    Depth / Wait / Status indicators of the UI. `None` means the contact center did not say."""

    chat_allowed: bool  # the entry point is active
    agents_available: bool
    capacity: int | None  # free chat slots
    eligibility: int | None  # 0 ok, 1 no agent, 2 queue full (ECE's checkEligibility codes)
    queue_depth: int | None  # chats waiting
    wait_seconds: int | None  # expected wait

    @property
    def can_take_chats(self) -> bool:
        """Unknown capacity or eligibility does not close the gate; only a definite "no" does."""
        return self.chat_allowed and self.agents_available and self.eligibility in (0, None) and self.capacity != 0


@dataclass(frozen=True)
class QueuePosition:
    """A waiting customer's place: 1 is next. `exact` is False when the contact center does not say
    and the connector counts only the conversations it queued itself (ECE)."""

    position: int
    exact: bool


@dataclass(frozen=True)
class Finding:
    """One result of an integration's "test" (token, each entry point, ...), as an operator reads it."""

    check: str
    ok: bool
    message: str


class Backend(Protocol):
    type: str
    """The integration `type` it serves."""
    queues_are_entry_points: bool
    """A transfer to a queue names one of the integration's entry points (Hybrid Chat), so the chat
    then waits there by that entry point's settings (max wait, queue status); ECE's queues are its own."""

    def deliver(
        self,
        runtime: Runtime,
        integration: Integration,
        thread: Thread,
        event: InboundEvent,
        *,
        start: bool,
        effects: Effects,
    ) -> str | None:
        """Start (`start=True`) or continue the thread's conversation with the event; returns a note
        for the timeline. May change `thread` (state, remote id): the drain commits it with the item.

        Called at least once per event (a crash or a retry repeats it): effects already done are in
        `effects`, so a repeat skips them. Raises RetryableError to have the item retried later,
        in order, with `outage=True` when the service as a whole failed (the integration's circuit
        breaker counts those); handles permanent failures itself.
        """

    def availability(
        self, integration: Integration, entry_point: EntryPoint, redis: Redis, *, timeout: tuple[float, float] | None
    ) -> Availability:
        """What the contact center says about the entry point now (a network call). `timeout` is an
        operator's shorter one; None keeps the backend's own. Raises RetryableError / PermanentError."""

    def queue_position(self, runtime: Runtime, integration: Integration, thread: Thread) -> QueuePosition | None:
        """The thread's place in its entry point's queue, None when it is not waiting there."""

    def give_up_waiting(self, runtime: Runtime, integration: Integration, thread: Thread) -> bool:
        """The customer waited the entry point's `max_wait_seconds` and no agent has taken the chat:
        take it out of the queue and say True, so the customer hears `no_agents` and the unavailable
        policy runs; False when an agent has it already, or the contact center keeps its own queue."""

    def tell_agent(self, runtime: Runtime, integration: Integration, thread: Thread, note: str) -> None:
        """Put a note from the connector in front of the thread's agent (e.g. "not delivered: the
        customer's window is closed"). Raises PermanentError when the conversation is gone."""

    def close(self, runtime: Runtime, integration: Integration, thread: Thread) -> None:
        """End the thread's conversation on the contact-center side (the customer left); a conversation
        already ended there counts as done."""

    def test(self, integration: Integration, redis: Redis) -> list[Finding]:
        """The integration's "test" checks, in order; never raises for a contact-center fault."""

    def tick(self, runtime: Runtime) -> None:
        """Periodic work of the backend, a few times a second on every worker (Hybrid Chat: offers
        that rang out, routing that a busy router left for later); nothing for most."""

    def own_agents(self, runtime: Runtime) -> dict[str, str]:
        """Agent id → chat state (READY, NOT_READY, BUSY, INTERRUPTED) of the agents only this backend
        knows, who are not in media blending's registry (Hybrid Chat's local agents), for the
        operators' overview; {} when the contact center keeps its own agents (ECE)."""

    def neutral_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """An outbox item this backend wrote in its own words (before items were neutral), as a
        neutral one; kept so that an upgrade never strands what was queued."""

    @property
    def blueprint(self) -> Blueprint | None:
        """The backend's own HTTP endpoints (ECE's callback), registered by `create_app`."""


_BACKENDS: dict[str, Backend] = {}
BUILT_IN = {"ece": "connector.backends.ece.backend", "hybrid": "connector.backends.hybrid.backend"}
"""Backends that register themselves on import, imported the first time their type is needed."""


def register(backend: Backend) -> None:
    _BACKENDS[backend.type] = backend


def of_type(integration_type: str) -> Backend | None:
    if integration_type not in _BACKENDS and integration_type in BUILT_IN:
        importlib.import_module(BUILT_IN[integration_type])
    return _BACKENDS.get(integration_type)


def backend_for(integration: Integration) -> Backend | None:
    return of_type(integration.type)


def tick(runtime: Runtime) -> None:
    """Each configured backend's periodic work (`Backend.tick`)."""
    for integration_type in sorted({integration.type for integration in runtime.config.integrations}):
        backend = of_type(integration_type)
        if backend is not None:
            backend.tick(runtime)


def built_in() -> list[Backend]:
    """Every built-in backend (the web app registers their endpoints)."""
    return [backend for name in BUILT_IN if (backend := of_type(name)) is not None]
