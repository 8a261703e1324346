"""An entry point's business hours in the operator UI: its form edits the `hours:` calendar as YAML
(validated by the config store, every error beside the field, nothing stored on an error), and its
page shows the week, the holidays, the time zone and whether it is open now or when it opens."""

from __future__ import annotations

import copy
import datetime
import re
from typing import Any

import pytest
import yaml

from tests.admin.browser_form import form_fields
from tests.admin.test_forms_keep_fields import CALENDAR, ece_lab, hybrid_desk, provision, stored_point

ALWAYS = {
    "time_zone": "UTC",
    "weekly": {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
}
NEVER = {"time_zone": "America/New_York", "weekly": {}}
NEXT_YEAR = datetime.date.today().year + 1
LATER = {
    "time_zone": "Asia/Tokyo",
    "weekly": {},
    "holidays": [{"date": f"{NEXT_YEAR}-01-05", "name": "Opening day", "hours": ["09:00-12:00"]}],
}
"""Closed every week; open only on one day next year: its next opening is that day at 09:00."""
EDIT = "/admin/integrations/{name}/entry-points/{point}/edit"
PAGE = "/admin/integrations/{name}/entry-points/{point}"
CASES = pytest.mark.parametrize(("integration", "point"), [(ece_lab, "Support"), (hybrid_desk, "Care")])


def with_calendar(integration, calendar: dict[str, Any] | None) -> dict[str, Any]:
    item = integration()
    item["entry_points"][0].pop("hours")
    if calendar is not None:
        item["entry_points"][0]["hours"] = copy.deepcopy(calendar)
    return item


def post_hours(admin, runtime, item: dict[str, Any], text: str):
    provision(runtime, item)
    point = item["entry_points"][0]["name"]
    url = EDIT.format(name=item["name"], point=point)
    fields = {**form_fields(admin.get(url).get_data(as_text=True)), "hours": text}
    return admin.post(url, data=fields)


@CASES
def test_the_form_shows_the_stored_calendar_as_yaml(operator, runtime, integration, point):
    item = integration()
    provision(runtime, item)
    fields = form_fields(operator("admin").get(EDIT.format(name=item["name"], point=point)).get_data(as_text=True))
    assert yaml.safe_load(fields["hours"]) == CALENDAR
    assert fields["hours"].startswith("time_zone: Europe/Madrid\nweekly:\n  mon:"), "in the documented order"


@CASES
def test_saving_a_calendar_typed_in_the_form_stores_it(operator, runtime, integration, point):
    item = with_calendar(integration, None)
    typed = """time_zone: Europe/Madrid
weekly:
  mon: ["09:00-13:00", "14:00-18:00"]
  sat: ["22:00-02:00"]
holidays:
  - {date: 2026-12-24, hours: ["09:00-13:00"]}
  - {date: 2026-12-25, name: Christmas}
"""
    answer = post_hours(operator("admin"), runtime, item, typed)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert stored_point(runtime, item["name"])["hours"] == CALENDAR
    calendar = runtime.config.integration(item["name"]).entry_point(point).hours
    assert calendar is not None and calendar.time_zone == "Europe/Madrid"
    assert datetime.date(2026, 12, 25) in calendar.holidays


def test_invalid_yaml_is_named_beside_the_field_with_the_other_errors_and_nothing_is_stored(operator, runtime):
    item = with_calendar(ece_lab, ALWAYS)
    provision(runtime, item)
    admin = operator("admin")
    url = EDIT.format(name="Lab", point="Support")
    fields = {
        **form_fields(admin.get(url).get_data(as_text=True)),
        "hours": "time_zone: UTC\nweekly: {mon: [",
        "id": "",
    }

    answer = admin.post(url, data=fields)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "not valid YAML: line 2" in page
    assert 'id="id-error"' in page, "the other fields are still checked"
    assert "time_zone: UTC\nweekly: {mon: [</textarea>" in page, "the text comes back as typed"
    assert stored_point(runtime, "Lab")["hours"] == ALWAYS


def test_a_calendar_that_is_not_a_mapping_is_refused(operator, runtime):
    answer = post_hours(operator("admin"), runtime, with_calendar(ece_lab, None), "- mon: 09:00-18:00\n")
    assert answer.status_code == 422
    assert "write the calendar as a YAML mapping" in answer.get_data(as_text=True)
    assert "hours" not in stored_point(runtime, "Lab")


def test_every_problem_of_a_calendar_is_shown_beside_the_field_and_nothing_is_stored(operator, runtime):
    typed = """time_zone: Europe/Madird
weekly:
  mon: ["09:00-13:00", "12:00-18:00"]
  tue: ["25:00-26:00"]
  monday: ["09:00-10:00"]
holidays:
  - {date: 2026-12-25}
  - {date: 2026-12-25}
"""
    item = with_calendar(ece_lab, ALWAYS)
    answer = post_hours(operator("admin"), runtime, item, typed)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    for message in (
        "time_zone: unknown time zone &#39;Europe/Madird&#39;: use an IANA name like Europe/Madrid"
        " (did you mean Europe/Madrid?)",
        "weekly.mon: 09:00-13:00 and 12:00-18:00 overlap",
        "weekly.tue.0: 25:00 is not a time",
        "weekly.monday: Unknown field.",
        "holidays.1.date: 2026-12-25 is listed twice",
    ):
        assert f'<p class="field-error" id="hours-error">{message}' in page, message
    assert "Europe/Madird" in page.split('<textarea id="hours"')[1].split("</textarea>")[0], "shown as typed"
    assert stored_point(runtime, "Lab")["hours"] == ALWAYS


@CASES
def test_clearing_the_text_removes_the_calendar(operator, runtime, integration, point):
    item = integration()
    answer = post_hours(operator("admin"), runtime, item, "  \n")
    assert answer.status_code == 302
    assert "hours" not in stored_point(runtime, item["name"])
    assert runtime.config.integration(item["name"]).entry_point(point).hours is None


# -- the entry point's page ------------------------------------------------------------------------------


def page_of(operator, runtime, calendar: dict[str, Any] | None, role: str = "viewer") -> str:
    provision(runtime, with_calendar(ece_lab, calendar))
    answer = operator(role).get(PAGE.format(name="Lab", point="Support"))
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def status_line(page: str) -> str:
    """The open-now line as a reader sees it (tags and spacing dropped)."""
    line = page.split('id="hours-now"')[1].split("</p>")[0].split(">", 1)[1]
    return " ".join(re.sub(r"<[^>]+>", " ", line).split())


def test_a_calendar_open_all_week_reads_open_now(operator, runtime):
    page = page_of(operator, runtime, ALWAYS)
    assert status_line(page) == "Open now (time zone UTC)"
    assert page.count("00:00-24:00") == 7


def test_a_calendar_that_never_opens_says_so(operator, runtime):
    page = page_of(operator, runtime, NEVER)
    assert status_line(page) == "Closed now · never opens again (time zone America/New_York)"
    assert page.count(">closed</span>") == 7


def test_a_closed_calendar_says_when_it_opens_next_on_its_own_clock(operator, runtime):
    page = page_of(operator, runtime, LATER)
    opening = datetime.date(NEXT_YEAR, 1, 5).strftime("%a")
    assert status_line(page) == f"Closed now · opens {opening} {NEXT_YEAR}-01-05 09:00 (time zone Asia/Tokyo)"
    assert f"{NEXT_YEAR}-01-05</time> Opening day:" in page and "open 09:00-12:00" in page


def test_the_page_shows_the_week_and_the_holidays(operator, runtime):
    page = page_of(operator, runtime, CALENDAR)
    week = page.split('id="hours-week"')[1].split("</table>")[0]
    monday = week.split(">Monday</th>")[1].split("</tr>")[0]
    assert "09:00-13:00" in monday and "14:00-18:00" in monday
    assert "22:00-02:00" in week.split(">Saturday</th>")[1].split("</tr>")[0]
    assert "closed" in week.split(">Tuesday</th>")[1].split("</tr>")[0]
    holidays = page.split('id="hours-holidays"')[1].split("</ul>")[0]
    assert "2026-12-24</time>:" in " ".join(holidays.split()) and "open 09:00-13:00" in holidays
    assert "2026-12-25</time> Christmas:" in " ".join(holidays.split()) and "closed all day" in holidays
    assert "Europe/Madrid" in page


def test_an_entry_point_without_a_calendar_says_it_counts_as_open(operator, runtime):
    page = page_of(operator, runtime, None)
    assert 'id="hours-none"' in page and 'id="hours-now"' not in page


def test_a_viewer_sees_the_rendering_and_no_form_an_admin_gets_the_edit_link(operator, runtime):
    viewer_page = page_of(operator, runtime, ALWAYS)
    assert "Open now" in viewer_page and "<textarea" not in viewer_page
    assert re.findall(r'<form[^>]*method="post"[^>]*>', viewer_page) == re.findall(
        r'<form[^>]*action="/admin/logout"[^>]*>', viewer_page
    ), "no form but Log out"
    assert "/entry-points/Support/edit" not in viewer_page
    admin_page = operator("admin").get(PAGE.format(name="Lab", point="Support")).get_data(as_text=True)
    assert "/admin/integrations/Lab/entry-points/Support/edit" in admin_page
    assert operator("viewer").get(EDIT.format(name="Lab", point="Support")).status_code == 403


def test_the_integration_page_links_each_entry_point_to_its_page(operator, runtime):
    provision(runtime, with_calendar(ece_lab, ALWAYS))
    page = operator("viewer").get("/admin/integrations/Lab").get_data(as_text=True)
    assert 'href="/admin/integrations/Lab/entry-points/Support"' in page
    assert operator("viewer").get(PAGE.format(name="Lab", point="Nope")).status_code == 404
