"""The documented context of a system-message template (message_templates/README.md lists it).

A template only ever sees plain dicts of str / int / None (one level of nesting for the customer's
channel details): no live objects, so the sandbox has no methods or attributes to reach through,
and a preview renders exactly what the relay would send.
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time, get_datetime_format

from connector.config.model import EntryPoint
from connector.config.schemas import MESSAGE_TYPES

Plain = str | int | None


@dataclass(frozen=True)
class MessageContext:
    """What a template may use; the parts that do not apply to an event are None.

    customer: {"name", "locale", "channel", "address", "details": {...}} (the customer's own address
    and the channel's details: profile name, PSID, wa_id, ...); agent: {"id", "name"};
    entry_point: {"name", "id"}; queue: {"position", "position_estimate", "depth", "wait_seconds", "wait_minutes"};
    transfer: {"type": "queue" | "agent", "name"}; attachment: {"name"};
    hours: {"next_opening", "next_opening_iso", "time_zone"} (`out_of_hours`, `hours_context`).
    """

    customer: Mapping[str, Any] = field(default_factory=dict)
    agent: Mapping[str, Any] | None = None
    entry_point: Mapping[str, Any] = field(default_factory=dict)
    queue: Mapping[str, Any] | None = None
    transfer: Mapping[str, Any] | None = None
    attachment: Mapping[str, Any] | None = None
    hours: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The template variables, every value reduced to str / int / None."""
        return {
            "customer": _plain_mapping(self.customer, nested=True),
            "agent": _plain_or_none(self.agent),
            "entry_point": _plain_mapping(self.entry_point),
            "queue": _plain_or_none(self.queue),
            "transfer": _plain_or_none(self.transfer),
            "attachment": _plain_or_none(self.attachment),
            "hours": _plain_or_none(self.hours),
        }


VARIABLES = tuple(f.name for f in fields(MessageContext))
"""The top-level names a template may use; `validate` refuses any other."""


def customer_context(
    channel: str,
    address: str,
    *,
    name: str | None = None,
    locale: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `customer` part; `details` are the channel's customer details as the channel parsed them."""
    return {"name": name, "locale": locale, "channel": channel, "address": address, "details": dict(details or {})}


def entry_point_context(entry_point: EntryPoint) -> dict[str, Any]:
    return {"name": entry_point.name, "id": entry_point.id}


def queue_context(
    position: int | None, depth: int | None, wait_seconds: float | None, *, exact: bool = True
) -> dict[str, Any]:
    """The `queue` part. `wait_minutes` rounds up (a customer told "2 minutes" should not wait 2:59)
    and is None when the contact center gave no estimate, so templates can say something else.
    A place the connector only estimates (ECE reports none: the connector counts the conversations
    it queued itself) is `position_estimate`, never `position`, so a template can say "about"."""
    seconds = None if wait_seconds is None or wait_seconds < 0 else math.ceil(wait_seconds)
    minutes = None if seconds is None else max(1, math.ceil(seconds / 60))
    return {
        "position": position if exact else None,
        "position_estimate": None if exact else position,
        "depth": depth,
        "wait_seconds": seconds,
        "wait_minutes": minutes,
    }


def hours_context(next_opening: str | None, time_zone: str | None, locale: str) -> dict[str, Any]:
    """The `hours` part of `out_of_hours`: the calendar's next opening (an ISO 8601 instant) shown on
    the calendar's wall clock (`time_zone`) in the customer's `locale` by Babel's CLDR patterns, e.g.
    "Mon, Dec 7, 9:00 AM" (en) or "lun, 7 de diciembre, 9:00" (es); None when it never opens again."""
    shown: str | None = None
    if next_opening:
        at = datetime.fromisoformat(next_opening)
        if time_zone:
            at = at.astimezone(zoneinfo.ZoneInfo(time_zone))
        try:
            where = Locale.parse(locale or "en")
        except (ValueError, UnknownLocaleError):
            where = Locale.parse("en")
        day = format_skeleton("MMMMEEEEd", at, locale=where)
        clock = format_time(at, "short", tzinfo=at.tzinfo, locale=where)
        shown = str(get_datetime_format("medium", locale=where)).replace("{1}", day).replace("{0}", clock)
        # CLDR puts (narrow) no-break spaces before "AM": plain spaces keep an SMS in its 7-bit alphabet.
        shown = shown.replace("\u202f", " ").replace("\u00a0", " ")
    return {"next_opening": shown, "next_opening_iso": next_opening, "time_zone": time_zone}


def sample_context(message_type: str) -> MessageContext:
    """A realistic context for `message_type`, for template previews and tests; only the parts the
    relay fills for that event are set, so a preview shows what a missing part looks like."""
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {message_type!r}: use one of {', '.join(MESSAGE_TYPES)}")
    customer = customer_context(
        "messenger",
        "6024417683491234",
        name="Alex Morgan",
        locale="en_US",
        details={"profile_name": "Alex Morgan", "psid": "6024417683491234"},
    )
    parts: dict[str, Any] = {"customer": customer, "entry_point": {"name": "Support", "id": "1001"}}
    if message_type in {
        "agent_assigned",
        "agent_closed",
        "customer_inactive",
        "attachment_accepted",
        "attachment_rejected",
    }:
        parts["agent"] = {"id": "1005", "name": "CiscoAgent1"}
    if message_type in {"attachment_accepted", "attachment_rejected"}:
        parts["attachment"] = {"name": "invoice-2291.pdf"}
    if message_type == "transfer_queue":
        parts["agent"] = {"id": "1005", "name": "CiscoAgent1"}
        parts["transfer"] = {"type": "queue", "name": "Network Issues"}
    if message_type == "transfer_agent":
        parts["agent"] = {"id": "1005", "name": "CiscoAgent1"}
        parts["transfer"] = {"type": "agent", "name": "CiscoAgent2"}
    if message_type == "queue_status":
        parts["queue"] = queue_context(position=3, depth=7, wait_seconds=250)
    if message_type == "out_of_hours":
        parts["hours"] = hours_context("2026-12-07T09:00:00+01:00", "Europe/Madrid", "en_US")
    return MessageContext(**parts)


def _plain(value: Any) -> Plain:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value) if math.isfinite(value) else None
    return str(value)


def _plain_mapping(values: Mapping[str, Any] | None, *, nested: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if nested and isinstance(value, Mapping):
            out[str(key)] = _plain_mapping(value)
        else:
            out[str(key)] = _plain(value)
    return out


def _plain_or_none(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if values is None else _plain_mapping(values)
