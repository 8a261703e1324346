"""Business hours and holidays: the calendar an `hours` step checks, its YAML shape, and the two
questions the step asks of it (is it open at this instant; when does it open next).

Hours are wall-clock times in the calendar's time zone: the calendar is open at an instant when the
clock there shows a time inside one of that day's windows. DST then needs no special case and means
what a sign on a door means: on the night clocks go forward, a window inside the skipped hour never
opens and one across it is an hour shorter; on the night they go back, a time in the repeated hour
is inside a window both times the clock shows it.

A window whose end is before its start runs past midnight and belongs to the day it starts on: a
holiday replaces its own day's windows (with what they would run after midnight) and leaves the
previous day's overnight window alone.

Hand-written: the scheduling packages on PyPI compute business durations (businesstimedelta,
business-duration) or parse OpenStreetMap strings; none answers "open now / opens when" by wall
clock across DST, and this is a hundred lines on the standard library's zoneinfo.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The keys of `weekly:`, in `date.weekday()` order."""
_DAY = 24 * 60
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d\d)\s*-\s*(\d{1,2}):(\d\d)\s*$")


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, order=True)
class Window:
    """One opening of a day, in minutes after its midnight: `start` 0..1439, `end` 0..1440 (24:00),
    never equal to `start`; an `end` before `start` is on the next day."""

    start: int
    end: int

    @property
    def overnight(self) -> bool:
        return self.end < self.start

    def span(self, day: date) -> tuple[datetime, datetime]:
        """Naive wall-clock [opens, closes) of this window on `day`."""
        midnight = datetime(day.year, day.month, day.day)
        closes = self.end + (_DAY if self.overnight else 0)
        return midnight + timedelta(minutes=self.start), midnight + timedelta(minutes=closes)

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


@dataclass(frozen=True)
class Holiday:
    date: date
    windows: tuple[Window, ...] = ()
    """Empty: closed all day."""
    name: str | None = None


@dataclass(frozen=True)
class Calendar:
    time_zone: str
    """An IANA name (Europe/Madrid), checked when the calendar loads."""
    weekly: tuple[tuple[Window, ...], ...]
    """Seven days, Monday first; an empty day is closed."""
    holidays: Mapping[date, Holiday]

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)  # ZoneInfo caches one instance per name

    def windows_on(self, day: date) -> tuple[Window, ...]:
        """A holiday's windows replace the weekday's."""
        holiday = self.holidays.get(day)
        return holiday.windows if holiday is not None else self.weekly[day.weekday()]


# -- decisions ------------------------------------------------------------------------------------


def is_open(calendar: Calendar, at: datetime) -> bool:
    """Whether the clock in the calendar's zone shows, at the instant `at`, a time in an open window
    (the day's own, or the previous day's that runs past midnight)."""
    wall = _wall(calendar, at)
    spans = _spans(calendar, wall.date() - timedelta(days=1), wall.date())
    return any(opens <= wall < closes for opens, closes in spans)


def next_opening(calendar: Calendar, at: datetime) -> datetime | None:
    """The first instant from `at` on when the calendar is open (`at` itself when open then); None when
    it never opens again: no weekly hours and no holiday with hours ahead.

    It comes in the calendar's zone, to show to a customer. Compare it in UTC: Python never finds a time
    in a repeated hour equal to one in another zone (PEP 495), and arithmetic in one zone is wall-clock.

    The calendar can only become open where its wall clock reaches a window's start or jumps (a DST
    change can jump into a window: Madrid's 02:00 becomes 03:00), so those instants are the only
    candidates, tried in order day by day. Past the last holiday the week repeats, so eight more days
    are enough to find one."""
    zone = calendar.zone
    if is_open(calendar, at):
        return at.astimezone(zone)
    first = _wall(calendar, at).date()
    last = max([first, *calendar.holidays]) + timedelta(days=8)
    pending: list[datetime] = []
    for day in _days(first, last):
        pending = sorted([*pending, *(c for c in _candidates(calendar, day) if c > at)])
        tomorrow = _earliest(zone, day + timedelta(days=1))  # no later day's candidate comes before it
        while pending and pending[0] < tomorrow:
            candidate = pending.pop(0)
            if is_open(calendar, candidate):
                return candidate.astimezone(zone)
    return next((c.astimezone(zone) for c in pending if is_open(calendar, c)), None)


def _wall(calendar: Calendar, at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at.isoformat()} has no time zone: pass an aware datetime (UTC is fine)")
    return at.astimezone(calendar.zone).replace(tzinfo=None)


def _earliest(zone: zoneinfo.ZoneInfo, day: date) -> datetime:
    """The first UTC instant whose wall clock may show `day` (before a jump that skips its midnight)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    return min(midnight.astimezone(UTC), midnight.replace(fold=1).astimezone(UTC))


def _days(first: date, last: date) -> Iterator[date]:
    for n in range((last - first).days + 1):
        yield first + timedelta(days=n)


def _spans(calendar: Calendar, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    for day in _days(first, last):
        for window in calendar.windows_on(day):
            yield window.span(day)


def _candidates(calendar: Calendar, day: date) -> Iterator[datetime]:
    """UTC instants on `day` where the calendar may open: each window's start, both times when the
    clock shows it twice and never when it skips it, and the day's DST change."""
    zone = calendar.zone
    for window in calendar.windows_on(day):
        opens, _ = window.span(day)
        for fold in (0, 1):
            instant = opens.replace(tzinfo=zone, fold=fold).astimezone(UTC)
            if instant.astimezone(zone).replace(tzinfo=None) == opens:  # else it falls in a skipped hour
                yield instant
    change = _offset_change(zone, day)
    if change is not None:
        yield change


def _offset_change(zone: zoneinfo.ZoneInfo, day: date) -> datetime | None:
    """The UTC instant `day`'s offset changes (the first second with the new one), found by bisection:
    zoneinfo does not expose its transitions."""
    lo = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    hi = (datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(days=1)).astimezone(UTC)
    if lo.astimezone(zone).utcoffset() == hi.astimezone(zone).utcoffset():
        return None
    after = hi.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


# -- the YAML shape -------------------------------------------------------------------------------


class WindowField(fields.Field[Window]):
    """`"09:00-18:00"`; `24:00` may end a window; an end before the start runs past midnight."""

    default_error_messages = {"invalid": "must be a window like 09:00-18:00"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Window:
        match = _WINDOW.match(value) if isinstance(value, str) else None
        if match is None:
            raise self.make_error("invalid")
        start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
        start, end = start_h * 60 + start_m, end_h * 60 + end_m
        for hours, minutes in ((start_h, start_m), (end_h, end_m)):
            if hours > 24 or minutes > 59 or (hours == 24 and minutes):
                time = f"{hours:02d}:{minutes:02d}"
                raise ValidationError(f"{time} is not a time: use 00:00 to 23:59, or 24:00 as an end")
        if start == _DAY:
            raise ValidationError("24:00 can only end a window: start the next day at 00:00")
        if start == end:
            raise ValidationError(f"opens and closes at {_clock(start)}: for all day write 00:00-24:00")
        return Window(start, end)

    def _serialize(self, value: Window | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(value)


def _reversed_hint(window: Window) -> str:
    return f" (if {window} is reversed, write {Window(window.end, window.start)})" if window.overnight else ""


def _no_overlap(windows: list[Window]) -> None:
    """Overlapping windows in one day are a typo, not a union to compute."""
    ordered = sorted(windows)
    for before, after in itertools.pairwise(ordered):
        before_end = before.end + (_DAY if before.overnight else 0)
        if after.start < before_end:
            raise ValidationError(f"{before} and {after} overlap{_reversed_hint(before)}")


def _day_field() -> fields.List[Window]:
    return fields.List(WindowField(), load_default=list, validate=_no_overlap)


class WeeklySchema(Schema):
    class Meta:
        unknown = RAISE

    mon = _day_field()
    tue = _day_field()
    wed = _day_field()
    thu = _day_field()
    fri = _day_field()
    sat = _day_field()
    sun = _day_field()

    @validates_schema(skip_on_field_errors=False)
    def past_midnight(self, data: dict[str, Any], **_: Any) -> None:
        """A window past midnight must end before the next day's first window: a reversed
        `18:00-09:00` usually runs into the next morning and is caught here."""
        errors: dict[str, list[str]] = {}
        for index, day in enumerate(WEEKDAYS):
            following = WEEKDAYS[(index + 1) % 7]
            for window in (w for w in data.get(day) or [] if w.overnight):
                clash = [w for w in data.get(following) or [] if w.start < window.end]
                if clash:
                    message = f"{window} runs past midnight into {following}'s {clash[0]}{_reversed_hint(window)}"
                    errors.setdefault(day, []).append(message)
        if errors:
            raise ValidationError(errors)


def _a_day(value: date) -> None:
    if isinstance(value, datetime):  # YAML reads `2026-12-25 10:00` as a datetime
        raise ValidationError("a holiday is a whole day: write the date alone, like 2026-12-25")


class _Day(fields.Date):
    """A date that also dumps the YAML shape's text (`dump_calendar`'s "2026-12-25"), as the API's
    answers do when they show a stored calendar."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value if isinstance(value, str) else super()._serialize(value, attr, obj, **kwargs)


class HolidaySchema(Schema):
    class Meta:
        unknown = RAISE

    date = _Day(required=True, validate=_a_day)
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    hours = _day_field()

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Holiday:
        return Holiday(date=data["date"], windows=tuple(sorted(data["hours"])), name=data["name"])


@functools.cache
def _zone_names() -> frozenset[str]:
    """IANA names, less the files that stand for this machine's own zone."""
    return frozenset(zoneinfo.available_timezones() - {"localtime", "posixrules"})


def _known_zone(name: str) -> None:
    if name in _zone_names():
        return
    by_case = {zone.casefold(): zone for zone in _zone_names()}
    close = [by_case[n] for n in difflib.get_close_matches(name.casefold(), by_case, n=1)]
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ValidationError(f"unknown time zone {name!r}: use an IANA name like Europe/Madrid{hint}")


class CalendarSchema(Schema):
    """`time_zone`, `weekly` (weekday → windows; an absent day is closed) and `holidays` (dates
    closed all day, or open only in their own `hours`)."""

    class Meta:
        unknown = RAISE

    time_zone = fields.String(required=True, validate=_known_zone)
    weekly = fields.Nested(WeeklySchema, required=True)
    holidays = fields.List(fields.Nested(HolidaySchema), load_default=list)

    @validates_schema(skip_on_field_errors=False)
    def one_entry_per_date(self, data: dict[str, Any], **_: Any) -> None:
        seen: set[date] = set()
        errors: dict[int, dict[str, list[str]]] = {}
        for index, holiday in enumerate(data.get("holidays") or []):
            if not isinstance(holiday, Holiday):
                continue  # it failed to load: its own errors say why
            if holiday.date in seen:
                errors[index] = {"date": [f"{holiday.date.isoformat()} is listed twice: keep one entry per date"]}
            seen.add(holiday.date)
        if errors:
            raise ValidationError({"holidays": errors})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> Calendar:
        weekly = tuple(tuple(sorted(data["weekly"].get(day, []))) for day in WEEKDAYS)
        holidays = {holiday.date: holiday for holiday in data["holidays"]}
        return Calendar(time_zone=data["time_zone"], weekly=weekly, holidays=holidays)


CALENDAR_SCHEMA = CalendarSchema


def load_calendar(data: Any) -> Calendar:
    """Validate the YAML shape; raises ValidationError naming every bad field at once."""
    calendar: Calendar = CALENDAR_SCHEMA().load(data)
    return calendar


def dump_calendar(calendar: Calendar) -> dict[str, Any]:
    """The YAML shape back (closed days and closed-all-day holidays' hours left out): the inverse of
    `load_calendar`, for exports and the editor."""
    holidays: list[dict[str, Any]] = []
    for holiday in sorted(calendar.holidays.values(), key=lambda h: h.date):
        entry: dict[str, Any] = {"date": holiday.date.isoformat()}
        if holiday.name:
            entry["name"] = holiday.name
        if holiday.windows:
            entry["hours"] = [str(w) for w in holiday.windows]
        holidays.append(entry)
    weekly = {day: [str(w) for w in windows] for day, windows in zip(WEEKDAYS, calendar.weekly, strict=True) if windows}
    return {"time_zone": calendar.time_zone, "weekly": weekly, "holidays": holidays}
