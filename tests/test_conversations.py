"""The thread state machine as a table: open conversations receive; none or closed start anew."""

from __future__ import annotations

import pytest

from connector.channels.base import EventKind
from connector.conversations import State, Transition, on_customer_event

K = EventKind


@pytest.mark.parametrize(
    ("state", "kind", "routed", "expected"),
    [
        (State.IDLE, K.MESSAGE, True, Transition(State.NEW, start_new=True, forward=True)),
        (State.IDLE, K.MESSAGE, False, Transition(State.UNROUTED, start_new=True, forward=False)),
        (State.CLOSED, K.POSTBACK, True, Transition(State.NEW, start_new=True, forward=True)),
        (State.UNROUTED, K.MESSAGE, True, Transition(State.NEW, start_new=True, forward=True)),
        (State.NEW, K.MESSAGE, None, Transition(State.NEW, forward=True)),
        (State.QUEUED, K.MESSAGE, None, Transition(State.QUEUED, forward=True)),
        (State.ASSIGNED, K.POSTBACK, None, Transition(State.ASSIGNED, forward=True)),
        (State.UNAVAILABLE, K.MESSAGE, None, Transition(State.UNAVAILABLE, forward=True)),
        (State.ASSIGNED, K.CLOSE, None, Transition(State.CLOSED, forward=True)),
        (State.IDLE, K.CLOSE, None, Transition(State.CLOSED, forward=False)),
        (State.ASSIGNED, K.TYPING_START, None, Transition(State.ASSIGNED, forward=True)),
        (State.CLOSED, K.TYPING_START, None, Transition(State.CLOSED, forward=False)),
        (State.ASSIGNED, K.RECEIPT, None, Transition(State.ASSIGNED, forward=False)),
    ],
)
def test_transitions(state, kind, routed, expected):
    assert on_customer_event(state, kind, routed) == expected
