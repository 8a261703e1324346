"""The Hybrid Chat backend: customer events into the connector's own router. Registered for
integrations of type `hybrid`.

A new conversation passes the same gate as ECE's (queue disabled → `entry_point_disabled`; no agent
READY with the queue's skills → `no_agents` and the unavailable policy), then becomes a chat waiting
in its queue, and the router offers it. The customer's messages, files and typing go to the chat's
transcript and, once an agent holds it, to that agent's event stream. Each is an effect of its inbox
item, so a repeat (crash, retry) never shows the agent a message twice.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from redis import Redis

from connector import backends
from connector.backends import Availability, Finding, QueuePosition, conversation, outbox
from connector.backends.attributes import custom_attributes
from connector.backends.events import AgentEvent, AgentEventKind
from connector.backends.hybrid import desk, files, router, stream, transcript
from connector.backends.hybrid.agents import local_agent_id, settings_for
from connector.backends.hybrid.router import request_route
from connector.backends.hybrid.state import ACTIVE, CLOSED, QUEUED, Chat, HybridState
from connector.channels.base import Attachment, EventKind, InboundEvent
from connector.config.model import EntryPoint, Integration
from connector.conversations import State
from connector.errors import PermanentError
from connector.flows.calls import TRANSCRIPT_ID_PREFIX
from connector.store.effects import Effects, sent_text, started
from connector.store.threads import Thread

if TYPE_CHECKING:
    from flask import Blueprint
    from redis.client import Pipeline

    from connector.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_HANDLE_SECONDS = 300.0
"""The wait estimate's handle time until a queue has closed chats of its own."""


class HybridBackend:
    type = "hybrid"
    queues_are_entry_points = True

    @property
    def blueprint(self) -> Blueprint | None:
        from connector.backends.hybrid.api import blueprint  # the agent API serves the desktop

        return blueprint

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
        step = _Step(runtime, integration, thread, event, effects)
        if start or (thread.state is State.NEW and not thread.remote_id):
            return step.start()
        if thread.state is State.UNAVAILABLE:
            return conversation.while_unavailable(thread, step.entry_point, step.start)
        return step.forward()

    def availability(
        self, integration: Integration, entry_point: EntryPoint, redis: Redis, *, timeout: tuple[float, float] | None
    ) -> Availability:
        """Read from the router's own state, exactly: READY agents with the queue's skills, their
        free slots, the chats waiting, and a wait from the queue's recent handle times."""
        state = HybridState(redis)
        skills = set(entry_point.skills)
        agents_available = False
        free = 0
        for agent in state.ready_snapshot():
            if not skills <= set(_skills(agent.settings)):
                continue
            agents_available = True
            if not agent.interrupted:
                free += max(0, int(agent.settings.get("max_chats") or 1) - agent.chats)
        depth = state.depth(integration.name, entry_point.name)
        return Availability(
            chat_allowed=entry_point.enabled,
            agents_available=agents_available,
            capacity=free,
            eligibility=0 if agents_available else 1,
            queue_depth=depth,
            wait_seconds=round(self._wait(state, integration, entry_point, depth, free)),
        )

    @staticmethod
    def _wait(state: HybridState, integration: Integration, entry_point: EntryPoint, depth: int, free: int) -> float:
        """Chats ahead, shared by the agents' slots, each taking the queue's mean recent handle time."""
        if free > depth:
            return 0.0
        handled = state.handle_times(integration.name, entry_point.name)
        handle = sum(handled) / len(handled) if handled else DEFAULT_HANDLE_SECONDS
        slots = max(1, free)
        return handle * (depth + 1) / slots

    def queue_position(self, runtime: Runtime, integration: Integration, thread: Thread) -> QueuePosition | None:
        chat = HybridState(runtime.redis).chat(thread.remote_id or "")
        if chat is None or chat.state != QUEUED:
            return None
        found = HybridState(runtime.redis).position(chat.integration, chat.queue, chat.chat_id)
        return None if found is None else QueuePosition(found, exact=True)

    def tell_agent(self, runtime: Runtime, integration: Integration, thread: Thread, note: str) -> None:
        chat = HybridState(runtime.redis).chat(thread.remote_id or "")
        if chat is None:
            raise PermanentError("the chat is gone")
        entry = transcript.append(runtime.redis, chat.chat_id, "system", f"note-{time.time_ns()}", text=note)
        if chat.agent and chat.state == ACTIVE:
            stream.publish(
                runtime.redis, chat.agent, "note", chat_id=chat.chat_id, text=note, message_id=entry["message_id"]
            )

    def close(self, runtime: Runtime, integration: Integration, thread: Thread) -> None:
        """The customer left: the chat ends on the agent's side too."""
        _closed(runtime, thread.remote_id or "")

    def give_up_waiting(self, runtime: Runtime, integration: Integration, thread: Thread) -> bool:
        """The customer waited the queue's `max_wait_seconds`: the chat leaves the queue, unless an
        agent has it ringing or holds it already (then it stays theirs)."""
        state = HybridState(runtime.redis)
        chat = state.chat(thread.remote_id or "")
        if chat is None or chat.state != QUEUED:
            return False
        previous, _agent = state.close(chat, by="system", wrap_up="waited too long")
        return previous == QUEUED

    def tick(self, runtime: Runtime) -> None:
        close_inactive(runtime)
        router.tick(runtime.redis, runtime.config)

    def own_agents(self, runtime: Runtime) -> dict[str, str]:
        """The local agents of `hybrid_agents` (a deployment without Finesse), as their desktop shows
        their chat state; Finesse agents are in media blending's registry, which has theirs."""
        config = runtime.config
        local = [settings_for(config, local_agent_id(a.login), a.login) for a in config.hybrid_agents if a.local]
        ids = [agent.agent_id for agent in local]
        state = HybridState(runtime.redis)
        held = state.interrupted(ids)
        return {
            agent.agent_id: desk.chat_state_of(
                raw.get("state"), interrupted=agent.agent_id in held, holding=chats, max_chats=agent.max_chats
            )
            for agent, (raw, chats) in zip(local, state.agent_loads(ids), strict=True)
        }

    def test(self, integration: Integration, redis: Redis) -> list[Finding]:
        """Nothing outside to ask: what the router sees now, per queue."""
        findings = []
        for entry_point in integration.entry_points:
            reading = self.availability(integration, entry_point, redis, timeout=None)
            words = (
                f"{reading.capacity} free slot(s) among READY agents with its skills, {reading.queue_depth} waiting"
                if reading.agents_available
                else "no READY agent has its skills now: new chats get the no agents message"
            )
            findings.append(Finding(f"queue {entry_point.name}", entry_point.enabled, words))
        return findings

    def neutral_item(self, item: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("Hybrid Chat has always written neutral outbox items")


class _Step:
    def __init__(
        self, runtime: Runtime, integration: Integration, thread: Thread, event: InboundEvent, effects: Effects
    ) -> None:
        self.runtime = runtime
        self.integration = integration
        self.thread = thread
        self.event = event
        self.effects = effects
        self.state = HybridState(runtime.redis)

    @property
    def entry_point(self) -> EntryPoint | None:
        return self.integration.entry_point(self.thread.entry_point or "")

    def start(self) -> str | None:
        thread, entry_point = self.thread, self.entry_point
        if entry_point is None:
            thread.state = State.CLOSED
            log.error("rule points at a missing queue", extra={"conversation": thread.id})
            return f"queue {thread.entry_point!r} is not configured on {self.integration.name}"
        chat_id = thread.conversation_id
        if self.effects.get(started(thread.sequence)) is None:
            if not entry_point.enabled:
                return conversation.disabled(self.runtime, thread, "queue disabled in the connector")
            if not self.state.any_ready_with(tuple(entry_point.skills)):
                return conversation.turned_away(self.runtime, thread, entry_point, "no agent READY with the skills")
            self.state.create_chat(
                chat_id,
                thread_id=thread.id,
                integration=self.integration.name,
                queue=entry_point.name,
                channel=thread.channel,
                customer=_customer(thread),
                attributes=custom_attributes(self.integration.custom_attributes, thread),
            )
            self.effects.record(started(thread.sequence), chat_id)
        conversation.queued(self.runtime, thread, entry_point, chat_id, self.effects)
        if entry_point.max_wait_seconds and self.effects.get("wait-timer") is None:
            outbox.schedule_timer(
                self.runtime,
                thread.id,
                thread.sequence,
                "wait_expired",
                entry_point.max_wait_seconds,
                firing=thread.wait_timers,
            )
            self.effects.record("wait-timer")
        log.info("Hybrid Chat chat queued", extra={"conversation": thread.id, "chat": chat_id})
        note = self.forward()
        request_route(self.runtime.redis, self.runtime.config)
        return f"queued on {self.integration.name}/{entry_point.name}" + (f"; {note}" if note else "")

    def forward(self) -> str | None:
        """The event's content into the chat: its transcript, and its agent's desktop once it has one."""
        event, thread = self.event, self.thread
        chat = self.state.chat(thread.remote_id or "")
        if chat is None:
            return "no chat yet"
        if event.kind is EventKind.CLOSE:
            self.effects.once("end", lambda: _closed(self.runtime, chat.chat_id))
            return "ended by the customer"
        if event.kind in (EventKind.TYPING_START, EventKind.TYPING_END):
            if chat.agent and chat.state == ACTIVE:
                stream.publish(
                    self.runtime.redis,
                    chat.agent,
                    "customer_typing",
                    chat_id=chat.chat_id,
                    typing=event.kind is EventKind.TYPING_START,
                )
            return None
        if not event.kind.routable:
            return None
        notes: list[str] = []
        kept = (self._file(index, attachment, notes) for index, attachment in enumerate(event.attachments))
        attachments = [shown for shown in kept if shown is not None]
        text = event.text or event.payload
        if not text and not attachments:
            return "; ".join(notes) or None
        if self.effects.get(effect := sent_text(event.provider_id)) is None:
            self._message(effect, chat.chat_id, text, attachments)
        return "; ".join(notes) or None

    def _message(self, effect: str, chat_id: str, text: str | None, attachments: list[dict[str, Any]]) -> None:
        """Into the transcript, onto the holding agent's desktop, and recorded as done, in one
        transaction: a crash or a Redis kill leaves all three or none, so a repeat never shows it twice."""
        fields: dict[str, Any] = {"text": text} if text else {}
        if attachments:
            fields["attachments"] = attachments
        # A flow's bot transcript (docs/flows.md) is the connector's note, not the customer's words.
        flow_note = self.event.provider_id.startswith(TRANSCRIPT_ID_PREFIX)
        sender = "system" if flow_note else "customer"

        def writes(pipe: Pipeline, chat: Chat | None) -> Chat | None:
            entry = transcript.queue(pipe, chat_id, sender, self.event.provider_id, **fields)
            if chat is not None and chat.state == ACTIVE and chat.agent:
                stream.queue(pipe, chat.agent, "customer_message", chat_id=chat_id, **entry)
            self.effects.queue_record(pipe, effect)
            return chat

        chat, _ = self.state.with_chat(chat_id, writes)
        deadline = router.inactive_at(self.runtime.config, chat, time.time()) if chat and chat.state == ACTIVE else None
        if deadline is not None:
            self.state.refresh_inactive(chat_id, deadline)  # the customer is not silent

    def _file(self, index: int, attachment: Attachment, notes: list[str]) -> dict[str, Any] | None:
        """The customer's file, fetched from the provider and kept for the agent; a file the channel
        refuses (size, type, host) is noted for the agent instead, never retried."""
        effect = f"file:{self.event.provider_id}:{index}"  # kept here: `sent_text` records its delivery
        done = self.effects.get(effect)
        if done == "refused":
            return None
        if done is not None:
            stored = files.load(self.runtime.redis, done)
            if stored is not None:
                return _attachment(stored)
        channel = self.runtime.channel(self.thread.channel, self.thread.asset)
        try:
            fetched = channel.fetch_attachment(attachment, self.thread.recipient())
            stored = files.store(self.runtime.redis, fetched.name, fetched.mime_type, fetched.data)
        except (PermanentError, files.FileTooLarge) as exc:
            name = attachment.name or attachment.mime_type or "a file"
            reason = exc.reason if isinstance(exc, PermanentError) else str(exc)
            notes.append(f"file {name} not relayed: {reason}")
            self.effects.record(effect, "refused")
            return {"name": name, "refused": reason}
        self.effects.record(effect, stored.file_id)
        return _attachment(stored)


def _attachment(stored: files.StoredFile) -> dict[str, Any]:
    return {
        "url": f"/agent/api/files/{stored.file_id}",
        "name": stored.name,
        "mime_type": stored.mime_type,
        "size": stored.size,
    }


def _closed(runtime: Runtime, chat_id: str) -> str:
    """The customer left: the chat closes and frees its agent's slot, the agent's desktop hears it,
    and for a chat they held, media blending too (through the outbox, as an agent's close goes: the
    relay tells blending the agent's chat ended, their last one gives them back to voice, and says
    nothing to the customer). One transaction on the unchanged chat: apart, a crash after the close
    left the agent's desktop showing the chat and their voice held for it."""
    state = HybridState(runtime.redis)

    def end(pipe: Pipeline, chat: Chat | None) -> tuple[Chat | None, int | None]:
        if chat is None or chat.state == CLOSED:
            return None, None
        state.queue_close(pipe, chat, by="customer", wrap_up="", now=time.time())
        if chat.agent:
            stream.queue(pipe, chat.agent, "chat_closed", chat_id=chat_id, by="customer")
        if not chat.agent or chat.state != ACTIVE:
            return chat, None
        event = AgentEvent(AgentEventKind.CLOSED, chat_id, f"customer-close:{chat_id}", extra={"by": "customer"})
        return chat, desk.queue_to_customer(runtime, pipe, chat, event)

    (chat, place), done = state.with_chat(chat_id, end)
    if place is not None:
        outbox.appended(runtime, int(done[place]))
    if chat is not None and chat.agent:
        request_route(runtime.redis, runtime.config)  # a freed slot
    return "1"


def close_inactive(runtime: Runtime, now: float | None = None) -> list[str]:
    """Accepted chats whose customer said nothing for their queue's `inactivity_timeout_seconds` end
    (every worker's tick looks): the agent's desktop hears `chat_closed` (by: inactivity) and their
    slot is freed; through the outbox, as an agent's close goes, the customer hears
    `customer_inactive` and media blending that the agent's chat ended. Of two workers sweeping at
    once, one ends a chat (`HybridState.close_inactive` is atomic), and one frees and tells
    (`finish_inactive_close`, also for a chat a sweep that died in between left). Returns the chats
    this sweep ended."""
    now = time.time() if now is None else now
    state = HybridState(runtime.redis)
    due = state.inactive(now)
    found = {chat.chat_id: chat for chat in state.chats(due)}
    ended = []
    for chat_id in due:
        chat = found.get(chat_id)
        if chat is None or router.inactive_at(runtime.config, chat, now) is None:
            state.forget_inactive(chat_id)  # its record expired, or its queue's timeout is off now
            continue
        previous, _agent = state.close_inactive(chat, wrap_up="customer inactive", now=now)
        if previous == ACTIVE:  # else not due after all (the customer spoke), taken by another sweep, or moved on
            ended.append(chat_id)
    for chat_id in state.closed_for_silence():
        finished = state.finish_inactive_close(chat_id, partial(_tell_inactive_close, runtime), now)
        if finished is not None:
            (place, conversation_id), done = finished
            outbox.appended(runtime, int(done[place]))
            about = {"conversation": conversation_id, "chat": chat_id}
            log.info("chat closed for the customer's inactivity", extra=about)
    if ended:
        request_route(runtime.redis, runtime.config)  # freed slots
    return ended


def _tell_inactive_close(runtime: Runtime, pipe: Pipeline, chat: Chat) -> tuple[int, str]:
    """The agent's desktop and, through the outbox, the customer and media blending; the outbox
    item's place among the transaction's replies, and the conversation."""
    if chat.agent:
        stream.queue(pipe, chat.agent, "chat_closed", chat_id=chat.chat_id, by="inactivity")
    event = AgentEvent(AgentEventKind.CLOSED, chat.chat_id, f"inactive:{chat.chat_id}", extra={"by": "inactivity"})
    return desk.queue_to_customer(runtime, pipe, chat, event), chat.thread_id


def _customer(thread: Thread) -> dict[str, Any]:
    details = dict(thread.details)
    name = details.get("name") or details.get("profile_name")
    return {
        "id": thread.customer,
        "name": name if isinstance(name, str) else None,
        "locale": details.get("locale") if isinstance(details.get("locale"), str) else None,
        "details": {k: v for k, v in details.items() if isinstance(v, str | int | float | bool)},
    }


def _skills(raw: dict[str, str]) -> list[str]:
    try:
        found = json.loads(raw.get("skills") or "[]")
    except ValueError:
        return []
    return [str(s) for s in found] if isinstance(found, list) else []


backends.register(HybridBackend())
