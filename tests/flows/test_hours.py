"""Business-hours calendars: the YAML shape and its errors, and `is_open` / `next_opening` as tables of
instants, including the nights clocks change in Europe/Madrid and America/New_York."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from connector.flows.hours import CALENDAR_SCHEMA, Calendar, dump_calendar, is_open, load_calendar, next_opening

MADRID = ZoneInfo("Europe/Madrid")
NEW_YORK = ZoneInfo("America/New_York")

# The example of docs/flows.md.
SAMPLE = yaml.safe_load(
    """
time_zone: Europe/Madrid
weekly:
  mon: ["09:00-13:00", "14:00-18:00"]
  tue: ["09:00-13:00", "14:00-18:00"]
  wed: ["09:00-13:00", "14:00-18:00"]
  thu: ["09:00-13:00", "14:00-18:00"]
  fri: ["09:00-13:00", "14:00-18:00"]
  sat: ["10:00-14:00"]
holidays:
  - {date: 2026-12-25, name: Christmas}
  - {date: 2026-12-24, hours: ["09:00-13:00"]}
"""
)


def calendar(
    weekly: dict[str, list[str]], *, time_zone: str = "Europe/Madrid", holidays: list | None = None
) -> Calendar:
    return load_calendar({"time_zone": time_zone, "weekly": weekly, "holidays": holidays or []})


def madrid(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=MADRID, fold=fold)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def errors(data: dict) -> dict:
    with pytest.raises(ValidationError) as caught:
        CALENDAR_SCHEMA().load(data)
    return caught.value.messages  # type: ignore[return-value]


# -- is_open ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (madrid(2026, 7, 6, 9, 0), True),  # Monday, opening minute
        (madrid(2026, 7, 6, 8, 59, 59), False),
        (madrid(2026, 7, 6, 13, 0), False),  # lunch: the end is not included
        (madrid(2026, 7, 6, 14, 30), True),
        (madrid(2026, 7, 6, 18, 0), False),
        (madrid(2026, 7, 11, 13, 59), True),  # Saturday
        (madrid(2026, 7, 12, 11, 0), False),  # Sunday: absent, closed
        # A UTC instant is read on Madrid's clock: 07:00Z is 09:00 in summer (+02), 08:00 in winter (+01).
        (utc(2026, 7, 6, 7, 0), True),
        (utc(2026, 7, 6, 6, 59), False),
        (utc(2026, 1, 12, 7, 30), False),
        (utc(2026, 1, 12, 8, 0), True),
        (datetime(2026, 7, 6, 3, 0, tzinfo=NEW_YORK), True),  # 03:00 in New York is 09:00 in Madrid
        # Holidays replace the weekday: Thursday Dec 24 opens only in the morning, Friday Dec 25 not at all.
        (madrid(2026, 12, 24, 10, 0), True),
        (madrid(2026, 12, 24, 15, 0), False),
        (madrid(2026, 12, 25, 10, 0), False),
        (madrid(2026, 12, 18, 10, 0), True),  # the Friday before: weekly hours
    ],
)
def test_sample_calendar(at: datetime, expected: bool) -> None:
    assert is_open(load_calendar(SAMPLE), at) is expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (madrid(2026, 7, 6, 21, 59), False),
        (madrid(2026, 7, 6, 22, 0), True),
        (madrid(2026, 7, 6, 23, 0), True),  # Monday 23:00
        (madrid(2026, 7, 7, 1, 0), True),  # Tuesday 01:00, still Monday's window
        (madrid(2026, 7, 7, 2, 0), False),
        (madrid(2026, 7, 6, 1, 0), False),  # Sunday has no window to spill into Monday
    ],
)
def test_a_window_across_midnight_runs_into_the_next_day(at: datetime, expected: bool) -> None:
    assert is_open(calendar({"mon": ["22:00-02:00"]}), at) is expected


def test_an_overnight_window_belongs_to_the_day_it_starts_on() -> None:
    monday_off = calendar({"mon": ["22:00-02:00"]}, holidays=[{"date": date(2026, 7, 6)}])
    tuesday_off = calendar({"mon": ["22:00-02:00"]}, holidays=[{"date": date(2026, 7, 7)}])
    assert not is_open(monday_off, madrid(2026, 7, 7, 1, 0))
    assert is_open(tuesday_off, madrid(2026, 7, 7, 1, 0))
    assert not is_open(tuesday_off, madrid(2026, 7, 7, 22, 30))


def test_24_00_ends_a_window_at_midnight() -> None:
    evening = calendar({"mon": ["18:00-24:00"]})
    assert is_open(evening, madrid(2026, 7, 6, 23, 59, 59))
    assert not is_open(evening, madrid(2026, 7, 7, 0, 0))
    all_day = calendar({"mon": ["00:00-24:00"], "tue": ["00:00-24:00"]})
    assert all(is_open(all_day, madrid(2026, 7, 6) + timedelta(minutes=m)) for m in range(0, 2 * 24 * 60, 7))
    assert not is_open(all_day, madrid(2026, 7, 8, 0, 0))


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        is_open(load_calendar(SAMPLE), datetime(2026, 7, 6, 10, 0))


# -- DST: what the clock on the wall shows -----------------------------------------------------------
# Madrid: 2026-03-29 02:00 CET becomes 03:00 CEST (01:00Z); 2026-10-25 03:00 CEST becomes 02:00 CET (01:00Z).
# New York: 2026-03-08 02:00 EST becomes 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT becomes 01:00 EST (06:00Z).


def test_madrid_spring_forward_skips_a_window_inside_the_gap() -> None:
    gap = calendar({"sun": ["02:00-03:00"]})
    assert not any(is_open(gap, utc(2026, 3, 29, 0, 0) + timedelta(minutes=m)) for m in range(120))
    assert next_opening(gap, utc(2026, 3, 28, 12, 0)) == madrid(2026, 4, 5, 2, 0)  # the next Sunday


def test_madrid_spring_forward_shortens_a_window_across_the_gap() -> None:
    across = calendar({"sun": ["01:00-05:00"]})
    assert not is_open(across, utc(2026, 3, 28, 23, 59))  # 00:59 CET
    assert is_open(across, utc(2026, 3, 29, 0, 0))  # 01:00 CET
    assert is_open(across, utc(2026, 3, 29, 0, 59))  # 01:59 CET
    assert is_open(across, utc(2026, 3, 29, 1, 0))  # 03:00 CEST
    assert is_open(across, utc(2026, 3, 29, 2, 59))  # 04:59 CEST
    assert not is_open(across, utc(2026, 3, 29, 3, 0))  # 05:00 CEST: three hours, not four


def test_madrid_spring_forward_opens_a_window_starting_in_the_gap_when_the_clock_jumps() -> None:
    late = calendar({"sun": ["02:30-06:00"]})
    opening = next_opening(late, utc(2026, 3, 28, 23, 0))
    assert opening is not None and opening.isoformat() == "2026-03-29T03:00:00+02:00"
    assert opening.astimezone(UTC) == utc(2026, 3, 29, 1, 0)
    assert not is_open(late, utc(2026, 3, 29, 0, 59, 59))  # 01:59:59 CET, the second before the jump


def test_madrid_fall_back_repeated_hour_is_open_both_times() -> None:
    repeated = calendar({"sun": ["02:00-02:30"]})
    first, second = madrid(2026, 10, 25, 2, 15), madrid(2026, 10, 25, 2, 15, fold=1)
    assert first.astimezone(UTC) == utc(2026, 10, 25, 0, 15)
    assert second.astimezone(UTC) == utc(2026, 10, 25, 1, 15)
    assert is_open(repeated, first) and is_open(repeated, second)
    assert not is_open(repeated, utc(2026, 10, 25, 0, 45))  # 02:45 CEST
    reopening = next_opening(repeated, utc(2026, 10, 25, 0, 45))
    assert reopening is not None and reopening.fold == 1 and reopening.isoformat() == "2026-10-25T02:00:00+01:00"
    assert reopening.astimezone(UTC) == utc(2026, 10, 25, 1, 0)
    # A window starting inside the repeated hour opens again the second time the clock shows its start.
    quarter = calendar({"sun": ["02:30-02:45"]})
    again = next_opening(quarter, utc(2026, 10, 25, 0, 50))  # 02:50 CEST
    assert again is not None and again.isoformat() == "2026-10-25T02:30:00+01:00"


def test_madrid_fall_back_lengthens_a_window_across_the_repeated_hour() -> None:
    night = calendar({"sat": ["22:00-04:00"]})
    assert is_open(night, utc(2026, 10, 25, 2, 59))  # 03:59 CET
    assert not is_open(night, utc(2026, 10, 25, 3, 0))  # 04:00 CET: seven hours from 22:00 CEST


def test_new_york_spring_forward() -> None:
    late = calendar({"sun": ["02:30-04:00"]}, time_zone="America/New_York")
    assert next_opening(late, datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK)) == utc(2026, 3, 8, 7, 0)  # 03:00 EDT
    assert is_open(late, utc(2026, 3, 8, 7, 59))
    assert not is_open(late, utc(2026, 3, 8, 8, 0))  # 04:00 EDT
    gap = calendar({"sun": ["02:00-03:00"]}, time_zone="America/New_York")
    assert not any(is_open(gap, utc(2026, 3, 8, 6, 0) + timedelta(minutes=m)) for m in range(120))


def test_new_york_fall_back() -> None:
    repeated = calendar({"sun": ["01:00-01:30"]}, time_zone="America/New_York")
    assert is_open(repeated, utc(2026, 11, 1, 5, 15))  # 01:15 EDT
    assert not is_open(repeated, utc(2026, 11, 1, 5, 45))  # 01:45 EDT
    assert is_open(repeated, utc(2026, 11, 1, 6, 15))  # 01:15 EST
    assert not is_open(repeated, utc(2026, 11, 1, 6, 30))  # 01:30 EST
    reopening = next_opening(repeated, utc(2026, 11, 1, 5, 45))
    assert reopening is not None and reopening.isoformat() == "2026-11-01T01:00:00-05:00"


# -- next_opening -----------------------------------------------------------------------------------


def test_next_opening_is_now_when_open() -> None:
    at = utc(2026, 7, 6, 8, 0)
    opening = next_opening(load_calendar(SAMPLE), at)
    assert opening == at and opening is not None and opening.tzinfo == MADRID


def test_next_opening_after_lunch_is_the_afternoon() -> None:
    assert next_opening(load_calendar(SAMPLE), madrid(2026, 7, 6, 13, 30)) == madrid(2026, 7, 6, 14, 0)


def test_next_opening_crosses_the_week_boundary() -> None:
    # Saturday afternoon: Sunday is closed, Monday opens at 09:00.
    assert next_opening(load_calendar(SAMPLE), madrid(2026, 7, 11, 15, 0)) == madrid(2026, 7, 13, 9, 0)
    weekly_once = calendar({"tue": ["10:00-11:00"]})
    assert next_opening(weekly_once, madrid(2026, 7, 7, 11, 0)) == madrid(2026, 7, 14, 10, 0)


def test_next_opening_skips_a_holiday() -> None:
    sample = load_calendar(SAMPLE)
    # Thursday Dec 24 after its short morning; Friday Dec 25 is closed; Saturday opens at 10:00.
    assert next_opening(sample, madrid(2026, 12, 24, 13, 0)) == madrid(2026, 12, 26, 10, 0)
    # A holiday with hours of its own opens at its own time.
    assert next_opening(sample, madrid(2026, 12, 23, 19, 0)) == madrid(2026, 12, 24, 9, 0)


def test_next_opening_finds_a_holiday_after_a_long_closure() -> None:
    only_holidays = calendar({}, holidays=[{"date": date(2027, 1, 6), "hours": ["10:00-12:00"]}])
    assert next_opening(only_holidays, madrid(2026, 7, 6, 10, 0)) == madrid(2027, 1, 6, 10, 0)
    closed_weeks = calendar(
        {"mon": ["09:00-10:00"]}, holidays=[{"date": date(2026, 7, 6) + timedelta(weeks=n)} for n in range(5)]
    )
    assert next_opening(closed_weeks, madrid(2026, 7, 1, 0, 0)) == madrid(2026, 8, 10, 9, 0)


def test_next_opening_is_none_when_the_calendar_never_opens() -> None:
    assert next_opening(calendar({}), madrid(2026, 7, 6, 10, 0)) is None
    past_only = calendar({}, holidays=[{"date": date(2026, 1, 6), "hours": ["10:00-12:00"]}])
    assert next_opening(past_only, madrid(2026, 7, 6, 10, 0)) is None
    all_closed = calendar({"mon": ["09:00-10:00"]}, holidays=[{"date": date(2026, 7, 6)}])
    assert next_opening(all_closed, madrid(2026, 7, 6, 8, 0)) == madrid(2026, 7, 13, 9, 0)


WINDOW = st.tuples(st.integers(0, 47), st.integers(1, 48)).map(
    lambda w: f"{w[0] // 2:02d}:{w[0] % 2 * 30:02d}-{w[1] // 2:02d}:{w[1] % 2 * 30:02d}"
)
INSTANTS = st.sampled_from(
    [
        utc(2026, 3, 28, 20, 0),
        utc(2026, 10, 24, 20, 0),
        utc(2026, 3, 7, 22, 0),
        utc(2026, 10, 31, 22, 0),
        utc(2026, 7, 6),
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    days=st.dictionaries(st.sampled_from(["fri", "sat", "sun", "mon"]), st.lists(WINDOW, max_size=1), max_size=4),
    zone=st.sampled_from(["Europe/Madrid", "America/New_York"]),
    start=INSTANTS,
    offset_minutes=st.integers(0, 48 * 60),
)
def test_next_opening_is_the_first_open_minute(days: dict, zone: str, start: datetime, offset_minutes: int) -> None:
    """Against a brute force walk, minute by minute, around the nights clocks change: every window
    edge and every DST change here falls on a whole minute."""
    try:
        cal = calendar({day: windows for day, windows in days.items() if windows}, time_zone=zone)
    except ValidationError:
        return  # a random overlap past midnight
    at = start + timedelta(minutes=offset_minutes)
    expected = next(
        (at + timedelta(minutes=m) for m in range(8 * 24 * 60) if is_open(cal, at + timedelta(minutes=m))), None
    )
    found = next_opening(cal, at)
    assert (found and found.astimezone(UTC)) == (expected and expected.astimezone(UTC))


# -- the YAML shape ---------------------------------------------------------------------------------


def test_the_sample_loads_and_dumps_back() -> None:
    loaded = load_calendar(SAMPLE)
    assert loaded.time_zone == "Europe/Madrid"
    assert [str(w) for w in loaded.weekly[0]] == ["09:00-13:00", "14:00-18:00"]
    assert loaded.weekly[6] == ()
    assert loaded.holidays[date(2026, 12, 25)].windows == ()
    assert loaded.holidays[date(2026, 12, 25)].name == "Christmas"
    dumped = dump_calendar(loaded)
    assert dumped["holidays"] == [
        {"date": "2026-12-24", "hours": ["09:00-13:00"]},
        {"date": "2026-12-25", "name": "Christmas"},
    ]
    assert load_calendar(yaml.safe_load(yaml.safe_dump(dumped))) == loaded


def test_windows_are_kept_in_order() -> None:
    assert [str(w) for w in calendar({"mon": ["14:00-18:00", "9:00 - 13:00"]}).weekly[0]] == [
        "09:00-13:00",
        "14:00-18:00",
    ]


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        (["09:00-13:00", "12:00-18:00"], "09:00-13:00 and 12:00-18:00 overlap"),
        (["09:00-18:00", "10:00-11:00"], "09:00-18:00 and 10:00-11:00 overlap"),
        (["20:00-21:00", "18:00-02:00"], "18:00-02:00 and 20:00-21:00 overlap"),
        (["09:00-09:00"], "opens and closes at 09:00: for all day write 00:00-24:00"),
        (["24:00-02:00"], "24:00 can only end a window"),
        (["09:00-25:00"], "25:00 is not a time"),
        (["09:60-10:00"], "09:60 is not a time"),
        (["24:30-01:00"], "24:30 is not a time"),
        (["9-18"], "must be a window like 09:00-18:00"),
        ([900], "must be a window like 09:00-18:00"),
    ],
)
def test_bad_windows_are_named(windows: list, message: str) -> None:
    found = errors({"time_zone": "UTC", "weekly": {"wed": windows}})
    assert message in str(found["weekly"]["wed"])


def test_a_reversed_window_running_into_the_next_morning_is_refused() -> None:
    found = errors({"time_zone": "UTC", "weekly": {"mon": ["18:00-09:00"], "tue": ["08:00-17:00"]}})
    assert found == {
        "weekly": {
            "mon": [
                "18:00-09:00 runs past midnight into tue's 08:00-17:00 (if 18:00-09:00 is reversed, write 09:00-18:00)"
            ]
        }
    }
    # Sunday's night runs into Monday; touching the next window is fine.
    assert errors({"time_zone": "UTC", "weekly": {"sun": ["22:00-10:00"], "mon": ["09:00-12:00"]}})["weekly"]["sun"]
    calendar({"sun": ["22:00-09:00"], "mon": ["09:00-12:00"]})


def test_an_unknown_time_zone_is_refused_with_a_suggestion() -> None:
    assert errors({"time_zone": "Europe/Madird", "weekly": {}}) == {
        "time_zone": [
            "unknown time zone 'Europe/Madird': use an IANA name like Europe/Madrid (did you mean Europe/Madrid?)"
        ]
    }
    assert "did you mean America/New_York" in errors({"time_zone": "america/new_york", "weekly": {}})["time_zone"][0]
    for name in ("Mars/Olympus", "America", "../etc/passwd", "", "localtime"):
        assert "unknown time zone" in errors({"time_zone": name, "weekly": {}})["time_zone"][0]


def test_every_error_of_a_calendar_in_one_answer() -> None:
    found = errors(
        {
            "time_zone": "Nowhere/City",
            "weekly": {"monday": ["09:00-18:00"], "tue": ["09:00-13:00", "12:00-14:00"], "wed": ["nine to five"]},
            "holidays": [
                {"date": date(2026, 12, 25)},
                {"date": date(2026, 12, 25), "hours": ["10:00-12:00"]},
                {"date": "Christmas"},
                {"date": datetime(2026, 12, 31, 10, 0)},
                {"hours": ["10:00-12:00"], "open": True},
            ],
            "color": "blue",
        }
    )
    assert set(found) == {"time_zone", "weekly", "holidays", "color"}
    assert set(found["weekly"]) == {"monday", "tue", "wed"}
    assert found["weekly"]["monday"] == ["Unknown field."]
    assert found["weekly"]["wed"] == {0: ["must be a window like 09:00-18:00"]}
    assert found["holidays"][1] == {"date": ["2026-12-25 is listed twice: keep one entry per date"]}
    assert found["holidays"][2] == {"date": ["Not a valid date."]}
    assert "whole day" in found["holidays"][3]["date"][0]
    assert set(found["holidays"][4]) == {"date", "open"}


def test_time_zone_and_weekly_are_required() -> None:
    assert errors({}) == {
        "time_zone": ["Missing data for required field."],
        "weekly": ["Missing data for required field."],
    }
