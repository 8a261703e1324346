"""The post-chat survey inside the drain (the state machine is connector/flows/survey.py).

It begins when the agent (or the contact center) closes a conversation whose flow has a `survey:`
(relay/to_customer.py `complete`), moves with each customer message while it waits (relay/drain.py,
before the rules: an answer never reaches the contact center nor starts a conversation), and ends
by its answer, a second invalid score, the customer's close, or its timeout timer. Everything runs
under the thread's lease: the state goes to the thread's `survey` field in the drain's commit, the
questions go to the outbox keyed by stage and time asked (a repeated item asks nothing twice), and
the result record (store/surveys.py) is written whole, so a repeat writes the same record.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from connector.backends import outbox
from connector.channels.base import EventKind, InboundEvent
from connector.config.model import Config
from connector.flows import survey as machine
from connector.flows.definition import Flow, Survey
from connector.runtime import Runtime
from connector.store import surveys, threads

log = logging.getLogger(__name__)

TIMER = "survey_expired"
"""The outbox timer type of a survey question's timeout."""


@dataclass
class SurveyTurn:
    """What one event did to the survey: the timeline's `survey` entry and a note. With
    `passed_on`, the survey is over and the event goes on as it would without a survey."""

    entry: dict[str, Any]
    note: str | None = None
    passed_on: bool = False
    details: list[str] = field(default_factory=list)


def survey_for(config: Config, thread: threads.Thread) -> Flow | None:
    """The flow whose survey follows this conversation: its rule's flow, else the flow of the entry
    point it ended on; None when that flow has no survey."""
    name: str | None = None
    rule = next((r for r in config.rules if r.name == thread.rule), None)
    if rule is None and config.default_rule is not None and config.default_rule.name == thread.rule:
        rule = config.default_rule  # type: ignore[assignment]  # both have `action`
    if rule is not None:
        name = rule.action.flow
    if name is None:
        integration = config.integration(thread.integration or "")
        entry_point = integration.entry_point(thread.entry_point or "") if integration else None
        name = entry_point.flow if entry_point else None
    flow = config.flow(name) if name else None
    return flow if flow is not None and flow.survey is not None else None


def begin(runtime: Runtime, thread: threads.Thread, entry: dict[str, Any], by: str) -> None:
    """The conversation was closed by `by` (the backend's word): ask the survey of its flow, if it
    has one, the conversation had an agent to rate, and the customer did not leave first."""
    if thread.survey or by == "customer" or not (thread.agent_id or thread.agent_name):
        return
    flow = survey_for(runtime.config, thread)
    if flow is None or flow.survey is None:
        return
    earlier = surveys.get(runtime.redis, thread.conversation_id)
    if earlier is not None and earlier.status != "asked":
        return  # this conversation's survey is over: a second close asks nothing
    state, actions = machine.begin(flow.survey, flow.name)
    turn = SurveyTurn({"flow": flow.name})
    _record(runtime, thread, state, flow.survey, status="asked")
    _apply(runtime, thread, flow.survey, state, turn, actions)
    thread.survey = state.to_json()
    entry["survey"] = turn.entry
    _log(thread, turn)


def take(runtime: Runtime, thread: threads.Thread, event: InboundEvent) -> SurveyTurn | None:
    """The customer's event while the thread's survey waits (None: no survey waits, or it just ended
    because the flow is no longer configured, and the event goes on as usual)."""
    if not thread.survey:
        return None
    state = machine.SurveyState.from_json(thread.survey)
    flow = runtime.config.flow(state.flow)
    turn = SurveyTurn({"flow": state.flow})
    if event.kind is EventKind.CLOSE:
        _end(runtime, thread, state, machine.Status.LEFT, turn)
        return turn
    if not event.kind.routable:
        return turn  # typing, receipts: nothing waits on them
    if flow is None or flow.survey is None:  # removed by a reload: the message goes on
        thread.survey = None
        return None
    new, actions = machine.receive(flow.survey, state, event.text, event.payload)
    _apply(runtime, thread, flow.survey, state, turn, actions)
    thread.survey = new.to_json() if new is not None else None
    _log(thread, turn)
    return turn


def expired(runtime: Runtime, thread: threads.Thread, entry: dict[str, Any], firing: int) -> None:
    """A survey question's timeout fired (an outbox timer): the current one ends the survey."""
    if not thread.survey:
        entry["note"] = "no survey waits: nothing to do"
        return
    state = machine.SurveyState.from_json(thread.survey)
    new, actions = machine.expire(state, firing)
    if not actions:
        entry["note"] = "the timeout of an answered question: nothing to do"
        return
    turn = SurveyTurn({"flow": state.flow})
    flow = runtime.config.flow(state.flow)
    _apply(runtime, thread, flow.survey if flow else None, state, turn, actions)
    thread.survey = new.to_json() if new is not None else None
    entry["survey"] = turn.entry
    entry["note"] = turn.note
    _log(thread, turn)


def _apply(
    runtime: Runtime,
    thread: threads.Thread,
    survey: Survey | None,
    state: machine.SurveyState,
    turn: SurveyTurn,
    actions: list[machine.Action],
) -> None:
    entry = turn.entry
    for action in actions:
        if isinstance(action, machine.Ask):
            outbox.flow_message(runtime, thread.id, thread.sequence, action.template, action.key, action.choices)
            entry["retry" if action.retry else "asked"] = action.stage
            turn.note = f"survey: {'asked again' if action.retry else 'asked'} {action.stage}"
        elif isinstance(action, machine.StartTimer):
            outbox.schedule_timer(runtime, thread.id, thread.sequence, TIMER, action.seconds, firing=action.firing)
        elif isinstance(action, machine.Scored):
            entry["score"] = action.score
            _record(runtime, thread, state, survey, score=action.score, answer=action.answer)
            turn.note = f"survey: scored {action.score}"
        elif isinstance(action, machine.Commented):
            entry["comment"] = True  # the text is the customer's message on the timeline
            _record(runtime, thread, state, survey, comment=action.text)
        elif isinstance(action, machine.Invalid):
            entry["invalid"] = "score"
        elif isinstance(action, machine.Thanks):
            outbox.flow_message(runtime, thread.id, thread.sequence, action.template, "survey:thanks")
        elif isinstance(action, machine.Ended):
            _end(runtime, thread, state, action.status, turn, survey)
            turn.passed_on = action.passed_on


def _end(
    runtime: Runtime,
    thread: threads.Thread,
    state: machine.SurveyState,
    status: str,
    turn: SurveyTurn,
    survey: Survey | None = None,
) -> None:
    thread.survey = None
    turn.entry["outcome"] = status
    _record(runtime, thread, state, survey, status=status, ended=True)
    turn.note = f"survey {status.replace('_', ' ')}" + (f", score {state.score}" if state.score is not None else "")


def _record(
    runtime: Runtime,
    thread: threads.Thread,
    state: machine.SurveyState,
    survey: Survey | None,
    *,
    status: str | None = None,
    score: int | None = None,
    answer: str | None = None,
    comment: str | None = None,
    ended: bool = False,
) -> None:
    """The conversation's record, changed by one fact; written under the lease with its totals."""
    redis = runtime.redis
    previous = surveys.get(redis, thread.conversation_id)
    now = time.time()
    record = (
        replace(previous)
        if previous
        else surveys.SurveyRecord(
            conversation=thread.conversation_id,
            thread=thread.id,
            flow=state.flow,
            integration=thread.integration,
            entry_point=thread.entry_point,
            channel=thread.channel,
            asset=thread.asset,
            agent=thread.agent_name or thread.agent_id,
            agent_id=thread.agent_id,
            status="asked",
            points=survey.points if survey else 5,
            asked_at=now,
        )
    )
    if score is not None and record.score is None:
        record.score, record.answer, record.answered_at = score, answer, now
    if comment is not None:
        record.comment = comment
    if status is not None and record.ended_at is None:
        record.status = status
    if ended and record.ended_at is None:
        record.ended_at = now
    surveys.save(redis, record, previous)


def _log(thread: threads.Thread, turn: SurveyTurn) -> None:
    # What moved (the score included), never the comment's text: logs are not for what customers write.
    log.info("survey moved", extra={"conversation": thread.conversation_id, **turn.entry})
