"""What an agent does at their Hybrid Chat desktop: READY / NOT_READY, accept or reject an offer,
write, send a file, show typing, transfer, close. The agent API (`api.py`) is a thin HTTP layer over
this; an agent acts only on their own chats (404 for another's).

Everything the customer must see goes through the thread's outbox as a neutral agent event
(`backends/outbox.py`), so the relay delivers it in order, once, with the system messages around it
(agent assigned, transfers, agent closed) and tells media blending about chats starting and ending.
What only the agent sees (offers, the customer's words, notes) goes to their event stream.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from connector.backends import outbox
from connector.backends.events import Agent, AgentEvent, AgentEventKind, AgentFile, TransferTarget
from connector.backends.hybrid import files, stream, transcript
from connector.backends.hybrid.agents import AgentSettings
from connector.backends.hybrid.router import hybrid_queues, inactive_at, request_route
from connector.backends.hybrid.state import ACTIVE, OFFERED, READY, Chat, HybridState, ReadyAgent, queue_key
from connector.backends.hybrid.views import chat_view
from connector.blending.agents import decode_state
from connector.blending.chat_events import publish_chat_ready
from connector.store import keys, replies

if TYPE_CHECKING:
    from redis.client import Pipeline

    from connector.runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")

OUTBOX_DEDUPE_SECONDS = 24 * 3600
"""An agent action is appended once per its own key (a new one per call)."""


class DeskError(Exception):
    """A refused agent action: `status` is the HTTP answer, `code` the API's error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def chat_state_of(chosen: str | None, *, interrupted: bool, holding: int, max_chats: int) -> str:
    """An agent's chat state: READY / NOT_READY as the agent set it (`chosen`); INTERRUPTED while a
    voice call holds them (media blending); BUSY at `max_chats`."""
    if chosen != READY:
        return "NOT_READY"
    if interrupted:
        return "INTERRUPTED"
    if holding >= max_chats:
        return "BUSY"
    return "READY"


class Desk:
    def __init__(self, runtime: Runtime, agent: AgentSettings) -> None:
        self.runtime = runtime
        self.agent = agent
        self.redis = runtime.redis
        self.state = HybridState(runtime.redis)

    # -- the agent ----------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        raw = self.state.agent(self.agent.agent_id)
        chats = self.state.chats(self.state.agent_chats(self.agent.agent_id))
        return {
            "agent_id": self.agent.agent_id,
            "name": self.agent.name,
            "login": self.agent.login,
            "chat_state": self.chat_state(raw, chats),
            "reason": raw.get("reason") or None,
            "voice_state": self.voice_state(),
            "max_chats": self.agent.max_chats,
            "skills": list(self.agent.skills),
            "chats": [chat_view(chat) for chat in chats],
        }

    def chat_state(self, raw: dict[str, str], chats: list[Chat]) -> str:
        """`chat_state_of` this agent; whether voice holds them is read only when they chose READY."""
        chosen = raw.get("state")
        interrupted = chosen == READY and bool(self.state.interrupted([self.agent.agent_id]))
        return chat_state_of(chosen, interrupted=interrupted, holding=len(chats), max_chats=self.agent.max_chats)

    def voice_state(self) -> str | None:
        """Finesse's voice state as media blending last saw it; None for a local agent."""
        if self.agent.local:
            return None
        raw = replies.bytes_or_none(self.redis.get(keys.agent_state(self.agent.agent_id)))
        return decode_state(self.agent.agent_id, raw).voice if raw else None

    def set_state(self, ready: bool, reason: str | None = None) -> dict[str, Any]:
        """READY for chats, or NOT_READY (with a reason): the router offers chats only to READY agents;
        media blending hears it too, so Finesse voice follows the agent's choice."""
        settings = self.agent
        self.state.set_agent(
            settings.agent_id,
            state=READY if ready else "NOT_READY",
            reason="" if ready else (reason or ""),
            login=settings.login,
            name=settings.name,
            skills=settings.skills,
            max_chats=settings.max_chats,
        )
        if not settings.local:
            publish_chat_ready(self.redis, settings.agent_id, ready)
        me = self.me()
        stream.publish(
            self.redis, settings.agent_id, "state_changed", chat_state=me["chat_state"], voice_state=me["voice_state"]
        )
        if ready:
            request_route(self.redis, self.runtime.config)
        return me

    # -- offers -------------------------------------------------------------------------------

    def accept(self, chat_id: str) -> dict[str, Any]:
        """The chat theirs, the customer's `agent_assigned` queued (media blending hears of the chat
        when the relay sends it) and the desktop told: one step (`_in_one_step`). Apart, a crash after
        the accept left the customer untold and blending unaware, and the agent's repeat refused."""
        me = self.agent.agent_id
        now = time.time()
        event = AgentEvent(AgentEventKind.ASSIGNED, chat_id, self._key(), agent=self._agent())

        def take(pipe: Pipeline, chat: Chat) -> Chat:
            accepted = replace(chat, state=ACTIVE, accepted_at=now, offer_expires_at=None)
            self.state.accept(chat, me, now, inactive_at(self.runtime.config, chat, now), client=pipe)
            stream.queue(pipe, me, "chat_assigned", chat_id=chat_id, chat=chat_view(accepted))
            return accepted

        accepted = self._in_one_step(chat_id, event, self._offered, take)
        log.info("chat accepted", extra={"conversation": accepted.thread_id, "chat": chat_id, "agent": me})
        return chat_view(accepted)

    def reject(self, chat_id: str) -> None:
        """The chat back in its queue, offered to others (not this agent for the offer's timeout)."""
        me = self.agent.agent_id
        chat = self._offered(self.state.chat(chat_id), chat_id)
        self.state.decline(chat, me, self._offer_timeout(chat))

        def give_back(pipe: Pipeline, current: Chat | None) -> None:
            self.state.give_back(self._offered(current, chat_id), me, rona=False, client=pipe)
            stream.queue(pipe, me, "offer_withdrawn", chat_id=chat_id, reason="rejected")

        self.state.with_chat(chat_id, give_back)  # one step: a crash never leaves the desktop ringing
        request_route(self.redis, self.runtime.config)

    def _offered(self, chat: Chat | None, chat_id: str) -> Chat:
        """`chat`, ringing at this agent; else the refusal (404, or 409 with why)."""
        if chat is None:
            raise DeskError(404, "not_found", f"no chat {chat_id}")
        if chat.state != OFFERED or chat.agent != self.agent.agent_id:
            if chat.agent == self.agent.agent_id and chat.state == ACTIVE:
                raise DeskError(409, "already_accepted", "you have accepted this chat already")
            raise DeskError(409, "offer_gone", "the offer expired or went to another agent")
        return chat

    # -- in a chat ----------------------------------------------------------------------------

    def send_text(self, chat_id: str, text: str) -> str:
        chat = self._active(chat_id)
        if not text.strip():
            raise DeskError(400, "empty_message", "the message has no text")
        key = self._key()
        event = AgentEvent(AgentEventKind.TEXT, chat_id, key, text=text, agent=self._agent())
        shown = partial(
            transcript.queue, chat_id=chat_id, sender="agent", message_id=key, text=text, agent=self.agent.name
        )
        self._to_customer(chat, event, record=shown)  # queued and shown in one step: a resend sees it
        return key

    def send_file(self, chat_id: str, name: str, mime_type: str, data: bytes) -> str:
        chat = self._active(chat_id)
        try:
            stored = files.store(self.redis, name, mime_type, data)
        except files.FileTooLarge as exc:
            raise DeskError(413, "file_too_large", str(exc)) from None
        settings = self.runtime.settings
        url = files.signed_url(settings.public_base_url, settings.secret_key, stored.file_id)
        key = self._key()
        file = AgentFile(name=name, url=url, mime_type=mime_type, size=stored.size)
        attachment = {"url": f"/agent/api/files/{stored.file_id}", "name": name, "mime_type": mime_type}
        shown = partial(
            transcript.queue,
            chat_id=chat_id,
            sender="agent",
            message_id=key,
            attachments=[{**attachment, "size": stored.size}],
        )
        self._to_customer(
            chat, AgentEvent(AgentEventKind.FILE, chat_id, key, file=file, agent=self._agent()), record=shown
        )
        return key

    def typing(self, chat_id: str, on: bool) -> None:
        chat = self._active(chat_id)
        kind = AgentEventKind.TYPING_START if on else AgentEventKind.TYPING_END
        self._to_customer(chat, AgentEvent(kind, chat_id, self._key(), agent=self._agent()))

    def transfer(self, chat_id: str, *, queue: str | None = None, agent_id: str | None = None) -> dict[str, Any]:
        """To another queue of the same integration (the router offers it there), or to a named agent
        (offered to them at once: they must be READY and have room)."""
        chat = self._active(chat_id)
        now = time.time()
        if (queue is None) == (agent_id is None):
            raise DeskError(400, "invalid_transfer", 'give either "queue" or "agent_id"')
        if queue is not None:
            target = hybrid_queues(self.runtime.config).get(queue_key(chat.integration, queue))
            if target is None:
                raise DeskError(400, "unknown_queue", f"{chat.integration} has no open queue named {queue!r}")
            self._to_queue(chat_id, queue, now)
            request_route(self.redis, self.runtime.config)
            return chat_view(self.state.chat(chat_id) or chat)
        target_agent = str(agent_id)
        if target_agent == self.agent.agent_id:
            raise DeskError(400, "invalid_transfer", "the chat is already yours")
        ringing = self._to_agent(chat_id, target_agent, now, now + self._offer_timeout(chat))
        request_route(self.redis, self.runtime.config)
        return chat_view(ringing)

    def _to_agent(self, chat_id: str, target: str, now: float, expires: float) -> Chat:
        """The chat offered to `target` and off this agent, both desktops told, the customer's
        `transfer_agent` notice queued: one transaction WATCHing the chat and all the offer relies on
        of `target` (READY, not held by a voice call, room). Returns the chat as it now rings."""
        me = self.agent.agent_id
        key = self._key()

        def hand_over(pipe: Pipeline, chat: Chat | None, other: ReadyAgent | None) -> tuple[Chat, int]:
            if chat is None or chat.agent != me or chat.state != ACTIVE:
                raise DeskError(409, "not_active", "the chat is no longer yours to transfer")
            if other is None or other.interrupted or other.chats >= int(other.settings.get("max_chats") or 1):
                raise DeskError(409, "agent_unavailable", f"agent {target} is not READY or has no room now")
            ringing = replace(chat, state=OFFERED, agent=target, offered_at=now, offer_expires_at=expires)
            offered = stream.encoded("chat_offered", chat_id=chat_id, chat=chat_view(ringing))
            transferred = stream.encoded("chat_transferred", chat_id=chat_id)
            self.state.to_agent(chat, me, target, now, expires, offered, transferred, client=pipe)
            name = other.settings.get("name") or target
            event = AgentEvent(AgentEventKind.TRANSFERRED, chat_id, key, transfer=TransferTarget("agent", name))
            return ringing, queue_to_customer(self.runtime, pipe, chat, event)

        (ringing, place), done = self.state.with_chat_and_agent(chat_id, target, hand_over)
        outbox.appended(self.runtime, int(done[place]))
        return ringing

    def _to_queue(self, chat_id: str, queue: str, now: float) -> None:
        """The chat back in a queue and off the agent, the customer's `transfer_queue` notice queued,
        the desktop told: one step (`_in_one_step`)."""
        me = self.agent.agent_id
        event = AgentEvent(AgentEventKind.TRANSFERRED, chat_id, self._key(), transfer=TransferTarget("queue", queue))

        def move(pipe: Pipeline, chat: Chat) -> None:
            self.state.queue_to_queue(pipe, chat, me, queue, now)
            stream.queue(pipe, me, "chat_transferred", chat_id=chat_id)

        self._in_one_step(chat_id, event, self._holding("the chat is no longer yours to transfer"), move)

    def close(self, chat_id: str, wrap_up: str | None = None) -> None:
        """The chat closed and its slot freed, the customer's notice queued, the desktop told: one
        step (`_in_one_step`)."""
        self._active(chat_id)
        me = self.agent.agent_id
        event = AgentEvent(AgentEventKind.CLOSED, chat_id, self._key(), agent=self._agent())

        def end(pipe: Pipeline, chat: Chat) -> None:
            self.state.queue_close(pipe, chat, by="agent", wrap_up=wrap_up or "", now=time.time())
            stream.queue(pipe, me, "chat_closed", chat_id=chat_id, by="agent")

        still_open = self._holding("the chat has ended meanwhile")  # e.g. the customer left first
        self._in_one_step(chat_id, event, still_open, end)
        request_route(self.redis, self.runtime.config)

    def _in_one_step(
        self,
        chat_id: str,
        event: AgentEvent,
        check: Callable[[Chat | None, str], Chat],
        change: Callable[[Pipeline, Chat], T],
    ) -> T:
        """`change` (the chat's own writes and the desktop's event) and the customer's notice `event`
        in one transaction WATCHing the chat, which `check` finds still as the action needs it (or
        refuses). Apart, a crash after the change left the customer untold and the agent's repeat
        refused. Returns what `change` returned."""

        def writes(pipe: Pipeline, chat: Chat | None) -> tuple[T, int]:
            found = check(chat, chat_id)
            return change(pipe, found), queue_to_customer(self.runtime, pipe, found, event)

        (changed, place), done = self.state.with_chat(chat_id, writes)
        outbox.appended(self.runtime, int(done[place]))
        return changed

    def _holding(self, refused: str) -> Callable[[Chat | None, str], Chat]:
        """An `_in_one_step` check: the chat is still this agent's active chat, else 409 `refused`."""

        def check(chat: Chat | None, _chat_id: str) -> Chat:
            if chat is None or chat.agent != self.agent.agent_id or chat.state != ACTIVE:
                raise DeskError(409, "not_active", refused)
            return chat

        return check

    def chat(self, chat_id: str) -> dict[str, Any]:
        """The chat with its transcript and the customer's earlier chats (newest first)."""
        chat = self._mine(chat_id)
        history = [c for c in self.state.history(chat.thread_id) if c.chat_id != chat_id]
        return {
            **chat_view(chat),
            "transcript": transcript.read(self.redis, chat_id),
            "earlier": [chat_view(c) for c in history],
        }

    def file(self, file_id: str) -> files.StoredFile:
        stored = files.load(self.redis, file_id)
        if stored is None:
            raise DeskError(404, "not_found", "no such file (files are kept a week)")
        return stored

    # -- helpers --------------------------------------------------------------------------------

    def _mine(self, chat_id: str) -> Chat:
        """A chat offered to, held by or closed by this agent; 404 for anyone else's."""
        chat = self.state.chat(chat_id)
        if chat is None or chat.agent != self.agent.agent_id:
            raise DeskError(404, "not_found", f"no chat {chat_id} of yours")
        return chat

    def _active(self, chat_id: str) -> Chat:
        chat = self._mine(chat_id)
        if chat.state != ACTIVE:
            raise DeskError(409, "not_active", f"the chat is {chat.state}: accept it first, or it has ended")
        return chat

    def _agent(self) -> Agent:
        return Agent(self.agent.agent_id, self.agent.name)

    def _key(self) -> str:
        return uuid.uuid4().hex

    def _offer_timeout(self, chat: Chat) -> float:
        found = hybrid_queues(self.runtime.config).get(chat.queue_key)
        return float(found[1].offer_timeout_seconds) if found else 30.0

    def _to_customer(self, chat: Chat, event: AgentEvent, record: Callable[[Pipeline], object] | None = None) -> None:
        to_customer(self.runtime, chat, event, record)


def to_customer(
    runtime: Runtime, chat: Chat, event: AgentEvent, record: Callable[[Pipeline], object] | None = None
) -> None:
    """Into the thread's outbox: the relay sends it, in order, once (a repeated key is appended once).
    `record`: writes made in the same transaction (outbox.append)."""
    outbox.agent_event(
        runtime,
        chat.thread_id,
        chat.integration,
        event,
        keys.dedupe("hybrid", chat.integration, event.key),
        OUTBOX_DEDUPE_SECONDS,
        record=record,
    )


def queue_to_customer(runtime: Runtime, pipe: Pipeline, chat: Chat, event: AgentEvent) -> int:
    """`to_customer` queued on a caller's transaction; returns its reply's place (outbox.appended)."""
    return outbox.queue_append(
        runtime,
        pipe,
        chat.thread_id,
        event.to_item(chat.integration),
        keys.dedupe("hybrid", chat.integration, event.key),
        OUTBOX_DEDUPE_SECONDS,
    )
