"""Validating a customer's answer to an `ask` step: the normalised answer, or None when it is not one.

Pure (standard library only), so the configuration may use it (`ANSWER_KINDS`, `pattern_problem`)
as well as the flow engine. Normalising matters: the contact center's agent reads the attribute, so
`  ab123 ` arrives as `ab123`, a phone as `+15551234567`, a date as `2024-03-05`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

ANSWER_KINDS = ("text", "regex", "choices", "email", "phone", "date")
MAX_ANSWER = 500
"""Longest answer kept (an attribute value): a pasted essay is cut, never refused."""

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d")
"""Day-first where ambiguous (most of the world writes 05/03/2024 for 5 March)."""


def validate(kind: str, answer: str, *, pattern: str | None = None, choices: Sequence[str] | None = None) -> str | None:
    """The normalised answer of `kind`, or None if `answer` is not a valid one. `pattern` (for
    `regex`) must match the whole answer; `choices` accepts the choice's text (any case) or its
    number (1-based, as the numbered list shows it). Raises ValueError for an unknown kind."""
    text = " ".join(answer.split())
    if not text:
        return None
    if kind == "text":
        return text[:MAX_ANSWER]
    if kind == "regex":
        if pattern is None:
            raise ValueError("a regex answer needs a pattern")
        return text[:MAX_ANSWER] if re.fullmatch(pattern, text) else None
    if kind == "choices":
        return choose(text, choices or ())
    if kind == "email":
        return text.lower() if _EMAIL.match(text) and ".." not in text else None
    if kind == "phone":
        digits = _PHONE_SEPARATORS.sub("", text)
        return digits if _PHONE.match(digits) else None
    if kind == "date":
        return _date(text)
    raise ValueError(f"unknown answer kind {kind!r}: use one of {', '.join(ANSWER_KINDS)}")


def choose(text: str, choices: Sequence[str]) -> str | None:
    """The choice `text` names: its number, or its text compared case- and space-insensitively."""
    wanted = text.strip().rstrip(".)").strip()
    if wanted.isdigit() and 1 <= int(wanted) <= len(choices):
        return choices[int(wanted) - 1]
    folded = " ".join(wanted.split()).casefold()
    return next((c for c in choices if " ".join(c.split()).casefold() == folded), None)


def _date(text: str) -> str | None:
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(text, form).date().isoformat()
        except ValueError:
            continue
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return None


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is not a usable regular expression, or None (check-config names the field)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None
