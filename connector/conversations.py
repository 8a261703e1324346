"""The conversation state machine of one customer thread. Pure: (state, event) → transition.

A thread is one customer on one channel asset; it holds a sequence of conversations (chats on an
entry point). Webex Connect's "resolve conversation": an open conversation receives the message;
none, or a closed one, means a new conversation is started.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connector.channels.base import EventKind


class State(StrEnum):
    IDLE = "idle"  # no conversation yet
    NEW = "new"  # routed, being started on the contact center
    QUEUED = "queued"  # waiting for an agent
    ASSIGNED = "assigned"  # an agent has it
    UNAVAILABLE = "unavailable"  # no agents / entry point disabled; the unavailable policy runs
    UNROUTED = "unrouted"  # no rule matched and there is no default rule
    CLOSED = "closed"

    @property
    def open(self) -> bool:
        return self in (State.NEW, State.QUEUED, State.ASSIGNED, State.UNAVAILABLE)


@dataclass(frozen=True)
class Transition:
    state: State
    start_new: bool = False
    """A new conversation begins with this event: resolve the rules, bump the sequence."""
    forward: bool = False
    """The event belongs to the open conversation and goes to the contact center."""


def on_customer_event(state: State, kind: EventKind, routed: bool | None = None) -> Transition:
    """The next state of a thread when the customer does something.

    `routed` says whether the rules found a target; it matters only when a new conversation starts.
    """
    if kind.routable:
        if state.open:
            return Transition(state, forward=True)
        return Transition(State.NEW if routed else State.UNROUTED, start_new=True, forward=bool(routed))
    if kind is EventKind.CLOSE:
        return Transition(State.CLOSED, forward=state.open)
    # typing and receipts: no change; typing reaches an open conversation's agent
    return Transition(state, forward=state.open and kind in (EventKind.TYPING_START, EventKind.TYPING_END))
