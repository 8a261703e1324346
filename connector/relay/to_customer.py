"""The outbox side of the drain: agent events, system messages and timers, to the customer.

Runs under the thread's lease, like the inbox side, so it may change the thread. Every send is an
effect recorded in `Effects` under a key derived from the item (the agent event's key + part
number), so a repeat after a retryable failure skips what was sent; a worker killed between a send
and its record repeats that one send (where the provider dedupes by id, as Apple and in-app do,
harmlessly: docs/architecture.md, "Idempotent effects"). A send that fails permanently
(window closed, invalid recipient) does not block the thread: the item is dead-lettered with the
reason, the agent is told when the window is closed, and state changes still apply.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from connector import backends
from connector.backends import Backend, conversation, outbox
from connector.backends.events import SOURCE as AGENT
from connector.backends.events import Agent, AgentEvent, AgentEventKind, AgentFile, TransferTarget
from connector.blending.chat_events import ChatAgent, publish_chat_assigned, publish_chat_ended
from connector.channels.base import Channel
from connector.channels.sending import (
    ChoiceForm,
    Outbound,
    OutboundClose,
    OutboundFile,
    OutboundText,
    OutboundTyping,
)
from connector.config.model import EntryPoint, Integration
from connector.conversations import State
from connector.errors import ConversationGone, PermanentError, RetryableError, WindowClosed
from connector.messages.context import queue_context
from connector.messages.text import html_to_text, split_text
from connector.relay import survey_turn, system_messages
from connector.runtime import Runtime
from connector.store import dead_letters, threads
from connector.store.boxes import Box
from connector.store.effects import Effects
from connector.store.tallies import Counter, Histogram, Tally

log = logging.getLogger(__name__)

TYPING_THROTTLE_SECONDS = 10.0
"""At most one typing-start per conversation in this long (typing floods cost API quota)."""
TIMELINE_TEXT_LIMIT = 1000
CLOSED_NOTES = {"customer": "closed by the customer", "inactivity": "closed for the customer's inactivity"}
"""The timeline's note of a close by whom the backend names; anything else is the agent's close."""


def handle_item(
    runtime: Runtime, thread_id: str, raw: bytes, effects: Effects, tally: Tally | None = None
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """Apply one outbox item; returns the timeline entry and the thread's fields for the commit, and
    adds what it sent to `tally` (written with the commit)."""
    try:
        item = json.loads(raw)
        source = item["source"]
        if (legacy := backends.of_type(source)) is not None:
            item, source = legacy.neutral_item(item), AGENT  # written by an earlier version
        event = AgentEvent.from_item(item) if source == AGENT else None
    except (ValueError, TypeError, KeyError):
        log.error("unreadable outbox item dropped", extra={"conversation": thread_id})
        return {"at": time.time(), "direction": "out", "kind": "error", "note": "unreadable item"}, None
    thread = threads.load(runtime.redis, thread_id)
    if not thread.channel:
        _no_thread_yet(runtime, thread_id)
    relay = ItemDelivery(runtime, thread, effects, tally or Tally())
    if event is not None:
        relay.received_at = item.get("received_at")
        relay.agent_event(event)
    elif source == "system":
        relay.system_item(item)
    elif source == "timer":
        relay.timer(item)
    else:
        relay.entry["note"] = f"unknown outbox item source {source!r}"
    if relay.failures:
        relay.tally.count(Counter.DEAD_LETTERS, box=Box.OUT.value, reason="permanent")
        letter = dead_letters.add(runtime.redis, thread_id, Box.OUT, raw, "; ".join(relay.failures))
        relay.entry["dead_letter"] = letter.id
    relay.entry["state"] = thread.state.value
    return relay.entry, threads.fields_of(thread)


THREAD_PENDING_WAIT_SECONDS = 0.5
"""How soon an outbox item whose conversation is not recorded yet is tried again."""


def _no_thread_yet(runtime: Runtime, thread_id: str) -> None:
    """The conversation's record is written by the commit of its first customer message, but ECE
    may answer the start (and the welcome, then the agent's callbacks, reach the outbox) before that
    commit; a worker killed in between leaves outbox items for a conversation not recorded yet. They
    wait (retried, in order, while the inbox's repeat of the first message writes the record) and
    are never dropped: with no customer message left to write it, the items are dead letters."""
    if runtime.boxes.length(thread_id, Box.IN):
        raise RetryableError(
            "the conversation is not recorded yet: its first customer message is still being handled",
            wait=THREAD_PENDING_WAIT_SECONDS,
        )
    raise PermanentError("no such conversation: nothing was recorded for it and no customer message waits")


class ItemDelivery:
    """One outbox item on its way to the customer: what it changes on the thread, what it sends,
    and the timeline entry that records both."""

    def __init__(self, runtime: Runtime, thread: threads.Thread, effects: Effects, tally: Tally) -> None:
        self.runtime = runtime
        self.thread = thread
        self.effects = effects
        self.tally = tally
        self.received_at: float | None = None
        """When the contact center's event reached the connector (agent events): its latency's start."""
        self.failures: list[str] = []
        self.entry: dict[str, Any] = {"at": time.time(), "direction": "out", "conversation": thread.conversation_id}

    # -- agent events ------------------------------------------------------------------------

    def agent_event(self, event: AgentEvent) -> None:
        kind = event.kind
        key = event.key
        current = event.conversation == self.thread.remote_id
        self.entry.update(kind=kind.value, event=key, remote=event.conversation)
        if event.label and kind is AgentEventKind.OTHER:
            self.entry["label"] = event.label
        if not current:
            self.entry["note"] = "event of an earlier conversation: content delivered, state unchanged"

        if kind is AgentEventKind.TEXT:
            text = event.text or ""
            if event.html and not self.channel.html:
                text = html_to_text(text)
            self.thread.typing_at = None  # a message ends the typing indicator on every channel
            self.send_text(text, key, system=False)
        elif kind in (AgentEventKind.TYPING_START, AgentEventKind.TYPING_END):
            if current:
                self.typing(kind is AgentEventKind.TYPING_START, key)
        elif kind is AgentEventKind.FILE:
            self.agent_file(event.file or AgentFile(), key)
        elif not current and kind is AgentEventKind.CLOSED:
            self.earlier_closed(key, by=str(event.extra.get("by") or "agent"))
        elif not current:
            self.entry["note"] = f"{event.label or kind.value} event of an earlier conversation ignored"
        elif kind is AgentEventKind.ASSIGNED:
            self.assigned(event.agent, key)
        elif kind is AgentEventKind.TRANSFERRED:
            self.transfer(event.transfer or TransferTarget("queue", None), key)
        elif kind in (AgentEventKind.FILE_ACCEPTED, AgentEventKind.FILE_REJECTED):
            accepted = kind is AgentEventKind.FILE_ACCEPTED
            reviewed = event.file or AgentFile()
            message_type = "attachment_accepted" if accepted else "attachment_rejected"
            self.system_text(message_type, key, attachment={"name": reviewed.name, "id": reviewed.id})
        elif kind is AgentEventKind.CLOSED:
            self.complete(key, by=str(event.extra.get("by") or "agent"))
        else:
            log.warning(
                "agent event the connector does not act on acknowledged",
                extra={"conversation": self.thread.id, "type": event.label},
            )
            self.entry["note"] = str(event.extra.get("note") or f"event {event.label!r} not acted on: ignored")

    def assigned(self, agent: Agent | None, key: str) -> None:
        previous = Agent(self.thread.agent_id, self.thread.agent_name)
        self.thread.state = State.ASSIGNED
        self.thread.agent_id = agent.id if agent else None
        self.thread.agent_name = agent.name if agent else None
        self.entry["agent"] = self.thread.agent_name
        self.system_text("agent_assigned", key)
        current = Agent(self.thread.agent_id, self.thread.agent_name)
        if (previous.id or previous.name) and (previous.name != current.name or previous.id not in (None, current.id)):
            self._publish(publish_chat_ended, previous, f"{key}:ended")
        if current.id or current.name:
            self._publish(publish_chat_assigned, current, f"{key}:assigned")

    def transfer(self, target: TransferTarget, key: str) -> None:
        shown = {"type": target.type, "name": target.name}
        self.entry["transfer"] = shown
        previous = Agent(self.thread.agent_id, self.thread.agent_name)
        if target.type == "agent":
            self.system_text("transfer_agent", key, transfer=shown)
            self.thread.agent_id, self.thread.agent_name = None, target.name
        else:
            self.system_text("transfer_queue", key, transfer=shown)
            self.thread.state = State.QUEUED
            self.thread.queued_at = time.time()
            self.thread.agent_id = self.thread.agent_name = None
            self.thread.queue_position = None  # a new queue: the next status tells the new place
            self.wait_in_new_queue(target.name, key)
            self.restart_queue_checks(key)
        if previous.id or previous.name:
            self._publish(publish_chat_ended, previous, f"{key}:ended")

    def earlier_closed(self, key: str, by: str) -> None:
        """The close of a conversation the thread has already left (ECE ended it, and the customer's
        next message started another before its `complete` came): the customer still hears that
        their chat was closed, in its place among the messages; the current conversation's state,
        the channel's session and the survey stay as they are."""
        if by != "customer":
            self._closing_notice(key, by)
        self.entry["note"] = f"{CLOSED_NOTES.get(by, 'closed by the agent')}: an earlier conversation, state unchanged"

    def _closing_notice(self, key: str, by: str) -> None:
        """What the customer hears of a close by the agent or for their silence (of their own close,
        nothing: they know; the callers leave that out)."""
        self.system_text("customer_inactive" if by == "inactivity" else "agent_closed", key)

    def complete(self, key: str, by: str = "agent") -> None:
        """`by`, as the backend says: "agent"; "customer" (their close may not be saved yet: nothing is
        sent); "inactivity" (the customer was silent too long: they hear `customer_inactive`)."""
        if self.thread.state is State.CLOSED:
            by = "customer"  # they left first, and their close is saved: nothing more to say
        if by != "customer":
            self._closing_notice(key, by)
            self.send(OutboundClose(), f"{key}:close")
        if self.thread.typing_at is not None:
            self.thread.typing_at = None
        if self.thread.agent_id or self.thread.agent_name:
            self._publish(publish_chat_ended, Agent(self.thread.agent_id, self.thread.agent_name), f"{key}:ended")
        self.thread.state = State.CLOSED
        self.entry["note"] = CLOSED_NOTES.get(by, "closed by the agent")
        survey_turn.begin(self.runtime, self.thread, self.entry, by)

    def typing(self, on: bool, key: str) -> None:
        if not self.channel.typing:
            self.entry["note"] = "the channel shows no typing"
            return
        now = time.time()
        if on:
            if self.thread.typing_at is not None and now - self.thread.typing_at < TYPING_THROTTLE_SECONDS:
                self.entry["note"] = "typing start throttled"
                return
            self.send(OutboundTyping(on=True), key)
            self.thread.typing_at = now
        else:
            if self.thread.typing_at is None:
                self.entry["note"] = "typing end without a start: not sent"
                return
            self.send(OutboundTyping(on=False), key)
            self.thread.typing_at = None

    def agent_file(self, file: AgentFile, key: str) -> None:
        if not file.url:
            self.entry["note"] = "agent file without a URL: nothing to send"
            return
        name = file.name or "file"
        self.entry["file"] = name
        self.send(
            OutboundFile(
                url=file.url, name=name, mime_type=file.mime_type or "application/octet-stream", size=file.size
            ),
            key,
        )

    # -- system messages and timers ----------------------------------------------------------

    def system_item(self, item: dict[str, Any]) -> None:
        message_type = str(item.get("type"))
        self.entry.update(kind="system", message=message_type)
        if int(item.get("sequence", -1)) != self.thread.sequence:
            self.entry["note"] = "for an earlier conversation: not sent"
            return
        extra = item.get("extra") or {}
        if item.get("flow") and "text" in extra:  # a bot's reply: its own words and buttons
            buttons = tuple((str(t), str(p)) for t, p in extra.get("buttons") or ())
            self.entry.setdefault("system", []).append(message_type)
            self.offer(str(extra["text"]), f"flow:{item['flow']}", buttons)
            return
        if item.get("flow"):
            choices = tuple(str(c) for c in extra.get("choices") or ())
            self.flow_text(message_type, f"flow:{item['flow']}", choices)
            return
        self.system_text(message_type, f"system:{message_type}", **extra)

    def flow_text(self, template: str, key: str, choices: tuple[str, ...]) -> None:
        """A flow's question: its choices as the channel's buttons where it has enough (and titles
        short enough), else as numbered lines under the text (the number or the text is an answer)."""
        text = system_messages.render(self.runtime, self.thread, template, flow=True)
        if text is None:
            self.entry.setdefault("system", []).append(f"{template} (off)")
            return
        self.entry.setdefault("system", []).append(template)
        self.offer(text, key, tuple((choice, choice) for choice in choices))

    def offer(self, text: str, key: str, options: tuple[tuple[str, str], ...]) -> None:
        """`text` with its (title, payload) options: the channel's buttons or list menu where its
        `choice_form` allows, else numbered lines under the text (the number or the title answers)."""
        channel = self.channel
        buttons: tuple[tuple[str, str], ...] = ()
        form = channel.choice_form(text, options)
        if form is not None:
            buttons = options
            self.entry["buttons"] = len(buttons)
            if form is ChoiceForm.MENU:
                self.entry["menu"] = True
        elif options:
            text += "\n" + "\n".join(f"{number}. {title}" for number, (title, _) in enumerate(options, 1))
        parts = split_text(text, channel.max_text)
        self.entry["parts"] = self.entry.get("parts", 0) + len(parts)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            message = OutboundText(part, system=True, buttons=buttons if last else (), form=form or ChoiceForm.BUTTONS)
            if not self.send(message, f"{key}:{index}"):
                break

    def timer(self, item: dict[str, Any]) -> None:
        timer_type = str(item.get("type"))
        self.entry.update(kind="timer", timer=timer_type)
        if int(item.get("sequence", -1)) != self.thread.sequence:
            self.entry["note"] = "for an earlier conversation: nothing to do"
            return
        if timer_type == "unavailable_expired":
            if self.thread.state is State.UNAVAILABLE:
                self.thread.state = State.CLOSED
                self.thread.unavailable_until = None
                self.entry["note"] = "unavailable interval over: chat closed"
        elif timer_type == "wait_expired":
            if int(item.get("firing") or 0) != self.thread.wait_timers:
                self.entry["note"] = "the wait of an earlier queue: nothing to do"
            elif self.thread.state is State.QUEUED and self.thread.remote_id:
                self.wait_expired()
        elif timer_type == "queue_status":
            if self.thread.state is State.QUEUED and self.thread.remote_id:
                self.queue_status(int(item.get("firing") or 0))
        elif timer_type == survey_turn.TIMER:
            survey_turn.expired(self.runtime, self.thread, self.entry, int(item.get("firing") or 0))
        else:
            self.entry["note"] = f"unknown timer {timer_type!r}"

    def wait_expired(self) -> None:
        """The customer waited the entry point's `max_wait_seconds`: if the backend takes the chat out
        of its queue (nobody has it yet), they hear `no_agents` and the unavailable policy runs."""
        integration, entry_point, backend = self.waiting_in()
        if integration is None or entry_point is None or backend is None:
            return
        if backend.give_up_waiting(self.runtime, integration, self.thread):
            self.entry["note"] = conversation.turned_away(
                self.runtime, self.thread, entry_point, f"waited {entry_point.max_wait_seconds} s"
            )

    def queue_status(self, firing: int) -> None:
        """Tell a waiting customer their place and the expected wait: the first time, then whenever
        their place has improved, checked every `queue_status_interval_seconds` while they wait."""
        integration, entry_point, backend = self.waiting_in()
        if integration is None or entry_point is None or backend is None:
            return
        place = backend.queue_position(self.runtime, integration, self.thread)
        told = self.thread.queue_position
        if told is None or (place is not None and place.position < told):
            availability = backend.availability(integration, entry_point, self.runtime.redis, timeout=None)
            position = place.position if place else None
            exact = place.exact if place else False
            queue = queue_context(position, availability.queue_depth, availability.wait_seconds, exact=exact)
            self.entry["queue"] = queue
            self.system_text("queue_status", f"timer:queue_status:{firing}", queue=queue)
            self.thread.queue_position = position if position is not None else 0
        else:
            self.entry["note"] = f"place {place.position if place else '?'} has not improved on {told}: not sent"
        if entry_point.queue_status_interval_seconds:
            self.schedule_queue_check(entry_point.queue_status_interval_seconds, f"timer:queue_status:{firing}")

    def waiting_in(
        self, entry_point: str | None = None
    ) -> tuple[Integration | None, EntryPoint | None, Backend | None]:
        """The thread's integration, the entry point it waits in (or the one named), and its backend."""
        integration = self.runtime.config.integration(self.thread.integration or "")
        if integration is None:
            return None, None, None
        found = integration.entry_point(entry_point if entry_point is not None else self.thread.entry_point or "")
        return integration, found, backends.backend_for(integration)

    def wait_in_new_queue(self, queue: str | None, key: str) -> None:
        """A backend whose queues are entry points (Hybrid Chat): the chat now waits in that entry
        point, by its max wait counted from the transfer; the earlier queue's timer does nothing."""
        _integration, entry_point, backend = self.waiting_in(queue or "")
        if backend is None or not backend.queues_are_entry_points or entry_point is None:
            return
        self.thread.entry_point = entry_point.name
        if self.effects.get(f"{key}:wait") is not None:
            return
        self.thread.wait_timers += 1
        if entry_point.max_wait_seconds:
            outbox.schedule_timer(
                self.runtime,
                self.thread.id,
                self.thread.sequence,
                "wait_expired",
                entry_point.max_wait_seconds,
                firing=self.thread.wait_timers,
            )
        self.effects.record(f"{key}:wait")

    def restart_queue_checks(self, key: str) -> None:
        _integration, entry_point, _backend = self.waiting_in()
        after = entry_point and (entry_point.queue_status_after_seconds or entry_point.queue_status_interval_seconds)
        if after:
            self.schedule_queue_check(after, key)

    def schedule_queue_check(self, after_seconds: float, key: str) -> None:
        """The next queue-status check, numbered so each fires once (a repeat of this item schedules
        the same number again, and the outbox drops the second firing)."""
        if self.effects.get(f"{key}:next") is not None:
            return
        self.thread.queue_checks += 1
        outbox.schedule_timer(
            self.runtime,
            self.thread.id,
            self.thread.sequence,
            "queue_status",
            after_seconds,
            firing=self.thread.queue_checks,
        )
        self.effects.record(f"{key}:next")

    def system_text(self, message_type: str, key: str, **context: Any) -> None:
        text = system_messages.render(self.runtime, self.thread, message_type, **context)
        if text is None:
            self.entry.setdefault("system", []).append(f"{message_type} (off)")
            return
        self.entry.setdefault("system", []).append(message_type)
        self.send_text(text, f"{key}:{message_type}", system=True)

    # -- sending -------------------------------------------------------------------------------

    @property
    def channel(self) -> Channel:
        return self.runtime.channel(self.thread.channel, self.thread.asset)

    def send_text(self, text: str, key: str, *, system: bool) -> None:
        if not text.strip():
            return
        parts = split_text(text, self.channel.max_text)
        if not system:
            self.entry["text"] = text[:TIMELINE_TEXT_LIMIT]
        self.entry["parts"] = self.entry.get("parts", 0) + len(parts)
        for index, part in enumerate(parts):
            if not self.send(OutboundText(part, system=system), f"{key}:{index}"):
                break  # a permanent failure: the rest would fail the same way

    def send(self, message: Outbound, key: str) -> bool:
        """One send, at most once per key; False when it failed permanently (recorded)."""
        if self.effects.get(key) is not None:
            self._sent()  # done before a crash: its count was never committed, so it counts now
            return True
        to = self.thread.recipient()
        try:
            result = self.channel.send(to, message, key=f"{self.thread.conversation_id}:{key}")
        except WindowClosed as exc:
            self._failed(exc.reason, "window_closed")
            self._tell_agent(
                f"[connector] Not delivered: the customer's {self.thread.channel} messaging window is closed "
                f"({exc.reason}). They will receive messages again after they write.",
                f"window:{key}",
            )
            return False
        except PermanentError as exc:
            self._failed(exc.reason, "permanent")
            return False
        self.effects.record(key, (result.provider_id if result else None) or "1")
        self._sent()
        return True

    def _sent(self) -> None:
        self.tally.count(
            Counter.MESSAGES_OUT, channel=self.thread.channel, integration=self.thread.integration or "none"
        )
        if self.received_at is not None:
            seconds = time.time() - float(self.received_at)
            self.tally.observe(Histogram.CONTACT_CENTER_TO_PROVIDER, seconds, channel=self.thread.channel)

    def _failed(self, reason: str, kind: str) -> None:
        log.warning("send failed permanently", extra={"conversation": self.thread.id, "reason": reason})
        self.failures.append(reason)
        self.entry.setdefault("errors", []).append(reason)
        self.tally.count(Counter.ERRORS, kind=kind, box=Box.OUT.value)

    def _tell_agent(self, note: str, key: str) -> None:
        integration = self.runtime.config.integration(self.thread.integration or "")
        backend = backends.backend_for(integration) if integration else None
        if integration is None or backend is None or not self.thread.remote_id or self.effects.get(key):
            return
        try:
            backend.tell_agent(self.runtime, integration, self.thread, note)
        except (ConversationGone, PermanentError) as exc:
            log.warning("could not tell the agent", extra={"conversation": self.thread.id, "reason": str(exc)})
        self.effects.record(key)

    def _publish(self, publish: Callable[..., None], agent: Agent, key: str) -> None:
        """Tell the blending module (blending/) that an agent's chat began or ended: the agent as the
        backend names them, and the backend's type, by which blending finds the Finesse agent."""
        if self.effects.get(key) is None and self.thread.remote_id:
            integration = self.runtime.config.integration(self.thread.integration or "")
            who = ChatAgent(agent.id, agent.name, integration.type if integration else None)
            publish(self.runtime.redis, who, self.thread.remote_id)
            self.effects.record(key)
