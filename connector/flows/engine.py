"""The flow state machine: where a conversation is in its flow, and what the next customer message
does to it. Pure: (flow, state, answer) → (new state, actions). The drain applies the actions under
the thread's lease and writes the state with the thread in the commit that takes the message out of
the inbox (connector/relay/flow_turn.py), so a repeat after a crash recomputes the same actions from
the same state, and their effects are keyed to be done once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from connector.flows import answers, branching, calls
from connector.flows.definition import AskStep, Flow, VerifyStep

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
    bot: dict[str, Any] = field(default_factory=dict)
    """A bot step's conversation (connector/flows/calls.py): turns, transcript, buttons offered."""

    def to_json(self) -> str:
        data = {"flow": self.flow, "step": self.step, "asked": self.asked, "held": self.held}
        if self.bot:
            data["bot"] = self.bot
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> FlowState:
        data = json.loads(raw)
        state = cls(str(data["flow"]), int(data["step"]), int(data["asked"]), list(data.get("held") or []))
        state.bot = dict(data.get("bot") or {})
        return state


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


Action = Ask | Answered | Invalid | Route | Close | branching.StepAction | calls.StepAction


def start(
    flow: Flow, event: Mapping[str, Any], facts: branching.Facts | None = None
) -> tuple[FlowState | None, list[Action]]:
    """A conversation begins in `flow` with the customer's first event: the first question.
    `facts`: what the steps that wait for no answer decide on (branching.py)."""
    state = FlowState(flow.name, held=[dict(event)])
    return _ask_current(flow, state, [], facts)


def receive(
    flow: Flow,
    state: FlowState,
    event: Mapping[str, Any],
    text: str | None,
    payload: str | None,
    facts: branching.Facts | None = None,
) -> tuple[FlowState | None, list[Action]]:
    """The customer's message while a step waits is that step's answer (a button's `payload` first,
    then the text). Returns the next state (None: the flow is over) and what to do."""
    current = flow.steps[state.step] if state.step < len(flow.steps) else None
    if isinstance(current, calls.CALLING):
        # A bot's conversation reaches the agent as its transcript; a file (no text) is held.
        if (isinstance(current, VerifyStep) or not (text or payload)) and len(state.held) < MAX_HELD:
            state.held.append(dict(event))
        return _after_call(flow, state, [], calls.receive(current, state.step, state.bot, text, payload), facts)
    if len(state.held) < MAX_HELD:
        state.held.append(dict(event))
    step = flow.steps[state.step] if state.step < len(flow.steps) else None
    if step is None:  # the flow was shortened by a reload: nothing left to ask
        return None, [Route("completed", tuple(state.held))]
    if not isinstance(step, AskStep):  # a reload put a step that waits for nothing here: run on
        return _ask_current(flow, state, [], facts)
    value = _answer_of(step, text, payload)
    if value is not None:
        actions: list[Action] = [Answered(step.name, step.attribute, value)]
        state.step, state.asked = state.step + 1, 0
        return _ask_current(flow, state, actions, facts)
    actions = [Invalid(step.name, state.asked)]
    if state.asked < step.attempts:
        actions.append(_ask(step, state, retry=True))
        state.asked += 1
        return state, actions
    return None, _fail(flow, state, step.name, actions)


def resume(
    flow: Flow, state: FlowState, key: str, result: calls.CallResult, facts: branching.Facts | None = None
) -> tuple[FlowState | None, list[Action]]:
    """The result of the call the last actions asked for (`key`: its Verify or BotTurn key)."""
    step = flow.steps[state.step] if state.step < len(flow.steps) else None
    if not isinstance(step, calls.CALLING):  # changed by a reload meanwhile: run on
        return _ask_current(flow, state, [], facts)
    return _after_call(flow, state, [], calls.resume(step, state.bot, key, result), facts)


def _after_call(
    flow: Flow, state: FlowState, before: list[Action], outcome: calls.Outcome, facts: branching.Facts | None
) -> tuple[FlowState | None, list[Action]]:
    """Where a verify or bot step's outcome leads (`before`: the turn's actions so far)."""
    actions: list[Action] = [*before, *outcome.actions]
    if outcome.next is calls.Next.STEP:
        state.step, state.asked, state.bot = state.step + 1, 0, {}
        return _ask_current(flow, state, actions, facts)
    if outcome.next is calls.Next.FAIL:
        if flow.on_fail == "close":  # the step's message goes as the closing one, not twice
            actions = [replace(a, template=None) if isinstance(a, calls.StepFailed) else a for a in actions]
        return None, _fail(flow, state, flow.steps[state.step].name, actions, outcome.template)
    if outcome.next is calls.Next.ROUTE:
        return None, [*actions, Route("handover", tuple(state.held)), *outcome.after_route]
    return state, actions


def _fail(flow: Flow, state: FlowState, step: str, actions: list[Action], template: str | None = None) -> list[Action]:
    """The flow's `on_fail`: close (with `template`, else the flow's `closing`) or route anyway."""
    if flow.on_fail == "close":
        return [*actions, Close(template or flow.closing, step)]
    return [*actions, Route("failed", tuple(state.held))]


def _ask_current(
    flow: Flow, state: FlowState, actions: list[Action], facts: branching.Facts | None = None
) -> tuple[FlowState | None, list[Action]]:
    """Run the steps from the current one until one waits for an answer or the flow ends."""
    while state.step < len(flow.steps):
        step = flow.steps[state.step]
        if isinstance(step, branching.AUTOMATIC):
            texts = [str(held.get("text") or "") for held in state.held]
            decided = branching.run(step, texts, facts or branching.Facts(), actions)
            actions.append(decided)
            if branching.ends_flow(decided):
                return None, actions
            state.step, state.asked = state.step + 1, 0
            continue
        if isinstance(step, calls.CALLING):  # the drain makes the call and resumes with its result
            last = state.held[-1] if state.held else {}
            return _after_call(flow, state, actions, calls.enter(step, state.step, state.bot, last), facts)
        actions.append(_ask(step, state, retry=False))
        state.asked += 1
        return state, actions
    return None, [*actions, Route("completed", tuple(state.held))]


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
