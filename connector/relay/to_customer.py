"""The outbox side of the drain: contact-center events and system messages, to the customer.

Runs under the thread's lease, like the inbox side, so it may change the thread. Every send is an
effect recorded in `Effects` under a key derived from the item (ECE event id + part number), so a
repeat after a crash or a retryable failure never sends twice. A send that fails permanently
(window closed, invalid recipient) does not block the thread: the item is dead-lettered with the
reason, the agent is told when the window is closed, and state changes still apply.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from connector.backends.ece.client import client_for
from connector.blending.chat_events import publish_chat_assigned, publish_chat_ended
from connector.channels.base import Channel
from connector.channels.sending import Outbound, OutboundClose, OutboundFile, OutboundText, OutboundTyping
from connector.conversations import State
from connector.errors import ConversationGone, PermanentError, WindowClosed
from connector.messages.context import queue_context
from connector.messages.text import html_to_text, page_push_text, split_text
from connector.relay import customers, system_messages
from connector.runtime import Runtime
from connector.store import dead_letters, threads
from connector.store.effects import Effects
from connector.store.inbox import Box

log = logging.getLogger(__name__)

TYPING_THROTTLE_SECONDS = 10.0
"""At most one typing-start per conversation in this long (typing floods cost API quota)."""
TIMELINE_TEXT_LIMIT = 1000


def handle_item(
    runtime: Runtime, thread_id: str, raw: bytes, effects: Effects
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """Apply one outbox item; returns the timeline entry and the thread's fields for the commit."""
    try:
        item = json.loads(raw)
        source = item["source"]
    except (ValueError, TypeError, KeyError):
        log.error("unreadable outbox item dropped", extra={"conversation": thread_id})
        return {"at": time.time(), "direction": "out", "kind": "error", "note": "unreadable item"}, None
    thread = threads.load(runtime.redis, thread_id)
    if not thread.channel:
        log.warning("outbox item for a thread that does not exist", extra={"conversation": thread_id})
        return {"at": time.time(), "direction": "out", "kind": "error", "note": "no such thread"}, None
    relay = _Relay(runtime, thread, effects)
    if source == "ece":
        relay.ece_event(item)
    elif source == "system":
        relay.system_item(item)
    elif source == "timer":
        relay.timer(item)
    else:
        relay.entry["note"] = f"unknown outbox item source {source!r}"
    if relay.failures:
        letter = dead_letters.add(runtime.redis, thread_id, Box.OUT, raw, "; ".join(relay.failures))
        relay.entry["dead_letter"] = letter.id
    relay.entry["state"] = thread.state.value
    return relay.entry, threads.fields_of(thread)


class _Relay:
    def __init__(self, runtime: Runtime, thread: threads.Thread, effects: Effects) -> None:
        self.runtime = runtime
        self.thread = thread
        self.effects = effects
        self.failures: list[str] = []
        self.entry: dict[str, Any] = {"at": time.time(), "direction": "out", "conversation": thread.conversation_id}

    # -- ECE events ----------------------------------------------------------------------------

    def ece_event(self, item: dict[str, Any]) -> None:
        event = item.get("event") or {}
        kind = str((event.get("type") or {}).get("value") or "")
        conversation = str(item.get("conversation") or "")
        key = f"ece:{event.get('id')}"
        current = conversation == self.thread.remote_id
        self.entry.update(kind=kind, ece_event=event.get("id"), remote=conversation)
        if not current:
            self.entry["note"] = "event of an earlier conversation: content delivered, state unchanged"
        sender = (event.get("sender") or {}).get("user") or {}
        agent = {"id": sender.get("id"), "name": sender.get("name")} if sender else None
        content = event.get("content")

        if kind in ("text/plain", "text/html"):
            text = str(content or "")
            if kind == "text/html" and not self.channel.html:
                text = html_to_text(text)
            self.thread.typing_at = None  # a message ends the typing indicator on every channel
            self.send_text(text, key, system=False)
        elif kind in ("startTyping", "endTyping"):
            if current:
                self.typing(kind == "startTyping", key)
        elif kind == "pagePush":
            self.send_text(page_push_text(str(content or "")), key, system=False)
        elif kind == "uploadAttachment":
            self.agent_file(event.get("attachment") or {}, key)
        elif not current:
            self.entry["note"] = f"{kind or 'untyped'} event of an earlier conversation ignored"
        elif kind == "assigned":
            self.assigned(agent, key)
        elif kind == "transfer":
            self.transfer(event.get("transfer") or {}, key)
        elif kind in ("acceptAttachment", "rejectAttachment"):
            message_type = "attachment_accepted" if kind == "acceptAttachment" else "attachment_rejected"
            attachment = event.get("attachment") or {}
            self.system_text(message_type, key, attachment={"name": attachment.get("name"), "id": attachment.get("id")})
        elif kind == "complete":
            self.complete(key)
        else:
            log.warning("unknown ECE event type acknowledged", extra={"conversation": self.thread.id, "type": kind})
            self.entry["note"] = f"unknown ECE event type {kind!r}: ignored"

    def assigned(self, agent: dict[str, Any] | None, key: str) -> None:
        previous = self.thread.agent_name
        self.thread.state = State.ASSIGNED
        self.thread.agent_id = agent.get("id") if agent else None
        self.thread.agent_name = agent.get("name") if agent else None
        self.entry["agent"] = self.thread.agent_name
        self.system_text("agent_assigned", key)
        if previous and previous != self.thread.agent_name:
            self._publish(publish_chat_ended, previous, f"{key}:ended")
        if self.thread.agent_name:
            self._publish(publish_chat_assigned, self.thread.agent_name, f"{key}:assigned")

    def transfer(self, transfer: dict[str, Any], key: str) -> None:
        target = {"type": transfer.get("type"), "name": transfer.get("name")}
        self.entry["transfer"] = target
        previous = self.thread.agent_name
        if transfer.get("type") == "agent":
            self.system_text("transfer_agent", key, transfer=target)
            self.thread.agent_id, self.thread.agent_name = None, transfer.get("name")
        else:
            self.system_text("transfer_queue", key, transfer=target)
            self.thread.state = State.QUEUED
            self.thread.queued_at = time.time()
            self.thread.agent_id = self.thread.agent_name = None
        if previous:
            self._publish(publish_chat_ended, previous, f"{key}:ended")

    def complete(self, key: str) -> None:
        closed_by_customer = self.thread.state is State.CLOSED
        if not closed_by_customer:
            self.system_text("agent_closed", key)
            self.send(OutboundClose(), f"{key}:close")
        if self.thread.typing_at is not None:
            self.thread.typing_at = None
        if self.thread.agent_name:
            self._publish(publish_chat_ended, self.thread.agent_name, f"{key}:ended")
        self.thread.state = State.CLOSED
        self.entry["note"] = "closed by the customer" if closed_by_customer else "closed by the agent"

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

    def agent_file(self, attachment: dict[str, Any], key: str) -> None:
        url = attachment.get("url")
        if not url:
            self.entry["note"] = "agent file without a URL: nothing to send"
            return
        name = str(attachment.get("name") or "file")
        self.entry["file"] = name
        self.send(
            OutboundFile(
                url=str(url),
                name=name,
                mime_type=str(attachment.get("mimeType") or "application/octet-stream"),
                size=attachment.get("size"),
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
        self.system_text(message_type, f"system:{message_type}", **extra)

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
        elif timer_type == "queue_status":
            if self.thread.state is State.QUEUED and self.thread.remote_id:
                self.queue_status()
        else:
            self.entry["note"] = f"unknown timer {timer_type!r}"

    def queue_status(self) -> None:
        integration = self.runtime.config.integration(self.thread.integration or "")
        entry_point = integration.entry_point(self.thread.entry_point or "") if integration else None
        if integration is None or entry_point is None:
            return
        availability = client_for(integration, self.runtime.redis).availability(entry_point.id)
        # ECE reports the entry point's depth, not this customer's place: the depth stands in.
        queue = queue_context(availability.queue_depth, availability.queue_depth, availability.wait_seconds)
        self.entry["queue"] = queue
        self.system_text("queue_status", "timer:queue_status", queue=queue)

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
        return customers.channel_for(self.runtime, self.thread)

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
            return True
        to = customers.recipient(self.thread)
        try:
            result = self.channel.send(to, message, key=f"{self.thread.conversation_id}:{key}")
        except WindowClosed as exc:
            self._failed(exc.reason)
            self._tell_agent(
                f"[connector] Not delivered: the customer's {self.thread.channel} messaging window is closed "
                f"({exc.reason}). They will receive messages again after they write.",
                f"window:{key}",
            )
            return False
        except PermanentError as exc:
            self._failed(exc.reason)
            return False
        self.effects.record(key, (result.provider_id if result else None) or "1")
        return True

    def _failed(self, reason: str) -> None:
        log.warning("send failed permanently", extra={"conversation": self.thread.id, "reason": reason})
        self.failures.append(reason)
        self.entry.setdefault("errors", []).append(reason)

    def _tell_agent(self, note: str, key: str) -> None:
        integration = self.runtime.config.integration(self.thread.integration or "")
        if integration is None or not self.thread.remote_id or self.effects.get(key):
            return
        try:
            client_for(integration, self.runtime.redis).send_message(self.thread.remote_id, note)
        except (ConversationGone, PermanentError) as exc:
            log.warning("could not tell the agent", extra={"conversation": self.thread.id, "reason": str(exc)})
        self.effects.record(key)

    def _publish(self, publish: Callable[..., None], agent: str, key: str) -> None:
        """Tell the blending module (routing/) that an agent's chat began or ended."""
        if self.effects.get(key) is None and self.thread.remote_id:
            publish(self.runtime.redis, agent, self.thread.remote_id)
            self.effects.record(key)
