"""What an operator provisions as a flow (`flows:` in entrypoints/*.yaml), as immutable objects.

The configuration's schemas build these and `connector.config.model.Config` holds them; the engine
reads them. They live here, not in connector/config, so the engine depends on nothing of the
connector's and `connector.config` may import this package (import-linter: one direction only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.flows.hours import Calendar, dump_calendar

ON_FAIL = ("route", "close")


@dataclass(frozen=True)
class AskStep:
    """A question to the customer, whose valid answer becomes the custom attribute `attribute`."""

    name: str
    question: str
    """The system-message template asked (message_templates/<locale>/<question>.txt.j2)."""
    attribute: str
    answer: str = "text"
    """How the answer is validated: one of answers.ANSWER_KINDS."""
    pattern: str | None = None
    """`regex` answers: the expression the whole answer must match."""
    choices: tuple[str, ...] = ()
    """`choices` answers: shown as the channel's buttons where it has them, else numbered."""
    attempts: int = 3
    """Answers the customer gets in all: after this many invalid ones the flow's `on_fail` runs."""
    retry: str | None = None
    """Template sent after an invalid answer (None: the question again)."""
    type: str = "ask"


@dataclass(frozen=True)
class LanguageStep:
    """Detects the customer's language in their messages so far and sets the conversation's locale
    (connector/flows/branching.py); waits for no answer."""

    name: str
    type: str = "language"


@dataclass(frozen=True)
class Condition:
    """A branch's `when:`: every part given must hold (an empty condition always does)."""

    language: str | None = None
    """ISO 639-1 (`es`): the customer's language (branching.py says which)."""
    attributes: tuple[tuple[str, str], ...] = ()
    """(attribute, value) pairs the conversation's attributes must have (case and spacing ignored)."""


@dataclass(frozen=True)
class Branch:
    when: Condition
    entry_point: str
    """An entry point of the integration the conversation's rule forwards to."""


@dataclass(frozen=True)
class BranchStep:
    """Chooses the entry point: the first branch whose condition holds; none: the rule's stays."""

    name: str
    branches: tuple[Branch, ...]
    type: str = "branch"

    def raw(self) -> dict[str, Any]:
        """The YAML shape (`branch:`, `when: {language, attribute: {name: value}}`)."""
        branch = []
        for item in self.branches:
            when: dict[str, Any] = {"language": item.when.language} if item.when.language else {}
            if item.when.attributes:
                when["attribute"] = dict(item.when.attributes)
            branch.append({"when": when, "entry_point": item.entry_point})
        return {"name": self.name, "type": self.type, "branch": branch}


HOURS_CLOSED = ("discard", "route")


@dataclass(frozen=True)
class HoursStep:
    """Checks the business hours: outside them the `out_of_hours` message, then `closed`."""

    name: str
    closed: str = "discard"
    """`discard` (the conversation closes) or `route` (the flow goes on, to the entry point)."""
    calendar: Calendar | None = None
    """The step's own calendar; None: the `hours:` of the entry point the conversation goes to."""
    type: str = "hours"

    def raw(self) -> dict[str, Any]:
        """The YAML shape (the calendar as written, not as loaded)."""
        found: dict[str, Any] = {"name": self.name, "type": self.type, "closed": self.closed}
        if self.calendar is not None:
            found["calendar"] = dump_calendar(self.calendar)
        return found


@dataclass(frozen=True)
class VerifyStep:
    """The answers so far go to the operator's identity service (connector/flows/verify.py); its
    attributes are set on the conversation, a refusal applies the flow's `on_fail`."""

    name: str
    url: str
    secret: str = field(repr=False)
    """Signs the call (HMAC); masked wherever the step is shown, never in a repr or a log."""
    timeout: float = 5.0
    failed: str | None = None
    """Template sent when the customer is not verified (None: the flow's `closing`, if it closes)."""
    type: str = "verify"


BOT_KEYWORD = "agent"


@dataclass(frozen=True)
class BotStep:
    """The customer talks to a chatbot (connector/flows/bot.py) until it, or they, hand over."""

    name: str
    url: str
    kind: str = "connector"
    """`connector` (our signed contract) or `rasa` (Rasa's REST channel)."""
    secret: str | None = field(default=None, repr=False)
    timeout: float = 5.0
    tries: int = 2
    """Calls that time out or fail retryably before the bot counts as down and the customer is
    handed over (each retry after the drain's backoff)."""
    keyword: str = BOT_KEYWORD
    """What the customer types to reach an agent (any case)."""
    type: str = "bot"


Step = AskStep | LanguageStep | BranchStep | HoursStep | VerifyStep | BotStep
"""Every kind of step."""


@dataclass(frozen=True)
class Survey:
    """The post-chat survey (connector/flows/survey.py): asked after the agent closes the conversation."""

    question: str
    """The score's template; the answer is 1..`scale`, or one of `choices` (scored by position)."""
    scale: int = 5
    choices: tuple[str, ...] = ()
    """Listed worst first: the first scores 1, the last len(choices)."""
    retry: str | None = None
    """Template sent after an invalid score (None: the question again); a second invalid one ends it."""
    comment: str | None = None
    """Template asking for an optional comment after the score (None: no comment asked)."""
    thanks: str | None = None
    """Template sent when the survey is answered (None: nothing)."""
    timeout_seconds: int = 3600
    """How long each question waits for its answer before the survey ends unanswered."""

    @property
    def points(self) -> int:
        """The highest score."""
        return len(self.choices) if self.choices else self.scale


@dataclass(frozen=True)
class Flow:
    name: str
    steps: tuple[Step, ...]
    on_fail: str = "route"
    """When an answer's attempts are used up: `route` (on to the entry point anyway) or `close`."""
    closing: str | None = None
    """`on_fail: close`: the template the customer hears before the conversation closes."""
    survey: Survey | None = None
    """Asked after the agent closes a conversation that ran this flow (or its entry point names it)."""
    source: str | None = None
