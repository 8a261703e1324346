"""What the start of a conversation tells the contact center about the customer: customer attributes
from the channel details, and the integration's custom attribute mappings (ECE's customer and custom
attributes; the details Hybrid Chat shows the agent).

A mapping is `{name: "$(fb.username)", value: "$(messenger.username)"}` (Webex Connect's style).
The name's expression is the attribute, sent without its `$( )` wrapper (`fb.username`). The
value is text in which each `$(<channel>.<field>)` is replaced by that field of the customer's
channel details when the conversation is on that channel, and `$(customer.<field>)` on any
channel. A mapping none of whose expressions has a value is left out, so a Messenger-only
attribute is simply absent on SMS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connector.config.model import CustomAttribute
from connector.store.threads import Thread

_EXPRESSION = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_.]*)\)")
_NAME = re.compile(r"^\$\((.+)\)$")
_VALUE_LIMIT = 500


def customer_attributes(thread: Thread) -> dict[str, str]:
    """The channel's customer details as flat attributes, plus the channel and the address."""
    attributes = {"channel": thread.channel, "asset": thread.asset, "address": thread.customer}
    for name, value in sorted(thread.details.items()):
        if isinstance(value, str | int | float | bool) and value != "":
            attributes[name] = str(value)[:_VALUE_LIMIT]
        elif isinstance(value, list | tuple) and value:
            attributes[name] = ",".join(str(v) for v in value)[:_VALUE_LIMIT]
    return attributes


def custom_attributes(mappings: tuple[CustomAttribute, ...], thread: Thread) -> dict[str, str]:
    """The integration's mappings evaluated for `thread`, then the answers its flow collected
    (`thread.attributes`, e.g. `order_number`), which win: they are this conversation's own."""
    result: dict[str, str] = {}
    for mapping in mappings:
        value, filled = evaluate(mapping.value, thread.channel, thread.details)
        if value.strip() and (filled or not _EXPRESSION.search(mapping.value)):
            result[attribute_name(mapping.name)] = value.strip()[:_VALUE_LIMIT]
    result.update({name: str(value)[:_VALUE_LIMIT] for name, value in thread.attributes.items()})
    return result


def attribute_name(expression: str) -> str:
    match = _NAME.match(expression)
    return match.group(1) if match else expression


def evaluate(template: str, channel: str, details: Mapping[str, Any]) -> tuple[str, bool]:
    """The template with its expressions replaced, and whether any expression had a value."""
    filled = False

    def replace(match: re.Match[str]) -> str:
        nonlocal filled
        scope, path = match.group(1), match.group(2)
        if scope not in (channel, "customer"):
            return ""
        value: Any = details
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None or isinstance(value, Mapping) or value == "":
            return ""
        filled = True
        return str(value)

    return _EXPRESSION.sub(replace, template), filled
