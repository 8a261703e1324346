"""ECE callback events → neutral agent events (backends/ece/events.py), one row per ECE event type."""

from __future__ import annotations

import pytest

from connector.backends.ece.events import agent_event
from connector.backends.events import Agent, AgentEvent, AgentEventKind, AgentFile, TransferTarget

ALICE = {"user": {"id": "1001", "name": "alice"}}


def ece(kind: str, **fields) -> dict:
    return {"id": "88", "conversation": {"id": "conv-1"}, "type": {"value": kind}, "sender": ALICE, **fields}


def neutral(kind: AgentEventKind, label: str, **fields) -> AgentEvent:
    agent = fields.pop("agent", Agent("1001", "alice"))
    return AgentEvent(kind, conversation="conv-1", key="ece:88", label=label, agent=agent, **fields)


ROWS = [
    ("text/plain", {"content": "Hi"}, neutral(AgentEventKind.TEXT, "text/plain", text="Hi")),
    ("text/html", {"content": "<b>Hi</b>"}, neutral(AgentEventKind.TEXT, "text/html", text="<b>Hi</b>", html=True)),
    ("startTyping", {}, neutral(AgentEventKind.TYPING_START, "startTyping")),
    ("endTyping", {}, neutral(AgentEventKind.TYPING_END, "endTyping")),
    (
        "pagePush",
        {"content": "https://example.com/help"},
        neutral(AgentEventKind.TEXT, "pagePush", text="https://example.com/help"),
    ),
    (
        "pagePush",
        {"content": ""},
        neutral(
            AgentEventKind.OTHER, "pagePush", agent=None, extra={"note": "page push without a URL: nothing to send"}
        ),
    ),
    (
        "uploadAttachment",
        {"attachment": {"url": "https://ece/f/1", "name": "terms.pdf", "mimeType": "application/pdf", "size": 9}},
        neutral(
            AgentEventKind.FILE,
            "uploadAttachment",
            file=AgentFile(name="terms.pdf", url="https://ece/f/1", mime_type="application/pdf", size=9),
        ),
    ),
    (
        "uploadAttachment",
        {"attachment": {}},
        neutral(
            AgentEventKind.FILE, "uploadAttachment", file=AgentFile(name="file", mime_type="application/octet-stream")
        ),
    ),
    ("assigned", {}, neutral(AgentEventKind.ASSIGNED, "assigned")),
    (
        "transfer",
        {"transfer": {"type": "agent", "name": "bob"}},
        neutral(AgentEventKind.TRANSFERRED, "transfer", agent=None, transfer=TransferTarget("agent", "bob")),
    ),
    (
        "transfer",
        {"transfer": {"name": "Billing"}},
        neutral(AgentEventKind.TRANSFERRED, "transfer", agent=None, transfer=TransferTarget("queue", "Billing")),
    ),
    (
        "acceptAttachment",
        {"attachment": {"id": "a1", "name": "id.png"}},
        neutral(AgentEventKind.FILE_ACCEPTED, "acceptAttachment", agent=None, file=AgentFile(name="id.png", id="a1")),
    ),
    (
        "rejectAttachment",
        {"attachment": {"id": "a1", "name": "id.png"}},
        neutral(AgentEventKind.FILE_REJECTED, "rejectAttachment", agent=None, file=AgentFile(name="id.png", id="a1")),
    ),
    ("complete", {}, neutral(AgentEventKind.CLOSED, "complete")),
    ("customerNote", {}, neutral(AgentEventKind.OTHER, "customerNote", agent=None)),
]


@pytest.mark.parametrize(("kind", "fields", "expected"), ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_each_ece_event_type_becomes_its_neutral_event(kind, fields, expected):
    assert agent_event(ece(kind, **fields)) == expected


@pytest.mark.parametrize(("kind", "fields", "expected"), ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_the_outbox_item_reads_back_as_the_same_event(kind, fields, expected):
    item = agent_event(ece(kind, **fields)).to_item("E2E")
    assert item["source"] == "agent" and item["integration"] == "E2E"
    assert AgentEvent.from_item(item) == expected
