"""The flow state machine: where a conversation is in its flow, and what the next customer message
does to it. Pure: (flow, state, answer) → (new state, actions). The drain applies the actions under
the thread's lease and writes the state with the thread in the commit that takes the message out of
the inbox (connector/relay/flow_turn.py), so a repeat after a crash recomputes the same actions from
the same state, and their effects are keyed to be done once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.flows import answers
from connector.flows.definition import AskStep, Flow

MAX_HELD = 50
"""Customer events kept for the agent during one flow (a flow has a few questions; a customer who
sends more is still in the timeline, and the agent gets the first ones)."""


@dataclass
class FlowState:
    """A conversation's place in its flow, kept in the thread's `flow` field (JSON)."""

    flow: str
    step: int = 0
    """Index of the step waiting for its answer."""
    asked: int = 0
    """How often the current step was asked (the question, then each retry)."""
    held: list[dict[str, Any]] = field(default_factory=list)
    """The customer's events during the flow (their JSON), in order: the conversation starts on the
    contact center with them when the flow routes, so the agent sees every one."""

    def to_json(self) -> str:
        return json.dumps(
            {"flow": self.flow, "step": self.step, "asked": self.asked, "held": self.held}, separators=(",", ":")
        )

    @classmethod
    def from_json(cls, raw: str) -> FlowState:
        data = json.loads(raw)
        return cls(str(data["flow"]), int(data["step"]), int(data["asked"]), list(data.get("held") or []))


@dataclass(frozen=True)
class Ask:
    """Send the step's question (or its retry): `key` is unique per step and time asked."""

    step: str
    template: str
    choices: tuple[str, ...]
    key: str
    retry: bool = False


@dataclass(frozen=True)
class Answered:
    step: str
    attribute: str
    value: str


@dataclass(frozen=True)
class Invalid:
    step: str
    attempt: int


@dataclass(frozen=True)
class Route:
    """The flow is over: the conversation goes on to its entry point with the held events."""

    outcome: str  # completed | failed
    held: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Close:
    """The flow failed with `on_fail: close`: `template` (if any) is sent, the conversation closes."""

    template: str | None
    step: str


Action = Ask | Answered | Invalid | Route | Close


def start(flow: Flow, event: Mapping[str, Any]) -> tuple[FlowState | None, list[Action]]:
    """A conversation begins in `flow` with the customer's first event: the first question."""
    state = FlowState(flow.name, held=[dict(event)])
    return _ask_current(flow, state, [])


def receive(
    flow: Flow, state: FlowState, event: Mapping[str, Any], text: str | None, payload: str | None
) -> tuple[FlowState | None, list[Action]]:
    """The customer's message while a step waits is that step's answer (a button's `payload` first,
    then the text). Returns the next state (None: the flow is over) and what to do."""
    if len(state.held) < MAX_HELD:
        state.held.append(dict(event))
    step = flow.steps[state.step] if state.step < len(flow.steps) else None
    if step is None:  # the flow was shortened by a reload: nothing left to ask
        return None, [Route("completed", tuple(state.held))]
    value = _answer_of(step, text, payload)
    if value is not None:
        actions: list[Action] = [Answered(step.name, step.attribute, value)]
        state.step, state.asked = state.step + 1, 0
        return _ask_current(flow, state, actions)
    actions = [Invalid(step.name, state.asked)]
    if state.asked < step.attempts:
        actions.append(_ask(step, state, retry=True))
        state.asked += 1
        return state, actions
    if flow.on_fail == "close":
        return None, [*actions, Close(flow.closing, step.name)]
    return None, [*actions, Route("failed", tuple(state.held))]


def _ask_current(flow: Flow, state: FlowState, actions: list[Action]) -> tuple[FlowState | None, list[Action]]:
    if state.step >= len(flow.steps):
        return None, [*actions, Route("completed", tuple(state.held))]
    step = flow.steps[state.step]
    actions.append(_ask(step, state, retry=False))
    state.asked += 1
    return state, actions


def _ask(step: AskStep, state: FlowState, *, retry: bool) -> Ask:
    template = step.retry if retry and step.retry else step.question
    return Ask(step.name, template, step.choices, f"{state.step}:{step.name}:{state.asked}", retry=retry)


def _answer_of(step: AskStep, text: str | None, payload: str | None) -> str | None:
    for candidate in (payload, text) if step.answer == "choices" else (text,):
        if candidate:
            value = answers.validate(step.answer, candidate, pattern=step.pattern, choices=step.choices)
            if value is not None:
                return value
    return None
