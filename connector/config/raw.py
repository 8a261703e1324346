"""Model items back to the raw YAML shape: for showing provisioned items, the API and exports.

The inverse of the schemas' load for every field an operator can write; defaults are kept (an
export states what is in effect). Secrets come out as they are in the model: callers mask them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from typing import Any

from connector.config import model
from connector.flows.definition import Flow
from connector.flows.hours import dump_calendar


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return _plain_dict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _plain_dict(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in data.items()}


def integration(item: model.Integration) -> dict[str, Any]:
    data = asdict(item)
    data.pop("source", None)
    data["callback_auth"] = {k: v for k, v in data["callback_auth"].items() if v is not None}
    for ep, entry_point in zip(data["entry_points"], item.entry_points, strict=True):
        ep["hours"] = dump_calendar(entry_point.hours) if entry_point.hours else None
        if ep["hours"] is None:
            ep.pop("hours")
        localized = ep.pop("locale_messages")
        ep["messages"] = {**ep["messages"], **localized}
        for optional in ("queue_status_after_seconds", "queue_status_interval_seconds"):
            if ep[optional] is None:
                ep.pop(optional)
    for optional in ("version", "client_key", "client_secret", "ca_bundle"):
        if data[optional] is None:
            data.pop(optional)
    if not data["base_url"]:
        data.pop("base_url")  # Hybrid Chat runs in the connector: it has no address
    return _plain_dict(data)


def asset(item: model.Asset) -> dict[str, Any]:
    data: dict[str, Any] = {"name": item.name, "channel": item.channel}
    if item.default_locale:
        data["default_locale"] = item.default_locale
    data.update({k: v for k, v in item.options.items() if v is not None})
    return _plain_dict(data)


def rule(item: model.Rule) -> dict[str, Any]:
    data = asdict(item)
    data.pop("source", None)
    for optional in ("keyword", "start", "end", "language"):
        if data[optional] is None:
            data.pop(optional)
    return _plain_dict(data)


def flow(item: Flow) -> dict[str, Any]:
    """Any kind of step (each a dataclass) and block (`survey`) the same way: a field left unset (None)
    is left out, so the shape loads back through its schema whatever kinds there are."""
    data = asdict(item)
    data.pop("source", None)
    # A kind whose model differs from its YAML (a branch's conditions, a calendar) says its own shape.
    data["steps"] = [s.raw() if hasattr(s, "raw") else d for s, d in zip(item.steps, data["steps"], strict=True)]
    shape: dict[str, Any] = _without_none(_plain_dict(data))
    return shape


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


BY_KIND: dict[str, Callable[[Any], dict[str, Any]]] = {
    "integrations": integration,
    "assets": asset,
    "rules": rule,
    "flows": flow,
}


def of(kind: str, item: Any) -> dict[str, Any]:
    return BY_KIND[kind](item)
