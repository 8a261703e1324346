"""check-config for where flows send conversations: each `branch` names an entry point of every
integration whose conversations run the flow, and each `hours` step without a calendar of its own
finds one on every entry point the conversation may be going to when the step runs."""

from __future__ import annotations

from collections.abc import Iterator

from connector.config.model import Config, Integration
from connector.flows.definition import BranchStep, Flow, HoursStep


def route_problems(config: Config) -> Iterator[tuple[Flow, str, str]]:
    """(flow, dotted field, message) for each problem."""
    for flow in config.flows:
        starts = _starts(config, flow)
        reachable = {(integration.name, entry_point) for integration, entry_point in starts}
        integrations = {integration.name: integration for integration, _ in starts}
        for index, step in enumerate(flow.steps):
            if isinstance(step, BranchStep):
                for number, branch in enumerate(step.branches):
                    for integration in integrations.values():
                        if integration.entry_point(branch.entry_point) is None:
                            field = f"steps.{index}.branch.{number}.entry_point"
                            message = (
                                f"integration {integration.name!r} has no entry point named {branch.entry_point!r}"
                            )
                            yield flow, field, message
                        else:
                            reachable.add((integration.name, branch.entry_point))
            elif isinstance(step, HoursStep) and step.calendar is None:
                for integration_name, entry_point in sorted(reachable):
                    found = integrations[integration_name].entry_point(entry_point)
                    if found is not None and found.hours is None:
                        message = (
                            f"entry point {entry_point!r} of {integration_name!r} has no hours: "
                            "give it hours: or give this step a calendar:"
                        )
                        yield flow, f"steps.{index}.calendar", message


def _starts(config: Config, flow: Flow) -> list[tuple[Integration, str]]:
    """(integration, entry point) where conversations that run `flow` begin: rules (and the default
    rule) whose action runs it, and entry points that name it."""
    found: list[tuple[Integration, str]] = []
    actions = [rule.action for rule in config.rules]
    if config.default_rule is not None:
        actions.append(config.default_rule.action)
    for action in actions:
        integration = config.integration(action.forward_to)
        chosen = config.flow_for(action)
        if integration is not None and chosen is not None and chosen.name == flow.name:
            found.append((integration, action.entry_point))
    for integration in config.integrations:
        found += [(integration, ep.name) for ep in integration.entry_points if ep.flow == flow.name]
    unique: dict[tuple[str, str], tuple[Integration, str]] = {}
    for integration, entry_point in found:
        unique.setdefault((integration.name, entry_point), (integration, entry_point))
    return list(unique.values())
