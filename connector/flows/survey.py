"""The post-chat survey as a state machine: after the agent closes, a score question, then an
optional comment. Pure: (survey, state, answer) → (new state, actions), like the flow engine; the
drain applies the actions under the thread's lease (connector/relay/survey_turn.py) and writes the
state with the thread in the commit, so a repeat after a crash recomputes the same actions from the
same state, and the questions are keyed so none is sent twice.

Each question starts a timer numbered `timer`; a timer that fires with an older number (the
customer answered meanwhile) does nothing, and the current one ends the survey unanswered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from connector.flows import answers
from connector.flows.definition import Survey

MAX_COMMENT = 1000
"""Longest comment kept: a pasted essay is cut, never refused."""
ASKED_AT_MOST = 2
"""The score is asked, and asked again once after an invalid answer; a second invalid one ends it."""
_SCORE = re.compile(r"^(\d{1,2})(?:\s*/\s*\d{1,2})?[.!]?$")
"""A score as customers type it: `4`, `4/5`, `5!`."""


class Status:
    """How a survey ended (its record's `status`)."""

    ANSWERED = "answered"
    TIMED_OUT = "timed_out"
    INVALID = "invalid"
    LEFT = "left"


@dataclass
class SurveyState:
    """A conversation's place in its survey, kept in the thread's `survey` field (JSON)."""

    flow: str
    stage: str = "score"
    """`score` or `comment`: what the customer's next message answers."""
    asked: int = 0
    """How often the current stage was asked."""
    timer: int = 0
    """The number of the timeout timer that counts now."""
    score: int | None = None
    answer: str | None = None
    """With choices: the choice the customer picked."""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> SurveyState:
        data = json.loads(raw)
        return cls(
            str(data["flow"]),
            str(data.get("stage") or "score"),
            int(data.get("asked") or 0),
            int(data.get("timer") or 0),
            data.get("score"),
            data.get("answer"),
        )


@dataclass(frozen=True)
class Ask:
    """Send `template`: `key` is unique per stage and time asked (the outbox's dedupe key)."""

    stage: str
    template: str
    choices: tuple[str, ...]
    key: str
    retry: bool = False


@dataclass(frozen=True)
class StartTimer:
    """The timeout of the question just asked: fires `timer` after `seconds`."""

    firing: int
    seconds: int


@dataclass(frozen=True)
class Scored:
    score: int
    answer: str | None


@dataclass(frozen=True)
class Commented:
    text: str


@dataclass(frozen=True)
class Invalid:
    attempt: int


@dataclass(frozen=True)
class Thanks:
    template: str


@dataclass(frozen=True)
class Ended:
    """The survey is over; with `passed_on`, the customer's message was no answer and goes on as
    the start of a new conversation (nothing the customer writes is dropped)."""

    status: str
    passed_on: bool = False


Action = Ask | StartTimer | Scored | Commented | Invalid | Thanks | Ended


def begin(survey: Survey, flow: str) -> tuple[SurveyState, list[Action]]:
    """The agent closed the conversation: the score question."""
    state = SurveyState(flow)
    return state, _ask(survey, state, survey.question, retry=False)


def receive(
    survey: Survey, state: SurveyState, text: str | None, payload: str | None
) -> tuple[SurveyState | None, list[Action]]:
    """The customer's message while the survey waits: the score (a button's payload first, then
    the text) or the comment. Returns the next state (None: the survey is over) and what to do."""
    if state.stage == "comment":
        comment = " ".join((text or "").split())[:MAX_COMMENT]
        actions: list[Action] = [Commented(comment)] if comment else []
        return None, [*actions, *_done(survey)]
    scored = score_of(survey, text, payload)
    if scored is None:
        if state.asked >= ASKED_AT_MOST:
            return None, [Invalid(state.asked), Ended(Status.INVALID, passed_on=True)]
        return state, [Invalid(state.asked), *_ask(survey, state, survey.retry or survey.question, retry=True)]
    state.score, state.answer = scored
    actions = [Scored(*scored)]
    if survey.comment is None:
        return None, [*actions, *_done(survey)]
    state.stage, state.asked = "comment", 0
    return state, [*actions, *_ask(survey, state, survey.comment, retry=False)]


def expire(state: SurveyState, firing: int) -> tuple[SurveyState | None, list[Action]]:
    """A timeout timer fired: only the current question's ends the survey (a score already given
    stands, without a comment)."""
    if firing != state.timer:
        return state, []
    return None, [Ended(Status.ANSWERED if state.score is not None else Status.TIMED_OUT)]


def score_of(survey: Survey, text: str | None, payload: str | None) -> tuple[int, str | None] | None:
    """(score, the choice picked) of an answer, or None when it is none."""
    for candidate in (payload, text):
        if not candidate:
            continue
        if survey.choices:
            picked = answers.choose(candidate, survey.choices)
            if picked is not None:
                return survey.choices.index(picked) + 1, picked
            continue
        found = _SCORE.match(" ".join(candidate.split()))
        if found and 1 <= int(found.group(1)) <= survey.scale:
            return int(found.group(1)), None
    return None


def satisfied(score: int, points: int) -> bool:
    """CSAT counts the top two points of a scale (4 and 5 of 5); of a scale of three or fewer, the top one."""
    return score >= (points - 1 if points > 3 else points)


def _ask(survey: Survey, state: SurveyState, template: str, *, retry: bool) -> list[Action]:
    key = f"survey:{state.stage}:{state.asked}"
    state.asked += 1
    state.timer += 1
    choices = survey.choices if state.stage == "score" else ()
    return [Ask(state.stage, template, choices, key, retry), StartTimer(state.timer, survey.timeout_seconds)]


def _done(survey: Survey) -> list[Action]:
    thanks: list[Action] = [Thanks(survey.thanks)] if survey.thanks else []
    return [*thanks, Ended(Status.ANSWERED)]
