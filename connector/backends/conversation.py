"""What every backend does to a conversation the same way, under the thread's lease: turn it away
(entry point disabled, no agents), queue it, and take the customer's messages while the entry
point's unavailable policy runs. The customer hears each outcome as the configured system message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from connector.backends import outbox
from connector.config.model import EntryPoint
from connector.conversations import State
from connector.store.effects import Effects
from connector.store.threads import Thread

if TYPE_CHECKING:
    from connector.runtime import Runtime


def disabled(runtime: Runtime, thread: Thread, why: str) -> str:
    """The entry point takes no chats: the customer is told and the conversation closes."""
    outbox.system_message(runtime, thread.id, thread.sequence, "entry_point_disabled")
    thread.state = State.CLOSED
    return why


def turned_away(runtime: Runtime, thread: Thread, entry_point: EntryPoint, reason: str) -> str:
    """No agent can take the chat: the customer is told, and the entry point's unavailable policy
    (discard or close, for `after_seconds`) runs from the first refusal."""
    policy = entry_point.unavailable
    outbox.system_message(runtime, thread.id, thread.sequence, "no_agents")
    if thread.state is not State.UNAVAILABLE:
        thread.unavailable_until = time.time() + policy.after_seconds
        outbox.schedule_timer(runtime, thread.id, thread.sequence, "unavailable_expired", policy.after_seconds)
    thread.state = State.UNAVAILABLE
    return f"{reason}: {policy.action} for {policy.after_seconds} s"


def queued(runtime: Runtime, thread: Thread, entry_point: EntryPoint, remote_id: str, effects: Effects) -> None:
    """The contact center holds the chat now: the customer is welcomed, and told their place later
    when the entry point says so (`queue_status_after_seconds`)."""
    thread.remote_id = remote_id
    thread.state = State.QUEUED
    thread.queued_at = time.time()
    thread.agent_id = thread.agent_name = None
    thread.unavailable_until = None
    thread.queue_position = None
    outbox.system_message(runtime, thread.id, thread.sequence, "welcome")
    if entry_point.queue_status_after_seconds and effects.get("queue-timer") is None:
        thread.queue_checks += 1
        outbox.schedule_timer(
            runtime,
            thread.id,
            thread.sequence,
            "queue_status",
            entry_point.queue_status_after_seconds,
            firing=thread.queue_checks,
        )
        effects.record("queue-timer")


def while_unavailable(thread: Thread, entry_point: EntryPoint | None, start: Callable[[], str | None]) -> str | None:
    """A customer message while the unavailable policy runs: once the interval is over it starts a
    new chat; during it, `close` tries again with each message, `discard` drops it."""
    if thread.unavailable_until is None or time.time() >= thread.unavailable_until:
        thread.sequence += 1  # the interval is over (its timer may not have run yet): a new chat
        thread.state = State.NEW
        return start()
    if entry_point is not None and entry_point.unavailable.action == "close":
        return start()
    return "discarded: no agents available (unavailable policy: discard)"
