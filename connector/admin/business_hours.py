"""An entry point's business hours in the operator UI: the `hours:` calendar as the YAML text its form
edits, and the readable week, holidays and "open now" / "opens ..." line its page shows.

The text is only parsed here (with the flow editor's YAML-field helper); the calendar itself is
validated by the config store with CALENDAR_SCHEMA, so the form, the API and check-config give the
same messages. The page decides open or closed with `is_open` / `next_opening`, as the `hours` step
does, so what an operator reads is what a customer gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import ValidationError

from connector.flows.hours import Calendar, dump_calendar, is_open, load_calendar, next_opening
from connector.operations.flows import parse_yaml_field, to_yaml

FIELD = "hours"
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
"""`Calendar.weekly`'s order (hours.WEEKDAYS)."""


def calendar_text(raw: Any) -> str:
    """The stored `hours:` mapping as the form shows it, empty for none: in the documented order
    (time_zone, weekly from mon, holidays by date), since the store keeps its keys sorted."""
    if not raw:
        return ""
    try:
        shape = dump_calendar(load_calendar(raw))
    except ValidationError:  # the store validated it; shown as stored all the same if that changes
        return to_yaml(raw)
    if not shape["holidays"]:
        del shape["holidays"]
    return to_yaml(shape)


def calendar_from_text(text: str, errors: dict[str, list[str]]) -> Any:
    """The calendar's raw mapping from the form's text, None for an empty text (no calendar) or one that
    cannot be read: then the reason is under `hours` in `errors`. Its content is left to the store."""
    parsed = parse_yaml_field(text, FIELD, errors)
    if parsed is not None and not isinstance(parsed, dict):
        errors.setdefault(FIELD, []).append(
            "write the calendar as a YAML mapping with time_zone, weekly and holidays (or leave it empty)"
        )
        return None
    return parsed


@dataclass(frozen=True)
class DayHours:
    day: str
    windows: tuple[str, ...]
    """`09:00-13:00`, ...; empty: closed."""


@dataclass(frozen=True)
class HolidayHours:
    date: str
    name: str | None
    windows: tuple[str, ...]
    """Empty: closed all day."""


@dataclass(frozen=True)
class HoursView:
    time_zone: str
    week: tuple[DayHours, ...]
    holidays: tuple[HolidayHours, ...]
    open_now: bool
    next_opening: str | None
    """When it opens next, on the calendar's own clock (`Mon 2026-03-02 09:00`); None when open now or never again."""


def view(calendar: Calendar, now: datetime) -> HoursView:
    """What the entry point's page shows of `calendar` at the instant `now` (aware)."""
    week = tuple(
        DayHours(name, tuple(str(w) for w in windows)) for name, windows in zip(DAY_NAMES, calendar.weekly, strict=True)
    )
    holidays = tuple(
        HolidayHours(h.date.isoformat(), h.name, tuple(str(w) for w in h.windows))
        for h in sorted(calendar.holidays.values(), key=lambda h: h.date)
    )
    opened = is_open(calendar, now)
    upcoming = None if opened else next_opening(calendar, now)
    shown = upcoming.strftime("%a %Y-%m-%d %H:%M") if upcoming is not None else None
    return HoursView(calendar.time_zone, week, holidays, opened, shown)
