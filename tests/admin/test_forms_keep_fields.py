"""Saving through a form or the API loses nothing: an entry point's `hours:` calendar (as the form's YAML
text), flow and message overrides survive its form and a GET-then-PUT through the API; a rule's
`language:` survives its form and the API. Each form is posted back as the browser would send the
page it rendered (tests/admin/browser_form.py), unchanged or with one field changed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.admin.browser_form import form_fields
from tests.admin.test_integrations import KEY, SECRET

CALENDAR = {
    "time_zone": "Europe/Madrid",
    "weekly": {"mon": ["09:00-13:00", "14:00-18:00"], "sat": ["22:00-02:00"]},
    "holidays": [{"date": "2026-12-24", "hours": ["09:00-13:00"]}, {"date": "2026-12-25", "name": "Christmas"}],
}
FLOW = {"name": "intake", "steps": [{"name": "topic", "type": "ask", "question": "ask_topic", "attribute": "topic"}]}
ECE_POINT = {
    "name": "Support",
    "id": "1001",
    "flow": "intake",
    "hours": CALENDAR,
    "messages": {"welcome": "Hi from Lab"},
    "queue_status_after_seconds": 30,
}
HYBRID_POINT = {
    "name": "Care",
    "skills": ["english"],
    "priority": 3,
    "flow": "intake",
    "hours": CALENDAR,
    "messages": {"welcome": "Hi from Desk"},
}


def provision(runtime, integration: dict[str, Any]) -> None:
    runtime.overrides.save("flows", FLOW, runtime.provisioned, create=True)
    runtime.overrides.save("integrations", integration, runtime.provisioned, create=True)
    runtime.config_changed()


def ece_lab() -> dict[str, Any]:
    return {
        "name": "Lab",
        "type": "ece",
        "base_url": "http://127.0.0.1:9/ece",
        "client_key": KEY,
        "client_secret": SECRET,
        "callback_auth": {"type": "none"},
        "entry_points": [copy.deepcopy(ECE_POINT)],
    }


def hybrid_desk() -> dict[str, Any]:
    return {"name": "Desk", "type": "hybrid", "entry_points": [copy.deepcopy(HYBRID_POINT)]}


def stored_point(runtime, integration: str) -> dict[str, Any]:
    (point,) = runtime.overrides.raw("integrations", integration)["entry_points"]
    return point


# -- an entry point's form -----------------------------------------------------------------------------


@pytest.mark.parametrize(("integration", "point"), [(ece_lab, "Support"), (hybrid_desk, "Care")])
def test_saving_the_entry_point_form_unchanged_keeps_the_calendar_flow_and_messages(
    operator, runtime, integration, point
):
    item = integration()
    provision(runtime, item)
    name = item["name"]
    before = runtime.config.integration(name).entry_point(point)
    admin = operator("admin")
    url = f"/admin/integrations/{name}/entry-points/{point}/edit"
    fields = form_fields(admin.get(url).get_data(as_text=True))
    assert "hours" in fields, "the form shows the calendar (tests/admin/test_entry_point_hours.py)"

    assert admin.post(url, data=fields).status_code == 302
    stored = stored_point(runtime, name)
    assert stored["hours"] == CALENDAR
    assert (stored["flow"], stored["messages"]) == ("intake", item["entry_points"][0]["messages"])
    assert runtime.config.integration(name).entry_point(point) == before, "nothing the form shows changed either"


def test_changing_one_field_in_the_form_keeps_the_calendar(operator, runtime):
    provision(runtime, ece_lab())
    admin = operator("admin")
    url = "/admin/integrations/Lab/entry-points/Support/edit"
    fields = form_fields(admin.get(url).get_data(as_text=True))
    fields["max_wait_seconds"] = "45"

    assert admin.post(url, data=fields).status_code == 302
    support = runtime.config.integration("Lab").entry_point("Support")
    assert support.max_wait_seconds == 45
    assert stored_point(runtime, "Lab")["hours"] == CALENDAR
    assert support.hours is not None and support.flow == "intake" and support.queue_status_after_seconds == 30


def test_a_form_that_fails_validation_keeps_the_stored_calendar(operator, runtime):
    provision(runtime, ece_lab())
    admin = operator("admin")
    url = "/admin/integrations/Lab/entry-points/Support/edit"
    fields = {**form_fields(admin.get(url).get_data(as_text=True)), "id": ""}

    assert admin.post(url, data=fields).status_code == 422
    assert stored_point(runtime, "Lab") == ECE_POINT


# -- an integration through the API --------------------------------------------------------------------


@pytest.mark.parametrize(("integration", "point"), [(ece_lab, "Support"), (hybrid_desk, "Care")])
def test_get_then_put_through_the_api_keeps_the_calendar_and_flow(api_client, runtime, integration, point):
    item = integration()
    provision(runtime, item)
    name = item["name"]
    api = api_client("admin")
    shown = api.get(f"/api/v1/integrations/{name}").get_json()
    (ep,) = shown["entry_points"]
    assert ep["hours"] == CALENDAR and ep["flow"] == "intake"

    body = {k: v for k, v in shown.items() if k not in ("source", "read_only", "callback_url")}
    body["entry_points"][0]["max_wait_seconds"] = 45
    answer = api.put(f"/api/v1/integrations/{name}", json=body)
    assert answer.status_code == 200, answer.get_json()
    (after,) = answer.get_json()["entry_points"]
    assert after["hours"] == CALENDAR and after["flow"] == "intake" and after["max_wait_seconds"] == 45
    assert stored_point(runtime, name)["hours"] == CALENDAR
    assert runtime.config.integration(name).entry_point(point).hours is not None


# -- a rule's language -----------------------------------------------------------------------------------

RULE = {
    "name": "wa-es",
    "channel": "whatsapp",
    "event": "incoming_message",
    "asset": "test-whatsapp",
    "language": "es",
    "action": {"forward_to": "TestRouter", "entry_point": "Sales", "flow": "intake"},
}


def provision_rule(runtime) -> None:
    runtime.overrides.save("flows", FLOW, runtime.provisioned, create=True)
    runtime.overrides.save("rules", RULE, runtime.provisioned, create=True)
    runtime.config_changed()


def the_rule(runtime):
    return next(r for r in runtime.config.rules if r.name == "wa-es")


def test_saving_the_rule_form_keeps_its_language(operator, runtime):
    provision_rule(runtime)
    before = the_rule(runtime)
    editor = operator("editor")
    url = "/admin/rules/wa-es/edit"
    fields = form_fields(editor.get(url).get_data(as_text=True))
    assert fields["language"] == "es"

    assert editor.post(url, data=fields).status_code == 302
    assert runtime.overrides.raw("rules", "wa-es")["language"] == "es"
    assert the_rule(runtime) == before

    fields = form_fields(editor.get(url).get_data(as_text=True))
    fields["entry_point"] = "Support"
    assert editor.post(url, data=fields).status_code == 302
    assert (the_rule(runtime).language, the_rule(runtime).action.entry_point) == ("es", "Support")


def test_get_then_put_of_a_rule_through_the_api_keeps_its_language(api_client, runtime):
    provision_rule(runtime)
    api = api_client("editor")
    shown = api.get("/api/v1/rules/wa-es").get_json()
    assert shown["language"] == "es"

    body = {k: v for k, v in shown.items() if k not in ("position", "source", "default", "editable")}
    body["action"]["entry_point"] = "Support"
    answer = api.put("/api/v1/rules/wa-es", json=body)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["language"] == "es"
    assert runtime.overrides.raw("rules", "wa-es")["language"] == "es"
    assert the_rule(runtime).action.entry_point == "Support"
