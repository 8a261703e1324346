"""The ECE backend: customer events into ECE conversations, and what the relay and the operator
pages ask of ECE (availability, a note to the agent, ending a chat, the "test" checks). Registered
for integrations of type `ece`.

Resolve conversation (Webex Connect): an open conversation receives the event; none, or one ECE
no longer knows, means a new one is started. Before starting, the availability gate: an inactive
entry point gets the "entry point disabled" message; no agent or a full queue gets "no agents"
and the entry point's unavailable policy. Every call is an effect recorded per item once done, so
a repeat skips it; a start also records its attempt BEFORE the call, with a client reference, so a
repeat after a crash inside the start asks ECE for that conversation instead of starting a second.
What a crash at the worst moment still causes, per call: docs/architecture.md, "Idempotent effects".
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from typing import Any

from redis import Redis

from connector import backends
from connector.backends import Availability, Finding, QueuePosition, conversation
from connector.backends.attributes import custom_attributes, customer_attributes
from connector.backends.ece import callback, checks, events
from connector.backends.ece.client import EceClient, client_for
from connector.blending.chat_events import ChatAgent, publish_chat_ended
from connector.channels.base import Attachment, EventKind, InboundEvent
from connector.config.model import EntryPoint, Integration
from connector.conversations import State
from connector.errors import ConversationGone, PermanentError
from connector.runtime import Runtime
from connector.store import keys, waiting
from connector.store.effects import Effects, sent_file, sent_text, started
from connector.store.threads import Thread

log = logging.getLogger(__name__)


class AvailabilityCache:
    """Entry point availability per process, reused for `ttl` seconds when it says yes (a burst of new
    chats on one entry point asks ECE once), never when it says no (a customer is not turned away on
    a stale answer). One thread asks while the others of the process wait for its answer: a burst
    would otherwise send every drain thread's five calls to ECE at the same moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str], tuple[float, Availability]] = {}
        self._asking: dict[tuple[str, str], threading.Lock] = {}

    def get(self, client: EceClient, entry_point_id: str, ttl: float) -> Availability:
        key = (client.name, entry_point_id)
        if (cached := self._fresh(key)) is not None:
            return cached
        with self._lock:
            asking = self._asking.setdefault(key, threading.Lock())
        with asking:
            if (cached := self._fresh(key)) is not None:
                return cached
            availability = client.availability(entry_point_id)
            if availability.can_take_chats and ttl > 0:
                with self._lock:
                    self._answers[key] = (time.monotonic() + ttl, availability)
        return availability

    def _fresh(self, key: tuple[str, str]) -> Availability | None:
        with self._lock:
            cached = self._answers.get(key)
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None


_availability = AvailabilityCache()


CONVERSATION_MAP_TTL_SECONDS = 30 * 24 * 3600
"""How long an ECE conversation id maps back to its thread (late callbacks of an ended chat)."""


class EceBackend:
    type = "ece"
    queues_are_entry_points = False
    blueprint = callback.blueprint

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
        client = client_for(integration, runtime.redis)
        step = _Step(runtime, integration, thread, event, effects, client)
        if start or (thread.state is State.NEW and not thread.remote_id):
            return step.start()
        if thread.state is State.UNAVAILABLE:
            return step.while_unavailable()
        return step.forward()

    def availability(
        self, integration: Integration, entry_point: EntryPoint, redis: Redis, *, timeout: tuple[float, float] | None
    ) -> Availability:
        return client_for(integration, redis, timeout).availability(entry_point.id)

    def queue_position(self, runtime: Runtime, integration: Integration, thread: Thread) -> QueuePosition | None:
        # ECE reports an entry point's depth, not a customer's place: count the connector's own.
        found = waiting.position(runtime.redis, integration.name, thread.entry_point or "", thread.id)
        return None if found is None else QueuePosition(found, exact=False)

    def tick(self, runtime: Runtime) -> None:
        return None  # ECE routes its own chats: nothing to do between events

    def own_agents(self, runtime: Runtime) -> dict[str, str]:
        return {}  # ECE's agents are ECE's: the connector sees them only through Finesse (the registry)

    def give_up_waiting(self, runtime: Runtime, integration: Integration, thread: Thread) -> bool:
        return False  # ECE keeps its own queue; `max_wait_seconds` is the Wait indicator's threshold there

    def tell_agent(self, runtime: Runtime, integration: Integration, thread: Thread, note: str) -> None:
        if thread.remote_id:
            client_for(integration, runtime.redis).send_message(thread.remote_id, note)

    def close(self, runtime: Runtime, integration: Integration, thread: Thread) -> None:
        if thread.remote_id:
            _end(client_for(integration, runtime.redis), thread.remote_id)

    def test(self, integration: Integration, redis: Redis) -> list[Finding]:
        return checks.test_integration(integration, redis)

    def neutral_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """`{"source": "ece", "integration", "conversation", "event"}` as earlier versions queued it."""
        return events.agent_event(item["event"]).to_item(str(item["integration"]))


class _Step:
    def __init__(
        self,
        runtime: Runtime,
        integration: Integration,
        thread: Thread,
        event: InboundEvent,
        effects: Effects,
        client: EceClient,
    ) -> None:
        self.runtime = runtime
        self.integration = integration
        self.thread = thread
        self.event = event
        self.effects = effects
        self.client = client

    @property
    def _start_effect(self) -> str:
        """One start per conversation of the thread: an item that finds its conversation gone and
        starts the next one (a new sequence) must not reuse the start it recorded for the last."""
        return started(self.thread.sequence)

    @property
    def entry_point(self) -> EntryPoint | None:
        return self.integration.entry_point(self.thread.entry_point or "")

    # -- starting ------------------------------------------------------------------------------

    def start(self) -> str | None:
        thread, entry_point = self.thread, self.entry_point
        if entry_point is None:
            thread.state = State.CLOSED
            log.error("rule points at a missing entry point", extra={"conversation": thread.id})
            return f"entry point {thread.entry_point!r} is not configured on {self.integration.name}"
        if self.effects.get(self._start_effect) is None and self._adopt_interrupted_start() is None:
            gate = self.gate(entry_point)
            if gate is not None:
                return gate
        conversation_id = self.effects.once(self._start_effect, lambda: self._start_on_ece(entry_point))
        self.runtime.redis.set(
            keys.ece_conversation(self.integration.name, conversation_id),
            json.dumps({"thread": thread.id, "sequence": thread.sequence}),
            ex=CONVERSATION_MAP_TTL_SECONDS,
        )
        conversation.queued(self.runtime, thread, entry_point, conversation_id, self.effects)
        log.info("ECE conversation started", extra={"conversation": thread.id, "remote": conversation_id})
        note = self.forward()
        return f"started on {self.integration.name}/{entry_point.name}" + (f"; {note}" if note else "")

    def gate(self, entry_point: EntryPoint) -> str | None:
        """The availability gate; a note when the chat must not start now, else None."""
        thread = self.thread
        if not entry_point.enabled:
            return self._disabled("entry point disabled in the connector")
        availability = self._availability(entry_point)
        if availability.can_take_chats:
            return None
        no_agents = (
            not availability.agents_available or availability.eligibility in (1, 2) or availability.capacity == 0
        )
        if not no_agents:
            # chatAllowed folds depth, availability and "entry point active" together
            # (docs/protocols/ece.md, "Availability checks"): with agents and room, a refusal means
            # the entry point is not active.
            return self._disabled("entry point not active in ECE")
        reason = "no agent available" if not availability.agents_available else "queue full"
        return conversation.turned_away(self.runtime, thread, entry_point, reason)

    def _availability(self, entry_point: EntryPoint) -> Availability:
        return _availability.get(self.client, entry_point.id, self.runtime.settings.availability_cache_seconds)

    def _disabled(self, why: str) -> str:
        return conversation.disabled(self.runtime, self.thread, why)

    def _adopt_interrupted_start(self) -> str | None:
        """After a start that was attempted but never recorded (the worker died in the call, or it
        timed out), the conversation ECE may have created for it, now recorded as this item's start;
        None when there was no such attempt or ECE knows no such conversation. Asked before the
        gate: a conversation that exists must receive the message even if agents just left."""
        reference = self.effects.attempted(self._start_effect)
        if reference is None:
            return None
        found = self.client.find_conversation(reference)
        if found is not None:
            self.effects.record(self._start_effect, found)
            log.warning(
                "ECE start interrupted; adopting the conversation it created",
                extra={"conversation": self.thread.id, "remote": found, "reference": reference},
            )
        return found

    def _start_on_ece(self, entry_point: EntryPoint) -> str:
        thread = self.thread
        locale = thread.details.get("locale")
        name = thread.details.get("name") or thread.details.get("profile_name")
        # The attempt is recorded BEFORE the call, with the client reference the start carries, so a
        # repeat of this item can ask ECE for the conversation instead of starting a second one.
        reference = self.effects.attempt(self._start_effect, start_reference(thread))
        started = self.client.start_conversation(
            entry_point.id,
            customer=customer_attributes(thread),
            custom_attributes=custom_attributes(self.integration.custom_attributes, thread),
            subject=f"{thread.channel} chat with {name or thread.customer}",
            locale=locale if isinstance(locale, str) and locale else entry_point.default_locale,
            reference=reference,
        )
        return started.conversation_id

    def while_unavailable(self) -> str | None:
        """A customer message while the unavailable policy runs."""
        return conversation.while_unavailable(self.thread, self.entry_point, self.start)

    # -- continuing ----------------------------------------------------------------------------

    def forward(self) -> str | None:
        """The event's content into the open ECE conversation."""
        event, thread = self.event, self.thread
        remote = thread.remote_id
        if remote is None:
            return "no ECE conversation yet"
        try:
            if event.kind is EventKind.CLOSE:
                self.effects.once("end", lambda: _end(self.client, remote))
                return "ended by the customer"
            if not event.kind.routable:
                return None  # customer typing: the ECE profile has no call for it
            text = event.text or event.payload
            if text:
                self.effects.once(sent_text(event.provider_id), lambda: self.client.send_message(remote, text))
            notes = [
                note
                for index, attachment in enumerate(event.attachments)
                if (note := self._relay_file(remote, index, attachment))
            ]
            return "; ".join(notes) or None
        except ConversationGone:
            # ECE ended it (we have not seen its `complete` yet): resolve conversation → a new one.
            log.info("ECE conversation gone; starting a new one", extra={"conversation": thread.id})
            self._agents_chat_ended(remote)
            thread.sequence += 1
            thread.state = State.NEW
            thread.remote_id = None
            return self.start()

    def _agents_chat_ended(self, remote: str) -> None:
        """Blending hears that the agent's chat ended with the conversation ECE ended. Its `complete`,
        when it comes, belongs to an earlier conversation by then, which the relay tells the customer
        of but takes no state from; without this, the agent's voice stayed NOT_READY for a chat
        that was over."""
        thread = self.thread
        if thread.agent_id or thread.agent_name:
            agent = ChatAgent(thread.agent_id, thread.agent_name, self.integration.type)
            self.effects.once(f"ended:{remote}", lambda: publish_chat_ended(self.runtime.redis, agent, remote))

    def _relay_file(self, remote: str, index: int, attachment: Attachment) -> str | None:
        """Fetch the customer's file from the provider and upload it to ECE; a note on failure.
        A file the channel refuses (size, type, host) is reported to the agent, never retried."""
        effect = sent_file(self.event.provider_id, index)
        if self.effects.get(effect) is not None:
            return None
        channel = self.runtime.channel(self.thread.channel, self.thread.asset)
        try:
            fetched = channel.fetch_attachment(attachment, self.thread.recipient())
            attachment_id = self.client.send_attachment(remote, fetched.name, fetched.mime_type, fetched.data)
        except ConversationGone:
            raise
        except PermanentError as exc:
            name = attachment.name or attachment.mime_type or "a file"
            note = f"[connector] The customer sent {name}, which could not be relayed: {exc.reason}"
            self.effects.once(f"{effect}:note", lambda: self.client.send_message(remote, note))
            self.effects.record(effect, "refused")
            log.warning("customer file not relayed", extra={"conversation": self.thread.id, "reason": exc.reason})
            return f"file {name} not relayed: {exc.reason}"
        self.effects.record(effect, attachment_id)
        return None


def start_reference(thread: Thread) -> str:
    """The client reference of a start: the thread and its conversation sequence (what an operator
    reads), plus a random suffix so a reference never matches a conversation of an earlier life of
    the thread (a thread made again restarts its sequence) or of another deployment with the same
    customers. Made once per item: `Effects.attempt` keeps the first."""
    return f"cc-{thread.conversation_id}-{secrets.token_hex(4)}"


def _end(client: EceClient, conversation_id: str) -> None:
    # Already ended on ECE's side (ConversationGone): the customer's close is satisfied.
    with contextlib.suppress(ConversationGone):
        client.end_conversation(conversation_id)


backends.register(EceBackend())
