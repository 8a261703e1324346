"""The steps that call an operator's service: `verify` (the identity service) and `bot` (a chatbot).

Pure, like the engine: a step asks for its call with an action (`Verify`, `BotTurn`), the drain makes
the call (connector/relay/flow_services.py, its result kept as an effect so a repeat after a crash
does not call twice) and feeds the `CallResult` back through `engine.resume`. What the result does
is decided here: a verification's attributes and the next step, or the flow's `on_fail`; a bot's
replies to the customer, or its handover (by the bot, by the customer's keyword, or because the bot
failed), with the transcript and summary for the agent.

A bot step keeps its conversation in the flow state's `bot` field: the turns sent, the transcript
(capped) and the buttons last offered (so "2" on a channel without buttons is the second button).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from connector.flows import answers
from connector.flows.bot import BotAnswer, BotReply, Handover
from connector.flows.definition import BotStep, VerifyStep

CALLING = (VerifyStep, BotStep)
"""The step kinds this module runs."""
TRANSCRIPT_LINES = 40
"""Lines of the bot conversation kept for the agent (the latest ones)."""
LINE_CHARS = 500
TRANSCRIPT_CHARS = 4000
"""The agent's transcript message at most this long (the latest lines are kept)."""
SUMMARY_ATTRIBUTE = "bot_summary"
HANDOVER_ATTRIBUTE = "bot_handover"
"""Set at a handover to why it happened: `bot`, `keyword`, `bot_failed` or `bot_unavailable`."""
TRANSCRIPT_ID_PREFIX = "flow-transcript:"
"""The provider id of the transcript message a handover puts before the agent: a backend that shows
who wrote what (Hybrid Chat) shows it as the connector's, not the customer's."""


@dataclass(frozen=True)
class Verify:
    """Call the identity service of `step` with the answers so far; `key` names the call's effect."""

    step: str
    key: str


@dataclass(frozen=True)
class BotTurn:
    """Send one customer message (`text`, or a button's `payload`) to the bot of `step`."""

    step: str
    key: str
    text: str | None
    payload: str | None


@dataclass(frozen=True)
class Say:
    """One bot reply to the customer (via the outbox, keyed: sent once)."""

    step: str
    key: str
    text: str
    buttons: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Verified:
    step: str
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class StepFailed:
    """A verify step failed (refused, an error, or no answer within the retry horizon): `template`
    (the step's `failed`, if any) goes to the customer, then the flow's `on_fail`."""

    step: str
    reason: str
    template: str | None


@dataclass(frozen=True)
class HandedOver:
    """The bot step is over: to the agent, after the flow's Route (whose events this one follows)."""

    step: str
    by: str
    """`bot`, `keyword`, `bot_failed`, `bot_unavailable`."""
    reason: str
    entry_point: str | None
    attributes: Mapping[str, str]
    transcript: str
    """The message the agent gets first thing: the summary and the bot conversation."""


StepAction = Verify | BotTurn | Say | Verified | StepFailed | HandedOver


@dataclass(frozen=True)
class CallResult:
    """What a call gave: `attributes` (verified), `answer` (the bot's), or `failure` (why not);
    `gave_up`: retryable failures went on past the step's tries or the retry horizon."""

    attributes: Mapping[str, str] | None = None
    answer: BotAnswer | None = None
    failure: str | None = None
    gave_up: bool = False

    def to_json(self) -> str:
        answer = None
        if self.answer is not None:
            handover = self.answer.handover
            answer = {
                "replies": [[r.text, [list(b) for b in r.buttons]] for r in self.answer.replies],
                "handover": None
                if handover is None
                else {
                    "entry_point": handover.entry_point,
                    "attributes": dict(handover.attributes),
                    "summary": handover.summary,
                },
            }
        data = {"attributes": self.attributes, "answer": answer, "failure": self.failure, "gave_up": self.gave_up}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> CallResult:
        data = json.loads(raw)
        answer = None
        if (found := data.get("answer")) is not None:
            replies = tuple(BotReply(text, tuple((t, p) for t, p in buttons)) for text, buttons in found["replies"])
            handover = None if found["handover"] is None else Handover(**found["handover"])
            answer = BotAnswer(replies, handover)
        return cls(data.get("attributes"), answer, data.get("failure"), bool(data.get("gave_up")))


class Next(Enum):
    """What the engine does after a result: go on to the next step, wait for the customer, apply the
    flow's `on_fail`, or end the flow by routing (a handover)."""

    STEP = "step"
    WAIT = "wait"
    FAIL = "fail"
    ROUTE = "route"


@dataclass
class Outcome:
    next: Next
    actions: list[StepAction] = field(default_factory=list)
    after_route: list[StepAction] = field(default_factory=list)
    """Actions after the flow's Route (a handover's transcript follows the held events)."""
    template: str | None = None
    """Next.FAIL: the step's message, which replaces the flow's `closing`."""


def enter(step: VerifyStep | BotStep, position: int, bot: MutableMapping[str, Any], last: Mapping[str, Any]) -> Outcome:
    """The flow reaches `step` (at `position`): a verify step calls at once; a bot step sends the
    bot the customer's message that led here (`last`: the opening message when the bot step is
    first, else the answer to the step before)."""
    if isinstance(step, VerifyStep):
        return Outcome(Next.WAIT, [Verify(step.name, f"{position}:{step.name}:verify")])
    text, payload = _text(last.get("text")), _text(last.get("payload"))
    return _to_bot(step, position, bot, text, payload)


def receive(
    step: VerifyStep | BotStep, position: int, bot: MutableMapping[str, Any], text: str | None, payload: str | None
) -> Outcome:
    """A customer message while `step` waits. At a bot step it goes to the bot, unless it is the
    handover keyword; a button chosen by number (no buttons on the channel) is sent as its payload.
    At a verify step (reached after a reload) the call is made again."""
    if isinstance(step, VerifyStep):
        return Outcome(Next.WAIT, [Verify(step.name, f"{position}:{step.name}:verify")])
    text, payload = _text(text), _text(payload)
    if payload is None and text is not None and (offered := bot.get("buttons")):
        title = answers.choose(text, [t for t, _ in offered])
        payload = next((p for t, p in offered if t == title), None) if title else None
    if payload is None and text is not None and " ".join(text.split()).casefold() == step.keyword.casefold():
        _line(bot, "Customer", text)
        return _handover(step, bot, "keyword", f"the customer typed {step.keyword!r}", None)
    if text is None and payload is None:
        _line(bot, "Customer", "[a file or a message without text]")
        return Outcome(Next.WAIT)
    return _to_bot(step, position, bot, text, payload)


def resume(step: VerifyStep | BotStep, bot: MutableMapping[str, Any], turn_key: str, result: CallResult) -> Outcome:
    """The call `step` asked for gave `result` (`turn_key`: the call's key, which its replies extend)."""
    if isinstance(step, VerifyStep):
        if result.attributes is not None and result.failure is None:
            return Outcome(Next.STEP, [Verified(step.name, dict(result.attributes))])
        reason = result.failure or "no answer"
        return Outcome(Next.FAIL, [StepFailed(step.name, reason, step.failed)], template=step.failed)
    if result.answer is None:
        by = "bot_unavailable" if result.gave_up else "bot_failed"
        return _handover(step, bot, by, result.failure or "the bot did not answer", None)
    bot["buttons"] = []
    actions: list[StepAction] = []
    for index, reply in enumerate(result.answer.replies):
        text = reply.text or ""
        if reply.buttons:
            bot["buttons"] = [list(b) for b in reply.buttons]
            text = text or " / ".join(t for t, _ in reply.buttons)
        actions.append(Say(step.name, f"{turn_key}:{index}", text, reply.buttons))
        _line(bot, "Bot", text + ("" if not reply.buttons else " [" + " | ".join(t for t, _ in reply.buttons) + "]"))
    if result.answer.handover is not None:
        outcome = _handover(step, bot, "bot", "the bot handed over", result.answer.handover)
        outcome.actions[:0] = actions
        return outcome
    return Outcome(Next.WAIT, actions)


def _to_bot(
    step: BotStep, position: int, bot: MutableMapping[str, Any], text: str | None, payload: str | None
) -> Outcome:
    bot["turns"] = int(bot.get("turns", 0)) + 1
    if text is not None or payload is not None:
        _line(bot, "Customer", text if text is not None else f"[chose {payload}]")
    return Outcome(Next.WAIT, [BotTurn(step.name, f"{position}:{step.name}:{bot['turns']}", text, payload)])


def _handover(step: BotStep, bot: Mapping[str, Any], by: str, reason: str, handover: Handover | None) -> Outcome:
    summary = handover.summary if handover else None
    attributes = {**(handover.attributes if handover else {}), HANDOVER_ATTRIBUTE: by}
    if summary:
        attributes[SUMMARY_ATTRIBUTE] = summary
    done = HandedOver(
        step.name,
        by,
        reason,
        handover.entry_point if handover else None,
        attributes,
        transcript(bot.get("lines") or [], summary, reason),
    )
    return Outcome(Next.ROUTE, after_route=[done])


def transcript(lines: list[list[str]], summary: str | None, reason: str) -> str:
    """The agent's first message after a bot step: why it handed over, the summary, then the latest
    lines of the conversation that fit in TRANSCRIPT_CHARS."""
    head = f"[connector] Chatbot conversation before this chat (handover: {reason})."
    if summary:
        head += f"\nSummary: {summary}"
    body: list[str] = []
    size = len(head) + 4
    for who, text in reversed(lines):
        line = f"{who}: {text}"
        if size + len(line) + 1 > TRANSCRIPT_CHARS:
            body.insert(0, "…")
            break
        body.insert(0, line)
        size += len(line) + 1
    return head + ("\n--\n" + "\n".join(body) if body else "")


def _line(bot: MutableMapping[str, Any], who: str, text: str) -> None:
    lines: list[list[str]] = bot.setdefault("lines", [])
    lines.append([who, text[:LINE_CHARS]])
    del lines[:-TRANSCRIPT_LINES]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
