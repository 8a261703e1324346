"""What the operator's rules page and the rules API share: the rules in evaluation order, moving one,
and the "which rule would this message match?" tester.

Invariants:
- The list is `Config.rules` exactly as the drain evaluates it (the stored order, provisioned and
  UI rules alike), then the default rule, which is always last and cannot be moved.
- The tester calls `connector.rules.match`, the function the drain calls, with the event the
  channel itself names (`Channel.message_event`): it cannot disagree with real routing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from connector import rules as matching
from connector.channels import channel_class
from connector.config import model, raw
from connector.config.overrides import ConfigInvalid, NotFound
from connector.config.schemas import CHANNELS


@dataclass(frozen=True)
class RuleRow:
    """One line of the rules list: where the rule stands and what it says (as the YAML writes it)."""

    position: int
    """1-based place in evaluation order."""
    name: str
    fields: dict[str, Any]
    """The rule's raw mapping (the default rule: only `name` and `action`)."""
    source: str | None
    """The provisioning file that defines it, None for a rule made in the UI or API."""
    is_default: bool = False

    @property
    def editable(self) -> bool:
        return self.source is None and not self.is_default

    @property
    def movable(self) -> bool:
        return not self.is_default


def listing(config: model.Config) -> list[RuleRow]:
    """Every rule in evaluation order, the default rule (if any) last."""
    rows = [
        RuleRow(position=i, name=rule.name, fields=raw.rule(rule), source=rule.source)
        for i, rule in enumerate(config.rules, start=1)
    ]
    default = config.default_rule
    if default is not None:
        fields = {
            "name": default.name,
            "action": {"forward_to": default.action.forward_to, "entry_point": default.action.entry_point},
        }
        rows.append(
            RuleRow(
                position=len(rows) + 1,
                name=default.name,
                fields=fields,
                source=default.source or "a provisioned file",
                is_default=True,
            )
        )
    return rows


def moved(config: model.Config, name: str, offset: int) -> list[str]:
    """The rule names in order with `name` moved `offset` places (negative: earlier), clamped to the
    list; what `ConfigOverrides.set_rule_order` then stores."""
    names = [rule.name for rule in config.rules]
    if name not in names:
        if config.default_rule is not None and config.default_rule.name == name:
            raise ConfigInvalid({"order": ["the default rule is always evaluated last and cannot be moved"]})
        raise NotFound(f"no rule named {name!r}")
    index = names.index(name)
    names.pop(index)
    names.insert(max(0, min(len(names), index + offset)), name)
    return names


# -- the tester -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What one rule made of the test message."""

    position: int
    rule: str
    outcome: str
    """"matched", "missed", "not reached" (an earlier rule won) or "default" (the default rule took it)."""
    reason: str | None = None


@dataclass(frozen=True)
class TesterAnswer:
    channel: str
    event: str
    asset: str
    text: str
    day: date
    rule: str | None
    forward_to: str | None
    entry_point: str | None
    by_default: bool
    verdicts: tuple[Verdict, ...]
    language: str | None = None
    """The customer's language the rules' `language:` were tested against (None: unknown, or no
    rule tests it)."""
    language_source: str | None = None
    """"given" (the tester's language field) or "detected" (from the text); None when not needed."""

    @property
    def summary(self) -> str:
        """The answer in one sentence an operator can act on."""
        if self.rule is None:
            return (
                "No rule matches and there is no default rule: the message would not be routed "
                "(it is counted as unrouted on the overview). Add a rule for this channel and asset."
            )
        target = f"{self.forward_to} / {self.entry_point}"
        if self.by_default:
            return f"No rule matches; the default rule {self.rule!r} forwards it to {target}."
        return f"Rule {self.rule!r} matches: the message is forwarded to {target}."


def which_rule(
    config: model.Config, channel: str, asset: str, text: str, day: date, language: str | None = None
) -> TesterAnswer:
    """Which rule would route a customer message (`text` on `channel` to `asset`, on `day`), and why
    each earlier rule did not. Raises ConfigInvalid naming `channel` or `asset` when unknown.
    `language` stands for what the drain would also know (the channel's locale, the phone's
    country); without it, rules with `language:` are tested against the text's detected language."""
    cls = channel_class(channel)
    if cls is None:
        raise ConfigInvalid({"channel": [f"use one of {', '.join(CHANNELS)}"]})
    if config.asset(channel, asset) is None:
        known = sorted(a.name for a in config.assets if a.channel == channel)
        hint = f"use one of {', '.join(known)}" if known else f"there is no {channel} asset yet: add one under Assets"
        raise ConfigInvalid({"asset": [f"no {channel} asset named {asset!r}: {hint}"]})
    source = None
    if language:
        source = "given"
    elif matching.needs_language(config.rules):
        language, source = matching.customer_language(text, {}, channel, ""), "detected"
    probe = matching.Probe(
        channel=channel, event=cls.message_event, asset=asset, text=text, today=day, language=language or None
    )
    decision = matching.match(config.rules, probe, config.default_rule)
    reasons = {miss.rule: miss.reason for miss in decision.misses}
    verdicts: list[Verdict] = []
    for position, rule in enumerate(config.rules, start=1):
        if rule.name in reasons:
            verdicts.append(Verdict(position, rule.name, "missed", reasons[rule.name]))
        elif rule.name == decision.rule and not decision.by_default:
            verdicts.append(Verdict(position, rule.name, "matched"))
        else:
            verdicts.append(Verdict(position, rule.name, "not reached", f"rule {decision.rule!r} matched first"))
    if config.default_rule is not None:
        outcome = "default" if decision.by_default else "not reached"
        reason = None if decision.by_default else f"rule {decision.rule!r} matched first"
        verdicts.append(Verdict(len(verdicts) + 1, config.default_rule.name, outcome, reason))
    action = decision.action
    return TesterAnswer(
        channel=channel,
        event=cls.message_event,
        asset=asset,
        text=text,
        day=day,
        rule=decision.rule,
        forward_to=action.forward_to if action else None,
        entry_point=action.entry_point if action else None,
        by_default=decision.by_default,
        verdicts=tuple(verdicts),
        language=language or None,
        language_source=source,
    )
