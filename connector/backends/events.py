"""What the agent side did, in the connector's own words: the neutral events a backend puts in a
thread's outbox for the relay.

Each backend turns its contact center's vocabulary into these (`backends/ece/events.py` for ECE's
callback events), so the relay that delivers them to the customer knows agents, not ECE. An event
carries the backend's conversation id: the relay applies state changes only for the thread's
current conversation, and still delivers the content of an earlier one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

SOURCE = "agent"
"""The `source` of an outbox item that carries an AgentEvent."""


class AgentEventKind(StrEnum):
    TEXT = "text"  # the agent wrote (plain text or HTML)
    TYPING_START = "typing_start"
    TYPING_END = "typing_end"
    ASSIGNED = "assigned"  # an agent took the chat
    TRANSFERRED = "transferred"  # to a queue or to a named agent
    CLOSED = "closed"  # the agent side ended the chat
    FILE = "file"  # the agent sent a file
    FILE_ACCEPTED = "file_accepted"  # the agent accepted the customer's file
    FILE_REJECTED = "file_rejected"
    OTHER = "other"  # something the connector does not act on: acknowledged and noted

    @property
    def changes_state(self) -> bool:
        """Content (text, typing, files) is delivered even for an earlier conversation; these are not."""
        return self not in (
            AgentEventKind.TEXT,
            AgentEventKind.FILE,
            AgentEventKind.TYPING_START,
            AgentEventKind.TYPING_END,
        )


@dataclass(frozen=True)
class Agent:
    id: str | None
    name: str | None


@dataclass(frozen=True)
class TransferTarget:
    type: str  # "queue" | "agent"
    name: str | None


@dataclass(frozen=True)
class AgentFile:
    """A file the agent sent (`url` from the contact center: trusted), or the customer's file the
    agent accepted or rejected (`name`, `id`)."""

    name: str | None = None
    url: str | None = None
    mime_type: str | None = None
    size: int | None = None
    id: str | None = None


@dataclass(frozen=True)
class AgentEvent:
    kind: AgentEventKind
    conversation: str
    """The backend's conversation id (the thread's `remote_id` while it is current)."""
    key: str
    """Unique per event within the integration ("ece:8812"): the base of every effect key and of
    the idempotency keys the providers get, so a repeated item skips what it already sent (see
    docs/architecture.md, "Idempotent effects", for the one send a crash can repeat)."""
    text: str | None = None
    html: bool = False
    agent: Agent | None = None
    transfer: TransferTarget | None = None
    file: AgentFile | None = None
    label: str | None = None
    """The backend's own name of the event (the timeline shows it for OTHER)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_item(self, integration: str) -> dict[str, Any]:
        """The outbox item (JSON-ready)."""
        event = {k: v for k, v in asdict(self).items() if v not in (None, False, {}) or k == "kind"}
        event["kind"] = self.kind.value
        return {"source": SOURCE, "integration": integration, "event": event}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> AgentEvent:
        """Raises KeyError / ValueError / TypeError on an item that is not an agent event."""
        event = dict(item["event"])
        return cls(
            kind=AgentEventKind(event["kind"]),
            conversation=str(event["conversation"]),
            key=str(event["key"]),
            text=event.get("text"),
            html=bool(event.get("html")),
            agent=Agent(**event["agent"]) if event.get("agent") else None,
            transfer=TransferTarget(**event["transfer"]) if event.get("transfer") else None,
            file=AgentFile(**event["file"]) if event.get("file") else None,
            label=event.get("label"),
            extra=dict(event.get("extra") or {}),
        )
