"""The contact-center side: where a routed conversation goes (ECE, or the Hybrid Chat router).

This is the seam between the drain and a backend. A backend registers itself for an integration
`type`; the drain hands it each customer event of an open conversation, in order. A type with no
backend (`hybrid` until the Hybrid Chat router exists) records routed events on the thread and
logs them as waiting.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from connector.channels.base import InboundEvent
from connector.config.model import Integration
from connector.store.effects import Effects
from connector.store.threads import Thread

if TYPE_CHECKING:
    from connector.runtime import Runtime


class Backend(Protocol):
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


_BACKENDS: dict[str, Backend] = {}
_BUILT_IN = {"ece": "connector.backends.ece.backend"}
"""Backends that register themselves on import, imported the first time their type is needed."""


def register(integration_type: str, backend: Backend) -> None:
    _BACKENDS[integration_type] = backend


def backend_for(integration: Integration) -> Backend | None:
    if integration.type not in _BACKENDS and integration.type in _BUILT_IN:
        importlib.import_module(_BUILT_IN[integration.type])
    return _BACKENDS.get(integration.type)
