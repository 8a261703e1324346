"""Rule matching, as a table: first match in order wins, and every miss says why."""

from __future__ import annotations

from datetime import date

import pytest

from connector.config.model import DefaultRule, Rule, RuleAction
from connector.rules import Probe, match, sms_keyword

TODAY = date(2026, 11, 22)
SUPPORT = RuleAction("ECE", "Support")
SALES = RuleAction("ECE", "Sales")


def rule(name: str, **overrides) -> Rule:
    fields = {"channel": "sms", "event": "mo", "asset": "sms-1", "action": SUPPORT}
    fields.update(overrides)
    return Rule(name=name, **fields)


def probe(**overrides) -> Probe:
    fields = {"channel": "sms", "event": "mo", "asset": "sms-1", "text": "hello", "today": TODAY}
    fields.update(overrides)
    return Probe(**fields)


@pytest.mark.parametrize(
    ("rules", "probe", "winner", "reasons"),
    [
        ([rule("a")], probe(), "a", []),
        ([rule("a", keyword="SALES", action=SALES), rule("b")], probe(text="sales please"), "a", []),
        ([rule("a", keyword="SALES", action=SALES), rule("b")], probe(text="  SaLeS"), "a", []),
        ([rule("a", keyword="SALES"), rule("b")], probe(text="hello sales"), "b", ["first word is not 'SALES'"]),
        ([rule("a", keyword="SALES"), rule("b")], probe(text=""), "b", ["first word is not 'SALES'"]),
        ([rule("a", status="inactive"), rule("b")], probe(), "b", ["rule is inactive"]),
        (
            [rule("a", channel="whatsapp", event="incoming_message")],
            probe(),
            None,
            ["channel is sms, rule wants whatsapp"],
        ),
        ([rule("a", asset="sms-2")], probe(), None, ["asset is sms-1, rule wants sms-2"]),
        ([rule("a", event="incoming_message")], probe(), None, ["event is mo, rule wants incoming_message"]),
        ([rule("a", start=date(2026, 11, 23))], probe(), None, ["rule starts on 2026-11-23"]),
        ([rule("a", end=date(2026, 11, 21))], probe(), None, ["rule ended on 2026-11-21"]),
        ([rule("a", start=TODAY, end=TODAY)], probe(), "a", []),
        ([rule("a"), rule("b")], probe(), "a", []),
    ],
)
def test_first_matching_rule_wins(rules, probe, winner, reasons):
    decision = match(rules, probe)
    assert decision.rule == winner
    assert [miss.reason for miss in decision.misses] == reasons


def test_default_rule_applies_only_when_nothing_matches():
    default = DefaultRule(action=SALES, name="fallback")
    assert match([rule("a")], probe(), default).rule == "a"
    decision = match([rule("a", asset="other")], probe(), default)
    assert (decision.rule, decision.action, decision.by_default) == ("fallback", SALES, True)
    assert decision.misses[0].rule == "a"


def test_no_rule_and_no_default_is_no_decision():
    decision = match([], probe())
    assert decision.rule is None and decision.action is None


@pytest.mark.parametrize(("text", "keyword"), [("Hello world", "hello"), ("", ""), (None, ""), ("\tSTOP\n", "stop")])
def test_sms_keyword_is_the_first_word_case_folded(text, keyword):
    assert sms_keyword(text) == keyword
