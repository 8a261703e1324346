"""Conversation threads in Redis: who the customer is, where their conversation is routed, its state."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from connector.channels.sending import Recipient
from connector.conversations import State
from connector.store import keys, replies


@dataclass
class Thread:
    id: str
    channel: str = ""
    asset: str = ""
    customer: str = ""
    state: State = State.IDLE
    sequence: int = 0
    """Number of conversations started on this thread; the current one is `conversation_id`."""
    integration: str | None = None
    entry_point: str | None = None
    rule: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    last_inbound_at: float | None = None
    """Provider time of the customer's last message: messaging windows count from it."""
    last_message_id: str | None = None
    """Provider id of the customer's last message (WhatsApp's typing indicator refers to it)."""
    remote_id: str | None = None
    """The contact center's id of the current conversation (ECE conversation id)."""
    agent_id: str | None = None
    agent_name: str | None = None
    queued_at: float | None = None
    unavailable_until: float | None = None
    """While UNAVAILABLE: when the unavailable policy's interval ends."""
    typing_at: float | None = None
    """When a typing-start was last shown to the customer and not yet ended (throttle: one per 10 s)."""
    queue_position: int | None = None
    """The place in the queue the customer was last told (a new `queue_status` only when it improves)."""
    queue_checks: int = 0
    """Queue-status timers scheduled in this conversation; the next one's round number."""
    wait_timers: int = 0
    """The round of the max-wait timer that counts now: a transfer to another queue starts a new
    one, and a timer of an earlier round (an earlier queue's wait) does nothing."""
    first_text: str | None = None
    """The text of the current conversation's first customer message that had text (capped at
    FIRST_TEXT_LIMIT): operators find a conversation by it. Set by the drain when the conversation
    starts, so it lives in the thread's hash and goes when the thread does."""
    flow: str | None = None
    """While the conversation runs a flow (connector/flows/): its place in it (`FlowState` JSON).
    Written with the thread in the drain's commit, so the flow moves exactly when a message is taken."""
    locale: str | None = None
    """The current conversation's locale, chosen by its flow's `language` step (a template folder
    name): system messages are written in it rather than in the channel's locale."""
    language: str | None = None
    """The customer's language (ISO 639-1) in the current conversation, as rules with `language:`
    and a flow's `language` step found it (connector/flows/language.py `customer_language`)."""
    attributes: dict[str, str] = field(default_factory=dict)
    """The current conversation's custom attributes from its flow (an `ask` step's answers): they
    reach the contact center with the conversation (backends/attributes.py)."""
    survey: str | None = None
    """While the closed conversation's post-chat survey waits for the customer: its place in it
    (`SurveyState` JSON, connector/flows/survey.py); a message then answers it, and starts nothing."""

    def recipient(self) -> Recipient:
        """The customer, as much as a channel's send needs to know."""
        return Recipient(
            address=self.customer,
            details=self.details,
            last_inbound_at=self.last_inbound_at,
            last_message_id=self.last_message_id,
        )

    @property
    def conversation_id(self) -> str:
        return f"{self.id}-{self.sequence}"

    @property
    def customer_name(self) -> str | None:
        """The customer's name as the channel gave it: in-app's `customer.name`, the profile name of
        WhatsApp and Twilio (WhatsApp senders), Messenger's User Profile API (relay/profiles.py)."""
        for name in ("name", "profile_name"):
            value = self.details.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        parts = [self.details.get(part) for part in ("first_name", "last_name")]
        joined = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
        return joined or None


_SCALARS = (
    "channel",
    "asset",
    "customer",
    "integration",
    "entry_point",
    "rule",
    "last_message_id",
    "remote_id",
    "agent_id",
    "agent_name",
    "first_text",
    "flow",
    "locale",
    "language",
    "survey",
)
_TIMES = ("started_at", "last_inbound_at", "queued_at", "unavailable_until", "typing_at")
_COUNTS = ("queue_position", "queue_checks", "wait_timers")
FIRST_TEXT_LIMIT = 200
"""Characters of a conversation's first message kept for search: enough for the phrase an operator
remembers, small enough that a search over thousands of threads moves little data."""


def load(redis: Redis, thread_id: str) -> Thread:
    raw = {k.decode(): v.decode() for k, v in replies.bytes_hash(redis.hgetall(keys.thread(thread_id))).items()}
    thread = Thread(id=thread_id)
    for name in _SCALARS:
        if raw.get(name):
            setattr(thread, name, raw[name])
    thread.state = State(raw.get("state", State.IDLE.value))
    thread.sequence = int(raw.get("sequence", 0))
    thread.details = json.loads(raw.get("details", "{}"))
    thread.attributes = json.loads(raw.get("attributes") or "{}")
    for name in _TIMES:
        setattr(thread, name, float(raw[name]) if raw.get(name) else None)
    thread.queue_position = int(raw["queue_position"]) if raw.get("queue_position") else None
    thread.queue_checks = int(raw.get("queue_checks") or 0)
    thread.wait_timers = int(raw.get("wait_timers") or 0)
    return thread


def save(redis: Redis, thread: Thread) -> None:
    redis.hset(keys.thread(thread.id), mapping=fields_of(thread))


def fields_of(thread: Thread) -> dict[str, str]:
    """The thread as the hash fields `load` reads back, plus `customer_name`, a copy of the name in
    `details` that the conversation list reads (and searches) without parsing every thread's details."""
    fields: dict[str, str] = {name: getattr(thread, name) or "" for name in _SCALARS}
    fields.update(
        customer_name=thread.customer_name or "",
        state=thread.state.value,
        sequence=str(thread.sequence),
        details=json.dumps(thread.details, sort_keys=True),
        attributes=json.dumps(thread.attributes, sort_keys=True),
        updated_at=repr(time.time()),
    )
    for name in _TIMES:
        value = getattr(thread, name)
        fields[name] = "" if value is None else repr(value)
    for name in _COUNTS:
        count = getattr(thread, name)
        fields[name] = "" if count is None else str(count)
    return fields


def merge_details(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Later details win, but a field the provider omits this time (e.g. profile name) is kept."""
    merged = dict(current)
    merged.update({k: v for k, v in new.items() if v not in (None, "")})
    return merged


def timeline(redis: Redis, thread_id: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in replies.bytes_list(redis.lrange(keys.timeline(thread_id), 0, -1))]
