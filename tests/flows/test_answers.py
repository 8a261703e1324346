"""Answer validation of `ask` steps: what is accepted, and how it is normalised for the agent."""

from __future__ import annotations

import pytest

from connector.flows.answers import ANSWER_KINDS, pattern_problem, validate


@pytest.mark.parametrize(
    ("kind", "answer", "expected"),
    [
        ("text", "  my   order  ", "my order"),
        ("text", "   ", None),
        ("email", "Ana@Example.com", "ana@example.com"),
        ("email", "ana@example", None),
        ("email", "ana..b@example.com", None),
        ("phone", "+1 (555) 123-4567", "+15551234567"),
        ("phone", "call me", None),
        ("phone", "12", None),
        ("date", "2024-03-05", "2024-03-05"),
        ("date", "05/03/2024", "2024-03-05"),
        ("date", "5.3.2024", "2024-03-05"),
        ("date", "31/02/2024", None),
        ("date", "tomorrow", None),
    ],
)
def test_kinds_accept_and_normalise(kind: str, answer: str, expected: str | None) -> None:
    assert validate(kind, answer) == expected


def test_regex_must_match_the_whole_answer() -> None:
    assert validate("regex", " AB123456 ", pattern="[A-Z]{2}[0-9]{6}") == "AB123456"
    assert validate("regex", "AB123456 and more", pattern="[A-Z]{2}[0-9]{6}") is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("2", "Order status"),
        ("2.", "Order status"),
        ("order  STATUS", "Order status"),
        ("4", None),
        ("0", None),
        ("Refund", None),
    ],
)
def test_choices_by_number_or_text(answer: str, expected: str | None) -> None:
    assert validate("choices", answer, choices=("Quote", "Order status", "Other")) == expected


def test_unknown_kind_and_bad_pattern_are_named() -> None:
    assert set(ANSWER_KINDS) == {"text", "regex", "choices", "email", "phone", "date"}
    with pytest.raises(ValueError, match="unknown answer kind 'colour'"):
        validate("colour", "red")
    assert pattern_problem("[a-z") is not None
    assert pattern_problem("[a-z]+") is None
