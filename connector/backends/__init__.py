"""The contact-center side: where a routed conversation goes (ECE, or the Hybrid Chat router).

This is the seam between the drain and a backend. A backend registers itself for an integration
`type`; the drain hands it each customer event of an open conversation, in order. Until a backend
for a type is registered, routed events are recorded on the thread and logged as waiting, so the
foundation runs (and is tested) before the ECE issue lands.
"""

from __future__ import annotations

from typing import Protocol

from connector.channels.base import InboundEvent
from connector.config.model import Integration
from connector.store.threads import Thread


class Backend(Protocol):
    def deliver(self, integration: Integration, thread: Thread, event: InboundEvent, *, start: bool) -> None:
        """Start (`start=True`) or continue the thread's conversation with the event.

        Called at least once per event (a crash repeats it): implementations key their effects on
        `event.provider_id` and `thread.conversation_id` so a repeat is harmless.
        """


_BACKENDS: dict[str, Backend] = {}


def register(integration_type: str, backend: Backend) -> None:
    _BACKENDS[integration_type] = backend


def backend_for(integration: Integration) -> Backend | None:
    return _BACKENDS.get(integration.type)
