"""The steps that wait for no answer and decide where a conversation goes: `language` (the locale
it is answered in), `branch` (the entry point, by language or by an answer) and `hours` (whether
the entry point is open). Pure: the engine runs them with the facts the drain gathered
(connector/relay/flow_facts.py) and the actions of the same turn so far, so a step sees what an
earlier step of the same turn decided (an answer, a language, an entry point).

Time is the event's acceptance time (`Facts.at`, its `received_at`), never the clock: a drain that
repeats an event after a crash decides the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from connector.flows import hours, language
from connector.flows.definition import BranchStep, Condition, HoursStep, LanguageStep

AUTOMATIC = (LanguageStep, BranchStep, HoursStep)
"""The step kinds this module runs."""


@dataclass(frozen=True)
class Facts:
    """What the conversation's steps decide on, gathered by the drain before the engine runs."""

    at: datetime | None = None
    """The event's acceptance time (aware); None: hours steps treat the calendar as open."""
    locales: tuple[str, ...] = ()
    """The locales the deployment has templates for (a `language` step chooses among them)."""
    default_locale: str = "en"
    channel_locale: str | None = None
    """The channel's locale for the customer (Messenger profile `es_ES`), if it gave one."""
    phone: str | None = None
    """The customer's number on SMS and WhatsApp (its country is the third guess)."""
    language: str | None = None
    """The conversation's language when the turn starts (the thread's; set by a rule's check or an
    earlier language step)."""
    attributes: Mapping[str, str] = field(default_factory=dict)
    entry_point: str | None = None
    """The entry point the conversation goes to when the turn starts."""
    calendars: Mapping[str, hours.Calendar] = field(default_factory=dict)
    """Entry point name → its `hours:` (those of the conversation's integration that have one)."""


@dataclass(frozen=True)
class LocaleSet:
    """A language step's decision: answer in `choice.locale`; `language` is the customer's."""

    step: str
    choice: language.LocaleChoice
    language: str | None


@dataclass(frozen=True)
class Branched:
    """A branch step's decision: `entry_point` (None: no branch matched, the entry point stays)."""

    step: str
    entry_point: str | None
    branch: int | None


@dataclass(frozen=True)
class HoursChecked:
    """An hours step's decision; when not `open`, the `out_of_hours` message is sent and `closed`
    (discard | route) says what follows. `calendar` is where the hours came from."""

    step: str
    open: bool
    closed: str
    calendar: str
    next_opening: datetime | None = None
    """When closed: the calendar's next opening, in its zone (None: it never opens again)."""


StepAction = LocaleSet | Branched | HoursChecked


def run(
    step: LanguageStep | BranchStep | HoursStep, texts: Sequence[str], facts: Facts, earlier: Sequence[object]
) -> StepAction:
    """Run one step; `texts` are the customer's messages in the flow so far, `earlier` the actions
    this turn already took (an answer or a branch decided a moment ago counts)."""
    if isinstance(step, LanguageStep):
        choice = language.choose_locale(
            texts,
            supported=facts.locales,
            default=facts.default_locale,
            channel_locale=facts.channel_locale,
            phone=facts.phone,
        )
        found = language.customer_language(texts, channel_locale=facts.channel_locale, phone=facts.phone)
        return LocaleSet(step.name, choice, found)
    if isinstance(step, BranchStep):
        for index, branch in enumerate(step.branches):
            if holds(branch.when, texts, facts, earlier):
                return Branched(step.name, branch.entry_point, index)
        return Branched(step.name, None, None)
    entry_point = current_entry_point(facts, earlier)
    calendar, source = step.calendar, "step"
    if calendar is None:
        calendar, source = facts.calendars.get(entry_point or ""), f"entry point {entry_point}"
    if calendar is None or facts.at is None:
        return HoursChecked(step.name, True, step.closed, "none")
    if hours.is_open(calendar, facts.at):
        return HoursChecked(step.name, True, step.closed, source)
    return HoursChecked(step.name, False, step.closed, source, hours.next_opening(calendar, facts.at))


def ends_flow(action: StepAction) -> bool:
    """Whether the flow stops here: closed hours that discard."""
    return isinstance(action, HoursChecked) and not action.open and action.closed == "discard"


def holds(when: Condition, texts: Sequence[str], facts: Facts, earlier: Sequence[object]) -> bool:
    """Whether every part of `when` holds for the conversation now."""
    if when.language is not None and current_language(texts, facts, earlier) != when.language:
        return False
    attributes = current_attributes(facts, earlier)
    return all(_same(attributes.get(name), value) for name, value in when.attributes)


def current_language(texts: Sequence[str], facts: Facts, earlier: Sequence[object]) -> str | None:
    """The language a language step of this turn found, else the conversation's, else the customer's
    messages so far read now (with the channel's and the phone's fallbacks)."""
    for action in reversed(earlier):
        if isinstance(action, LocaleSet):
            return action.language
    if facts.language is not None:
        return facts.language
    return language.customer_language(texts, channel_locale=facts.channel_locale, phone=facts.phone)


def current_attributes(facts: Facts, earlier: Sequence[object]) -> dict[str, str]:
    """The conversation's attributes with the answers of this turn (the engine's `Answered`)."""
    found = dict(facts.attributes)
    for action in earlier:
        attribute, value = getattr(action, "attribute", None), getattr(action, "value", None)
        if isinstance(attribute, str) and isinstance(value, str):
            found[attribute] = value
    return found


def current_entry_point(facts: Facts, earlier: Sequence[object]) -> str | None:
    for action in reversed(earlier):
        if isinstance(action, Branched) and action.entry_point is not None:
            return action.entry_point
    return facts.entry_point


def _same(have: str | None, want: str) -> bool:
    return have is not None and " ".join(have.split()).casefold() == " ".join(want.split()).casefold()
