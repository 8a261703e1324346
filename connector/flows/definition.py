"""What an operator provisions as a flow (`flows:` in entrypoints/*.yaml), as immutable objects.

The configuration's schemas build these and `connector.config.model.Config` holds them; the engine
reads them. They live here, not in connector/config, so the engine depends on nothing of the
connector's and `connector.config` may import this package (import-linter: one direction only).
"""

from __future__ import annotations

from dataclasses import dataclass

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


Step = AskStep
"""Every kind of step (only `ask` in this version)."""


@dataclass(frozen=True)
class Flow:
    name: str
    steps: tuple[Step, ...]
    on_fail: str = "route"
    """When an answer's attempts are used up: `route` (on to the entry point anyway) or `close`."""
    closing: str | None = None
    """`on_fail: close`: the template the customer hears before the conversation closes."""
    source: str | None = None
