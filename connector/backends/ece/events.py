"""ECE's callback events (docs/protocols/ece.md, "Callback events") as neutral agent events.

The one place that reads ECE's event types: `text/plain`, `text/html`, `startTyping`, `endTyping`,
`pagePush`, `uploadAttachment`, `assigned`, `transfer`, `acceptAttachment`, `rejectAttachment`,
`complete`. A type the connector does not act on becomes OTHER, so it is acknowledged and shows on
the timeline instead of being retried by ECE forever.
"""

from __future__ import annotations

from typing import Any

from connector.backends.events import Agent, AgentEvent, AgentEventKind, AgentFile, TransferTarget
from connector.messages.text import page_push_text

_SIMPLE = {
    "startTyping": AgentEventKind.TYPING_START,
    "endTyping": AgentEventKind.TYPING_END,
    "complete": AgentEventKind.CLOSED,
}


def agent_event(event: dict[str, Any]) -> AgentEvent:
    """One validated callback event (`callback.parse_batch`) → its neutral event."""
    kind = str(_object(event.get("type")).get("value") or "")
    common: dict[str, Any] = {
        "conversation": str(_object(event.get("conversation")).get("id") or ""),
        "key": f"ece:{event.get('id')}",
        "label": kind or None,
    }
    sender = _object(_object(event.get("sender")).get("user"))
    agent = Agent(id=_text(sender.get("id")), name=_text(sender.get("name"))) if sender else None
    content = event.get("content")
    attachment = _object(event.get("attachment"))
    if kind in ("text/plain", "text/html"):
        return AgentEvent(AgentEventKind.TEXT, text=str(content or ""), html=kind == "text/html", agent=agent, **common)
    if kind in _SIMPLE:
        return AgentEvent(_SIMPLE[kind], agent=agent, **common)
    if kind == "pagePush":
        try:
            return AgentEvent(AgentEventKind.TEXT, text=page_push_text(str(content or "")), agent=agent, **common)
        except ValueError:
            return AgentEvent(
                AgentEventKind.OTHER, extra={"note": "page push without a URL: nothing to send"}, **common
            )
    if kind == "uploadAttachment":
        file = AgentFile(
            name=str(attachment.get("name") or "file"),
            url=_text(attachment.get("url")),
            mime_type=str(attachment.get("mimeType") or "application/octet-stream"),
            size=attachment.get("size") if isinstance(attachment.get("size"), int) else None,
        )
        return AgentEvent(AgentEventKind.FILE, file=file, agent=agent, **common)
    if kind == "assigned":
        return AgentEvent(AgentEventKind.ASSIGNED, agent=agent, **common)
    if kind == "transfer":
        transfer = _object(event.get("transfer"))
        target = TransferTarget("agent" if transfer.get("type") == "agent" else "queue", _text(transfer.get("name")))
        return AgentEvent(AgentEventKind.TRANSFERRED, transfer=target, **common)
    if kind in ("acceptAttachment", "rejectAttachment"):
        reviewed = AgentFile(name=_text(attachment.get("name")), id=_text(attachment.get("id")))
        verdict = AgentEventKind.FILE_ACCEPTED if kind == "acceptAttachment" else AgentEventKind.FILE_REJECTED
        return AgentEvent(verdict, file=reviewed, **common)
    return AgentEvent(AgentEventKind.OTHER, **common)


def _object(value: Any) -> dict[str, Any]:
    """An optional part of the event (sender, attachment, transfer) that is not an object is read as
    absent: the event still reaches the customer instead of failing the whole batch."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
