"""What goes into a thread's outbox, and how: agent events, system messages, timers.

Everything the customer receives passes through the outbox, so it is ordered, retried and
idempotent in one place, and every change to a thread happens under its lease. Backends write here;
the relay (`relay/to_customer.py`) reads. Item shapes (JSON):

- `{"source": "agent", "integration", "event": {...}}`: one neutral agent event (`backends/events.py`);
- `{"source": "system", "type", "sequence", "extra"?}`: a system message the inbound side asked for
  (welcome, no agents, entry point disabled); with `"flow": key`, a flow's own template (a question,
  whose `extra.choices` are shown as buttons or numbered text);
- `{"source": "timer", "type", "sequence"}`: a scheduled check (queue status, end of the unavailable
  interval), put in the outbox when it fires so the thread's lease holder acts on it.

Each is accepted at most once per dedupe key: the backend's event id, or "this message for
conversation N of this thread" (so the welcome is sent once per conversation).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connector import queues
from connector.backends.events import AgentEvent
from connector.store import keys, replies
from connector.store.boxes import Box

if TYPE_CHECKING:
    from redis.client import Pipeline

    from connector.runtime import Runtime

SYSTEM_DEDUPE_TTL_SECONDS = 30 * 24 * 3600


def append(
    runtime: Runtime,
    thread_id: str,
    item: dict[str, Any],
    dedupe_key: str,
    ttl: int,
    *,
    record: Callable[[Pipeline], object] | None = None,
) -> bool:
    """Append unless seen; wakes the thread. False for a duplicate. The item carries when it arrived
    (`received_at`), the start of its contact-center-to-provider latency.

    `record` queues what the caller writes beside the item (the agent's transcript) in the same
    transaction: both are written or neither. Apart, a Redis crash between them left an item queued
    for the customer that the agent's view did not show, and an agent (or a client checking before it
    sends again) sent it a second time."""
    if record is None:
        return appended(runtime, runtime.boxes.append(Box.OUT, thread_id, _body(item), dedupe_key, ttl))
    pipe = runtime.redis.pipeline(transaction=True)
    queue_append(runtime, pipe, thread_id, item, dedupe_key, ttl)
    record(pipe)
    return appended(runtime, int(replies.execute(pipe)[0]))


def queue_append(
    runtime: Runtime, pipe: Pipeline, thread_id: str, item: dict[str, Any], dedupe_key: str, ttl: int
) -> int:
    """`append` queued on a caller's transaction; returns the place of its reply among the
    transaction's, which the caller hands to `appended` once the transaction ran."""
    place = len(pipe.command_stack)
    runtime.boxes.append(Box.OUT, thread_id, _body(item), dedupe_key, ttl, client=pipe)
    return place


def appended(runtime: Runtime, result: int) -> bool:
    """After an append ran: a dispatcher woken for a new item; False for a duplicate."""
    if result > 0:
        queues.enqueue_dispatch(runtime.redis, result)
    return result != -1


def _body(item: dict[str, Any]) -> str:
    return json.dumps({**item, "received_at": time.time()}, separators=(",", ":"))


def agent_event(
    runtime: Runtime,
    thread_id: str,
    integration: str,
    event: AgentEvent,
    dedupe_key: str,
    ttl: int,
    *,
    record: Callable[[Pipeline], object] | None = None,
) -> bool:
    """Append one agent event unless `dedupe_key` was seen within `ttl` seconds (the backend's
    redelivery horizon, its own key: a backend that redelivers must find its earlier deliveries);
    False for a duplicate. `record`: as `append`'s."""
    return append(runtime, thread_id, event.to_item(integration), dedupe_key, ttl, record=record)


def system_message(runtime: Runtime, thread_id: str, sequence: int, message_type: str, **extra: Any) -> bool:
    item = {"source": "system", "type": message_type, "sequence": sequence, "extra": extra}
    return append(runtime, thread_id, item, _local_key(thread_id, sequence, message_type), SYSTEM_DEDUPE_TTL_SECONDS)


def flow_message(
    runtime: Runtime, thread_id: str, sequence: int, template: str, key: str, choices: tuple[str, ...] = ()
) -> bool:
    """A flow's question, retry or closing (`template`, a flow's own), once per conversation and
    `key` (the step and how often it was asked): an inbox item repeated after a crash asks nothing twice."""
    item = {"source": "system", "type": template, "sequence": sequence, "flow": key, "extra": {"choices": choices}}
    return append(runtime, thread_id, item, _local_key(thread_id, sequence, f"flow:{key}"), SYSTEM_DEDUPE_TTL_SECONDS)


def flow_text(
    runtime: Runtime, thread_id: str, sequence: int, key: str, text: str, buttons: tuple[tuple[str, str], ...] = ()
) -> bool:
    """A bot's reply in a flow (its words, not a template; `buttons` as (title, payload)), once per
    conversation and `key` (the bot turn and the reply's place in it)."""
    extra = {"text": text, "buttons": [list(b) for b in buttons]}
    item = {"source": "system", "type": "bot_reply", "sequence": sequence, "flow": key, "extra": extra}
    return append(runtime, thread_id, item, _local_key(thread_id, sequence, f"flow:{key}"), SYSTEM_DEDUPE_TTL_SECONDS)


def schedule_timer(
    runtime: Runtime, thread_id: str, sequence: int, timer_type: str, after_seconds: float, *, firing: int = 0
) -> None:
    """Put a timer item in the outbox after `after_seconds`. The timer waits in Redis
    (`store/timers.py`), so it survives a worker restart. A timer that repeats numbers each
    `firing`: a timer fires once per (conversation, type, firing), however often it was scheduled."""
    item: dict[str, Any] = {"source": "timer", "type": timer_type, "sequence": sequence}
    if firing:
        item["firing"] = firing
    runtime.timers.schedule(thread_id, item, time.time() + after_seconds)


def timer_came_due(runtime: Runtime, thread_id: str, item: dict[str, Any]) -> bool:
    """Append a fired timer's item, once per timer and conversation."""
    firing = int(item.get("firing") or 0)
    key = _local_key(thread_id, int(item["sequence"]), f"timer:{item['type']}" + (f":{firing}" if firing else ""))
    return append(runtime, thread_id, item, key, SYSTEM_DEDUPE_TTL_SECONDS)


def _local_key(thread_id: str, sequence: int, what: str) -> str:
    return keys.dedupe("out", thread_id, f"{sequence}:{what}")
