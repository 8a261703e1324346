"""A conversation's flow, moved by one customer event inside the drain (connector/flows/).

The engine says what the event does (a question, an answer kept, a retry, the end of the flow); this
module does it under the thread's lease: questions go to the outbox keyed by step and time asked
(an item repeated after a crash asks nothing twice), answers go to the thread's attributes, and the
flow's place goes to the thread's `flow` field, all written by the commit that takes the event out
of the inbox (so an answer is never lost). While the flow runs, nothing reaches the contact center.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from connector.backends import outbox
from connector.channels.base import EventKind, InboundEvent
from connector.conversations import State
from connector.flows import engine
from connector.flows.definition import Flow
from connector.relay import flow_facts, flow_services
from connector.runtime import Runtime
from connector.store.effects import Effects
from connector.store.threads import Thread

log = logging.getLogger(__name__)


@dataclass
class FlowTurn:
    """What one event did to the flow: the timeline's `flow` entry, a note, and when the flow is
    over with `route`, the customer's events to deliver to the entry point (the first starts it)."""

    entry: dict[str, Any]
    note: str | None = None
    route: list[InboundEvent] = field(default_factory=list)


def take(
    runtime: Runtime, thread: Thread, event: InboundEvent, start: Flow | None, effects: Effects | None = None
) -> FlowTurn | None:
    """Run `event` through the thread's flow, or through `start` (a conversation beginning in it);
    None when the thread is in no flow: the event goes on as it would without flows. `effects`: the
    inbox item's, where a step's call records its result (flow_services.py)."""
    if start is not None:
        facts = flow_facts.facts_for(runtime, thread, event)
        state, actions = engine.start(start, _held(event), facts)
        flow = start
    elif thread.flow:
        current = engine.FlowState.from_json(thread.flow)
        found = runtime.config.flow(current.flow)
        if event.kind is EventKind.CLOSE:
            thread.flow = None
            return FlowTurn({"flow": current.flow, "outcome": "left"}, f"closed by the customer in flow {current.flow}")
        if not event.kind.routable:
            return FlowTurn({"flow": current.flow}, None)  # typing, receipts: nothing waits on them
        if found is None:  # removed by a reload: the conversation goes on to its entry point
            thread.flow = None
            held = [*current.held, _held(event)]
            return FlowTurn({"flow": current.flow, "outcome": "removed"}, "flow no longer configured", _events(held))
        facts = flow_facts.facts_for(runtime, thread, event)
        state, actions = engine.receive(found, current, _held(event), event.text, event.payload, facts)
        flow = found
    else:
        return None
    state, actions = flow_services.settle(runtime, thread, flow, state, actions, effects, facts, event.provider_id)
    turn = FlowTurn({"flow": flow.name})
    for action in actions:
        _apply(runtime, thread, turn, action)
    thread.flow = state.to_json() if state is not None else None
    # What moved, never what the customer wrote (the timeline has it; logs are not for message text).
    log.info("flow moved", extra={"conversation": thread.conversation_id, **turn.entry})
    return turn


def _apply(runtime: Runtime, thread: Thread, turn: FlowTurn, action: engine.Action) -> None:
    entry = turn.entry
    if isinstance(action, engine.Ask):
        outbox.flow_message(runtime, thread.id, thread.sequence, action.template, action.key, action.choices)
        entry["retry" if action.retry else "asked"] = action.step
        turn.note = f"flow {entry['flow']}: {'asked again' if action.retry else 'asked'} {action.step}"
    elif isinstance(action, engine.Answered):
        thread.attributes = {**thread.attributes, action.attribute: action.value}
        entry["answered"] = action.step
    elif isinstance(action, engine.Invalid):
        entry["invalid"] = action.step
    elif isinstance(action, engine.Route):
        entry["outcome"] = {"completed": "routed", "handover": "handed over"}.get(action.outcome, "failed: routed")
        turn.route = _events(list(action.held))
        turn.note = f"flow {entry['flow']} {action.outcome}"
    elif isinstance(action, flow_services.ACTIONS):
        note, events = flow_services.apply(runtime, thread, entry, action)
        turn.route.extend(events)
        if note:
            turn.note = f"{turn.note}; {note}" if turn.note else note
    elif isinstance(action, flow_facts.ACTIONS):
        if note := flow_facts.apply(runtime, thread, entry, action):
            turn.note = f"{turn.note}; {note}" if turn.note else note
    elif isinstance(action, engine.Close):
        if action.template:
            outbox.flow_message(runtime, thread.id, thread.sequence, action.template, "close")
        thread.state = State.CLOSED
        entry["outcome"] = "failed: closed"
        turn.note = f"flow {entry['flow']} failed at {action.step}: conversation closed"


def _held(event: InboundEvent) -> dict[str, Any]:
    held: dict[str, Any] = json.loads(event.to_json())
    return held


def _events(held: list[dict[str, Any]]) -> list[InboundEvent]:
    return [InboundEvent.from_json(json.dumps(item)) for item in held]
