"""Rule matching: a customer message → (integration, entry point). Pure: data in, decision out.

Rules are evaluated in their configured order and the first match wins (Webex Connect's "forward to"
rules). Every rule that did not match says why, so the operator's "which rule would match?" tester
and the logs can explain a routing decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from connector.config.model import DefaultRule, Rule, RuleAction
from connector.flows import language

PHONE_CHANNELS = frozenset({"sms", "whatsapp"})
"""Channels whose customer address is a phone number (its country is a language guess)."""


@dataclass(frozen=True)
class Probe:
    """What a rule is matched against."""

    channel: str
    event: str
    asset: str
    text: str | None
    today: date
    language: str | None = None
    """The customer's language (`customer_language`); computed only when a rule tests it."""


@dataclass(frozen=True)
class Miss:
    rule: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """The winning rule (None: no rule and no default), and why each earlier rule did not match."""

    rule: str | None
    action: RuleAction | None
    misses: tuple[Miss, ...]
    by_default: bool = False


def sms_keyword(text: str | None) -> str:
    """The SMS keyword is the first word of the body, compared case-insensitively."""
    words = (text or "").split()
    return words[0].casefold() if words else ""


def why_not(rule: Rule, probe: Probe) -> str | None:
    """None if the rule matches the probe, else the first reason it does not."""
    if rule.status != "active":
        return "rule is inactive"
    if rule.channel != probe.channel:
        return f"channel is {probe.channel}, rule wants {rule.channel}"
    if rule.event != probe.event:
        return f"event is {probe.event}, rule wants {rule.event}"
    if rule.asset != probe.asset:
        return f"asset is {probe.asset}, rule wants {rule.asset}"
    if rule.start is not None and probe.today < rule.start:
        return f"rule starts on {rule.start.isoformat()}"
    if rule.end is not None and probe.today > rule.end:
        return f"rule ended on {rule.end.isoformat()}"
    if rule.keyword is not None and sms_keyword(probe.text) != rule.keyword.casefold():
        return f"first word is not {rule.keyword!r}"
    if rule.language is not None and probe.language != rule.language:
        return f"language is {probe.language or 'unknown'}, rule wants {rule.language}"
    return None


def customer_language(text: str | None, details: Mapping[str, Any], channel: str, customer: str) -> str | None:
    """The language a rule's `language:` is tested against: the first message's, detected when the
    text says it clearly, else the channel's locale (`details.locale`), else the country of the
    customer's number on SMS and WhatsApp (connector/flows/language.py)."""
    locale = details.get("locale")
    return language.customer_language(
        [text or ""],
        channel_locale=locale if isinstance(locale, str) else None,
        phone=customer if channel in PHONE_CHANNELS else None,
    )


def needs_language(rules: Sequence[Rule]) -> bool:
    """Whether any rule tests the language: only then is the first message's language detected."""
    return any(rule.language is not None for rule in rules)


def match(rules: Sequence[Rule], probe: Probe, default: DefaultRule | None = None) -> Decision:
    misses: list[Miss] = []
    for rule in rules:
        reason = why_not(rule, probe)
        if reason is None:
            return Decision(rule=rule.name, action=rule.action, misses=tuple(misses))
        misses.append(Miss(rule.name, reason))
    if default is not None:
        return Decision(rule=default.name, action=default.action, misses=tuple(misses), by_default=True)
    return Decision(rule=None, action=None, misses=tuple(misses))
