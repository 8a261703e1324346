"""The drain job: one thread's inbox, in order, by whoever holds the thread's lease.

An item leaves the inbox only after its effect is done (`Inboxes.commit`), so a worker killed
mid-item makes the next lease holder repeat that item; effects are keyed by provider id so the repeat
is harmless. Every commit renews the lease, and a holder that lost it stops at once.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from connector import backends, conversations, rules
from connector.channels import channel_class
from connector.channels.base import InboundEvent
from connector.relay.queues import DISPATCH_BUDGET_SECONDS, DISPATCH_LINGER_SECONDS, enqueue_dispatch
from connector.runtime import Runtime, current
from connector.store import keys, threads
from connector.store.inbox import LEASE_LOST, Inboxes

log = logging.getLogger(__name__)

TIMELINE_TEXT_LIMIT = 1000


def drain_ready(slot: int | None = None) -> int:
    """RQ job: drain ready threads one after another; returns how many items were handled.

    At most `settings.dispatchers` of these run at once, each popping distinct thread ids (a thread
    popped twice is skipped by its lease). A dispatcher lingers briefly for more work, so a steady
    stream costs no enqueue per message; after its time budget it hands over to a fresh job.
    """
    runtime = current()
    inboxes = runtime.inboxes
    deadline = time.monotonic() + DISPATCH_BUDGET_SECONDS
    handled = 0
    try:
        while time.monotonic() < deadline:
            thread_id = inboxes.next_ready(DISPATCH_LINGER_SECONDS)
            if thread_id is None:
                break
            handled += drain_thread(thread_id, runtime, slot)
    finally:
        inboxes.retire_dispatcher(slot)
    # Work that arrived while every slot was taken (or after our budget) needs a dispatcher.
    if (next_slot := inboxes.claim_dispatch()) is not None:
        enqueue_dispatch(runtime.redis, next_slot)
    return handled


def drain_thread(thread_id: str, runtime: Runtime | None = None, slot: int | None = None) -> int:
    """Handle one thread's inbox until it is empty; returns how many items were handled."""
    runtime = runtime or current()
    inboxes = runtime.inboxes
    handled = 0
    # Loop: an item appended after our last look but before our release must not be stranded,
    # since its wake-up may have found our lease and left.
    while True:
        acquired = inboxes.acquire(thread_id, runtime.settings.lease_seconds, slot)
        if acquired is None:
            return handled
        token, head = acquired
        try:
            handled += _drain_held(runtime, inboxes, thread_id, token, head)
        finally:
            left = inboxes.release(thread_id, token)
        if left == 0:
            return handled


def _drain_held(runtime: Runtime, inboxes: Inboxes, thread_id: str, token: str, item: bytes | None) -> int:
    handled = 0
    lease = runtime.settings.lease_seconds
    while item is not None:
        try:
            event = InboundEvent.from_json(item)
        except (ValueError, TypeError, KeyError):
            # An unreadable item cannot be retried into health; record it, never block the thread.
            log.error("unreadable inbox item dropped", extra={"conversation": thread_id})
            entry, fields = {"at": time.time(), "kind": "error", "note": "unreadable item"}, None
        else:
            entry, fields = handle_event(runtime, event)
        following = inboxes.commit(thread_id, token, item, entry, fields, lease)
        if following is LEASE_LOST:
            log.warning("lease lost before commit; item left for the next holder", extra={"conversation": thread_id})
            return handled
        handled += 1
        item = following
    return handled


def handle_event(runtime: Runtime, event: InboundEvent) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply one customer event to its thread; returns the timeline entry and the thread's fields,
    which the commit writes in the same atomic step that takes the item out of the inbox."""
    redis = runtime.redis
    config = runtime.config
    thread = threads.load(redis, event.thread_id)
    if not thread.channel:
        thread.channel, thread.asset, thread.customer = event.channel, event.asset, event.customer

    decision: rules.Decision | None = None
    if event.kind.routable and not thread.state.open:
        channel = channel_class(event.channel)
        probe = rules.Probe(
            channel=event.channel,
            event=channel.message_event if channel else "incoming_message",
            asset=event.asset,
            text=event.text,
            today=datetime.fromtimestamp(event.timestamp or time.time(), UTC).date(),
        )
        decision = rules.match(config.rules, probe, config.default_rule)
    transition = conversations.on_customer_event(
        thread.state, event.kind, routed=None if decision is None else decision.action is not None
    )

    if transition.start_new:
        thread.sequence += 1
        thread.started_at = event.timestamp
        thread.integration = decision.action.forward_to if decision and decision.action else None
        thread.entry_point = decision.action.entry_point if decision and decision.action else None
        thread.rule = decision.rule if decision else None
        if decision and decision.action is None:
            _record_unrouted(runtime, event, decision)
    if event.kind.routable:
        thread.details = threads.merge_details(thread.details, event.details)
        thread.last_inbound_at = max(thread.last_inbound_at or 0.0, event.timestamp)
    thread.state = transition.state

    note = _forward(runtime, thread, event, transition) if transition.forward else None
    log.info(
        "inbound event handled",
        extra={
            "conversation": thread.conversation_id,
            "kind": event.kind.value,
            "provider_id": event.provider_id,
            "state": thread.state.value,
            "rule": thread.rule,
        },
    )
    entry: dict[str, Any] = {
        "at": time.time(),
        "direction": "in",
        "kind": event.kind.value,
        "provider_id": event.provider_id,
        "conversation": thread.conversation_id,
        "state": thread.state.value,
    }
    if event.text:
        entry["text"] = event.text[:TIMELINE_TEXT_LIMIT]
    if event.attachments:
        entry["attachments"] = len(event.attachments)
    if event.status:
        entry["status"] = event.status
    if transition.start_new:
        entry["routing"] = {
            "rule": thread.rule,
            "integration": thread.integration,
            "entry_point": thread.entry_point,
            "misses": [{"rule": m.rule, "reason": m.reason} for m in decision.misses] if decision else [],
        }
    if note:
        entry["note"] = note
    return entry, threads.fields_of(thread)


def _forward(
    runtime: Runtime, thread: threads.Thread, event: InboundEvent, transition: conversations.Transition
) -> str | None:
    if thread.integration is None:
        return None
    integration = runtime.config.integration(thread.integration)
    if integration is None:
        return f"integration {thread.integration!r} is no longer configured"
    backend = backends.backend_for(integration)
    if backend is None:
        return f"waiting: no backend for integration type {integration.type!r} is installed"
    backend.deliver(integration, thread, event, start=transition.start_new)
    return None


def _record_unrouted(runtime: Runtime, event: InboundEvent, decision: rules.Decision) -> None:
    log.warning(
        "no rule matched; message not routed",
        extra={"conversation": event.thread_id, "channel": event.channel, "asset": event.asset},
    )
    record = {
        "at": time.time(),
        "thread": event.thread_id,
        "channel": event.channel,
        "asset": event.asset,
        "kind": event.kind.value,
        "misses": [{"rule": m.rule, "reason": m.reason} for m in decision.misses],
    }
    pipe = runtime.redis.pipeline()
    pipe.lpush(keys.unrouted(), json.dumps(record))
    pipe.ltrim(keys.unrouted(), 0, 999)
    pipe.execute()
