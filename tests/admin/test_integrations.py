"""Integrations in the operator UI: list, test and save against the ECE simulator, secrets masked,
entry points with stored indicators, custom attributes, provisioned items read-only."""

from __future__ import annotations

import re
import time

import pytest

from connector.backends import Availability, indicators
from connector.config.overrides import MASK
from tests.conftest import ECE_CLIENT

KEY, SECRET = ECE_CLIENT


def settings_form(csrf: str, base_url: str, **overrides: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf,
        "name": "Lab",
        "type": "ece",
        "version": "12.6",
        "base_url": base_url,
        "client_key": KEY,
        "client_secret": SECRET,
        "callback_auth_type": "bearer",
        "callback_token": "lab-callback-token",
        "verify_tls": "on",
        "action": "test",
    }
    form.update(overrides)
    return form


def stored(runtime, name: str = "Lab") -> dict:
    return runtime.overrides.raw("integrations", name)


def text(answer) -> str:
    return answer.get_data(as_text=True)


def make_lab(runtime, base_url: str = "http://127.0.0.1:9/ece", **extra) -> None:
    raw = {
        "name": "Lab",
        "type": "ece",
        "base_url": base_url,
        "client_key": KEY,
        "client_secret": SECRET,
        "entry_points": [{"name": "Support", "id": "1001", "messages": {"welcome": "Hi from Lab"}}],
        **extra,
    }
    runtime.overrides.save("integrations", raw, runtime.provisioned, create=True)
    runtime.config_changed()


# -- list and provisioned items -----------------------------------------------------------------------


def source_of(runtime, name: str = "TestRouter") -> str:
    return runtime.provisioned.integration(name).source


def test_the_list_shows_provisioned_integrations_read_only_with_their_file(operator, runtime):
    page = text(operator("admin").get("/admin/integrations/"))
    assert "TestRouter" in page
    assert f"defined in {source_of(runtime)}" in page
    assert "/admin/integrations/TestRouter/edit" not in page, "no edit button for a provisioned item"
    assert "New integration" in page


def test_a_provisioned_integration_cannot_be_edited_or_deleted(operator, runtime):
    admin = operator("admin")
    assert admin.get("/admin/integrations/TestRouter/edit").status_code == 404
    answer = admin.post("/admin/integrations/TestRouter/delete", data={"csrf_token": admin.csrf})
    assert answer.status_code == 302
    assert runtime.config.integration("TestRouter") is not None
    page = text(admin.get("/admin/integrations/TestRouter"))
    assert f"is defined in {source_of(runtime)} and is read-only" in page


# -- test and save ------------------------------------------------------------------------------------


def test_test_and_save_with_a_wrong_secret_saves_nothing_and_says_why(operator, runtime, ece_simulator):
    _, base_url = ece_simulator
    admin = operator("admin")
    answer = admin.post("/admin/integrations/new", data=settings_form(admin.csrf, base_url, client_secret="wrong"))
    assert answer.status_code == 422
    page = text(answer)
    assert "Nothing was saved" in page
    assert "ECE rejected the client key/secret of integration Lab" in page
    assert "wrong" not in re.findall(r'name="client_secret"[^>]*', page)[0], "a typed secret is not echoed back"
    assert "leave empty to keep it" not in page, "nothing is stored to keep"
    assert runtime.config.integration("Lab") is None


def test_test_and_save_with_the_right_secret_saves_and_masks_it(operator, runtime, ece_simulator):
    _, base_url = ece_simulator
    admin = operator("admin")
    answer = admin.post("/admin/integrations/new", data=settings_form(admin.csrf, base_url))
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/integrations/Lab")
    assert stored(runtime)["client_secret"] == SECRET
    page = text(admin.get("/admin/integrations/Lab"))
    assert "tested and saved" in page
    assert SECRET not in page and "lab-callback-token" not in page
    assert MASK in page
    assert "https://connector.example.com/ece/Lab/callback" in page
    edit = text(admin.get("/admin/integrations/Lab/edit"))
    assert SECRET not in edit and "lab-callback-token" not in edit
    assert "leave empty to keep it" in edit


def test_test_and_save_checks_each_entry_point(operator, runtime, ece_simulator):
    _, base_url = ece_simulator
    make_lab(runtime, base_url, entry_points=[{"name": "Support", "id": "1001"}, {"name": "Ghost", "id": "4040"}])
    admin = operator("admin")
    answer = admin.post("/admin/integrations/Lab/edit", data=settings_form(admin.csrf, base_url, client_secret=""))
    assert answer.status_code == 422
    page = text(answer)
    assert "entry point Ghost (4040): configuration" in page
    assert "no entry point 4040 in ECE" in page
    assert "entry point Support (1001): configuration" in page and "passed" in page


def test_an_edit_keeps_the_stored_secret_entry_points_and_message_overrides(operator, runtime, ece_simulator):
    _, base_url = ece_simulator
    make_lab(runtime, base_url, callback_auth={"type": "bearer", "token": "stored-token"})
    admin = operator("admin")
    form = settings_form(admin.csrf, base_url, client_secret="", callback_token="", version="12.7")
    answer = admin.post("/admin/integrations/Lab/edit", data=form)
    assert answer.status_code == 302, text(answer)
    raw = stored(runtime)
    assert raw["client_secret"] == SECRET and raw["callback_auth"]["token"] == "stored-token"
    assert raw["version"] == "12.7"
    assert raw["entry_points"][0]["messages"] == {"welcome": "Hi from Lab"}


def test_save_without_testing_skips_ece(operator, runtime):
    admin = operator("admin")
    form = settings_form(admin.csrf, "http://127.0.0.1:9/ece", action="save")
    assert admin.post("/admin/integrations/new", data=form).status_code == 302
    assert stored(runtime)["base_url"] == "http://127.0.0.1:9/ece"


def test_calls_in_flight_are_bounded_per_integration_shown_and_checked(operator, runtime):
    admin = operator("admin")
    page = text(admin.get("/admin/integrations/new?type=ece"))
    assert 'name="max_in_flight"' in page and 'value="128"' in page, "the default is offered"
    refused = admin.post(
        "/admin/integrations/new",
        data=settings_form(admin.csrf, "http://127.0.0.1:9/ece", action="save", max_in_flight="0"),
    )
    assert refused.status_code == 422
    assert 'id="max_in_flight-error"' in text(refused) and "1 to 1000 calls at once per worker" in text(refused)
    saved = admin.post(
        "/admin/integrations/new",
        data=settings_form(admin.csrf, "http://127.0.0.1:9/ece", action="save", max_in_flight="8"),
    )
    assert saved.status_code == 302
    assert stored(runtime)["max_in_flight"] == 8
    assert runtime.config.integration("Lab").max_in_flight == 8
    assert "at most 8 per worker process" in text(admin.get("/admin/integrations/Lab"))


def test_a_hybrid_integration_is_saved_after_validation(operator, runtime):
    admin = operator("admin")
    form = settings_form(admin.csrf, "http://127.0.0.1:9/router", type="hybrid", client_key="", client_secret="")
    answer = admin.post("/admin/integrations/new", data=form)
    assert answer.status_code == 302
    assert stored(runtime)["type"] == "hybrid"


def test_invalid_fields_are_shown_inline_and_nothing_is_saved(operator, runtime):
    admin = operator("admin")
    form = settings_form(admin.csrf, "not a url", name="bad name!", callback_auth_type="basic")
    answer = admin.post("/admin/integrations/new", data=form)
    assert answer.status_code == 422
    page = text(answer)
    assert 'id="name-error"' in page and "use 1-64 letters" in page
    assert 'id="base_url-error"' in page
    assert "basic callback auth needs username and password" in page
    assert runtime.overrides.raw_items("integrations") == {}


def test_a_taken_name_is_refused(operator, runtime):
    admin = operator("admin")
    form = settings_form(admin.csrf, "http://127.0.0.1:9/x", name="TestRouter", action="save")
    answer = admin.post("/admin/integrations/new", data=form)
    assert answer.status_code == 422
    assert f"defined in {source_of(runtime)}" in text(answer)


def test_delete_is_refused_while_a_rule_uses_it(operator, runtime):
    make_lab(runtime)
    runtime.overrides.save(
        "rules",
        {
            "name": "lab-rule",
            "channel": "sms",
            "event": "mo",
            "asset": "test-sms",
            "keyword": "LAB",
            "action": {"forward_to": "Lab", "entry_point": "Support"},
        },
        runtime.provisioned,
        create=True,
    )
    admin = operator("admin")
    answer = admin.post("/admin/integrations/Lab/delete", data={"csrf_token": admin.csrf}, follow_redirects=True)
    assert "used by rule(s) lab-rule" in text(answer)
    assert runtime.overrides.raw("integrations", "Lab")
    runtime.overrides.delete("rules", "lab-rule", runtime.provisioned)
    answer = admin.post("/admin/integrations/Lab/delete", data={"csrf_token": admin.csrf})
    assert answer.status_code == 302
    assert runtime.overrides.raw_items("integrations") == {}


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_an_admin_changes_integrations(operator, runtime, role):
    make_lab(runtime)
    client = operator(role)
    answer = client.post("/admin/integrations/new", data=settings_form(client.csrf, "http://127.0.0.1:9/x"))
    assert answer.status_code == 403
    assert client.post("/admin/integrations/Lab/delete", data={"csrf_token": client.csrf}).status_code == 403
    assert "New integration" not in text(client.get("/admin/integrations/"))
    assert set(runtime.overrides.raw_items("integrations")) == {"Lab"}


def test_a_post_without_csrf_is_refused(operator, runtime):
    admin = operator("admin")
    form = settings_form("", "http://127.0.0.1:9/x", action="save")
    del form["csrf_token"]
    assert admin.post("/admin/integrations/new", data=form).status_code == 400
    assert runtime.overrides.raw_items("integrations") == {}


# -- entry points -------------------------------------------------------------------------------------


def entry_point_form(csrf: str, **overrides: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf,
        "name": "Sales",
        "id": "1002",
        "enabled": "on",
        "max_wait_seconds": "90",
        "unavailable_action": "close",
        "unavailable_after_seconds": "120",
        "default_locale": "es",
        "queue_status_after_seconds": "",
    }
    form.update(overrides)
    return form


def test_add_edit_and_remove_an_entry_point(operator, runtime):
    make_lab(runtime)
    admin = operator("admin")
    answer = admin.post("/admin/integrations/Lab/entry-points/new", data=entry_point_form(admin.csrf))
    assert answer.status_code == 302
    sales = runtime.config.integration("Lab").entry_point("Sales")
    assert (sales.id, sales.max_wait_seconds, sales.unavailable.action, sales.default_locale) == (
        "1002",
        90,
        "close",
        "es",
    )

    form = entry_point_form(admin.csrf, name="Support", id="1001", max_wait_seconds="30")
    del form["enabled"]
    assert admin.post("/admin/integrations/Lab/entry-points/Support/edit", data=form).status_code == 302
    support = runtime.config.integration("Lab").entry_point("Support")
    assert support.enabled is False and support.max_wait_seconds == 30
    assert support.messages == {"welcome": "Hi from Lab"}, "message overrides survive an edit"

    assert (
        admin.post("/admin/integrations/Lab/entry-points/Sales/delete", data={"csrf_token": admin.csrf}).status_code
        == 302
    )
    assert [ep.name for ep in runtime.config.integration("Lab").entry_points] == ["Support"]


def test_an_invalid_entry_point_shows_the_field_error(operator, runtime):
    make_lab(runtime)
    admin = operator("admin")
    answer = admin.post(
        "/admin/integrations/Lab/entry-points/new", data=entry_point_form(admin.csrf, id="", max_wait_seconds="-5")
    )
    assert answer.status_code == 422
    page = text(answer)
    assert 'id="id-error"' in page
    assert 'id="max_wait_seconds-error"' in page
    assert len(runtime.config.integration("Lab").entry_points) == 1


def test_removing_an_entry_point_a_rule_uses_is_refused_naming_the_rule(operator, runtime):
    make_lab(runtime)
    runtime.overrides.save(
        "rules",
        {
            "name": "lab-rule",
            "channel": "messenger",
            "event": "incoming_message",
            "asset": "test-messenger",
            "action": {"forward_to": "Lab", "entry_point": "Support"},
        },
        runtime.provisioned,
        create=True,
    )
    admin = operator("admin")
    answer = admin.post(
        "/admin/integrations/Lab/entry-points/Support/delete", data={"csrf_token": admin.csrf}, follow_redirects=True
    )
    assert "Support (rule lab-rule)" in text(answer)
    assert runtime.config.integration("Lab").entry_point("Support") is not None


def test_entry_point_rows_link_to_their_messages(operator, runtime):
    make_lab(runtime)
    page = text(operator("viewer").get("/admin/integrations/Lab"))
    assert "/admin/templates/?integration=Lab&amp;entry_point=Support" in page


# -- indicators ---------------------------------------------------------------------------------------


def test_the_page_shows_stored_readings_with_the_number_in_the_tooltip(operator, runtime):
    make_lab(runtime)
    viewer = operator("viewer")  # log in first: the reading's age below is counted from now
    reading = indicators.Reading(
        "1001",
        time.time() - 12,
        Availability(
            chat_allowed=True, agents_available=False, capacity=0, eligibility=1, queue_depth=4, wait_seconds=45
        ),
    )
    indicators.store(runtime.redis, "Lab", reading)
    page = text(viewer.get("/admin/integrations/Lab"))
    agent = re.search(r'<span class="indicator (\w+)" data-indicator="agent"[^>]*title="([^"]+)"', page)
    assert agent[1] == "red" and "no agent available: 0 slots free" in agent[2]
    assert "checked 12 s ago" in agent[2]
    wait = re.search(r'data-indicator="wait"[^>]*title="([^"]+)"', page)
    assert "wait 45 s, threshold 120 s" in wait[1]
    assert "data-auto-refresh" not in page, "a viewer cannot refresh, so the page does not try"


def test_a_page_never_calls_ece_and_asks_its_script_to_refresh_stale_readings(operator, runtime):
    make_lab(runtime)  # base_url points at a closed port: a call would fail, rendering must not try
    page = text(operator("editor").get("/admin/integrations/Lab"))
    assert 'data-indicator="agent" data-state="unknown"' in page
    assert "never checked: press Refresh" in page
    assert 'data-auto-refresh="/api/v1/integrations/Lab/indicators/refresh"' in page


def test_refresh_without_javascript_reads_the_simulator_and_comes_back(operator, runtime, ece_simulator):
    sim, base_url = ece_simulator
    make_lab(runtime, base_url)
    sim.model.set_entry_point("1001", agents_available=False)
    editor = operator("editor")
    answer = editor.post(
        "/admin/integrations/Lab/entry-points/Support/indicators/refresh", data={"csrf_token": editor.csrf}
    )
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/integrations/Lab#entry-points")
    page = text(editor.get("/admin/integrations/Lab"))
    assert 'data-indicator="agent" data-state="red"' in page
    sim.model.set_entry_point("1001", agents_available=True)
    editor.post("/admin/integrations/Lab/indicators/refresh", data={"csrf_token": editor.csrf})
    page = text(editor.get("/admin/integrations/Lab"))
    assert 'data-indicator="agent" data-state="green"' in page
    assert "3 slots free" in page


def test_a_failed_refresh_shows_unknown_with_the_error(operator, runtime):
    make_lab(runtime)
    editor = operator("editor")
    answer = editor.post(
        "/admin/integrations/Lab/indicators/refresh", data={"csrf_token": editor.csrf}, follow_redirects=True
    )
    page = text(answer)
    assert "no reading for Support" in page
    assert 'data-indicator="agent" data-state="unknown"' in page
    assert "reading failed: cannot reach ECE at 127.0.0.1:9" in page


def test_a_viewer_cannot_refresh(operator, runtime):
    make_lab(runtime)
    viewer = operator("viewer")
    answer = viewer.post("/admin/integrations/Lab/indicators/refresh", data={"csrf_token": viewer.csrf})
    assert answer.status_code == 403


# -- custom attributes --------------------------------------------------------------------------------


def test_custom_attributes_are_saved_and_empty_rows_dropped(operator, runtime):
    make_lab(runtime)
    admin = operator("admin")
    data = {
        "csrf_token": admin.csrf,
        "attr_name": ["$(fb.username)", "", "$(wa.profile)"],
        "attr_value": ["$(messenger.username)", "", "$(whatsapp.profile_name)"],
    }
    assert admin.post("/admin/integrations/Lab/attributes", data=data).status_code == 302
    attributes = runtime.config.integration("Lab").custom_attributes
    assert [(a.name, a.value) for a in attributes] == [
        ("$(fb.username)", "$(messenger.username)"),
        ("$(wa.profile)", "$(whatsapp.profile_name)"),
    ]


def test_an_invalid_attribute_is_flagged_on_its_row(operator, runtime):
    make_lab(runtime, custom_attributes=[{"name": "$(fb.username)", "value": "$(messenger.username)"}])
    admin = operator("admin")
    data = {
        "csrf_token": admin.csrf,
        "attr_name": ["$(fb.username)", "not an expression"],
        "attr_value": ["$(messenger.username)", "x"],
    }
    answer = admin.post("/admin/integrations/Lab/attributes", data=data)
    assert answer.status_code == 422
    page = text(answer)
    rows = re.findall(r"<tr data-attribute-row>(.*?)</tr>", page, re.S)
    assert "like $(fb.username)" not in rows[0]
    assert "like $(fb.username)" in rows[1] and 'aria-invalid="true"' in rows[1]
    assert 'value="not an expression"' in rows[1], "the operator's input is kept"
    assert len(runtime.config.integration("Lab").custom_attributes) == 1


def test_every_error_of_the_settings_form_is_in_one_answer(operator, runtime):
    """Field errors and the cross-check with the finesse: section (an ECE integration needs ECE's chat
    MRD there) are told together, before any test calls ECE."""
    from tests.operations.blending_data import make_section

    make_section(runtime)  # no chat MRD: fine while no integration is ECE
    admin = operator("admin")
    answer = admin.post(
        "/admin/integrations/new", data=settings_form(admin.csrf, "", name="no spaces", max_in_flight="0")
    )
    assert answer.status_code == 422
    page = text(answer)
    assert re.search(r'id="name-error">use 1-64 letters', page)
    assert re.search(r'id="base_url-error">an ECE integration needs base_url', page)
    assert re.search(r'id="max_in_flight-error">1 to 1000 calls', page)
    assert re.search(r'id="type-error">ECE integration &#39;no spaces&#39; routes chats .*finesse.chat_mrd_id', page)
    assert runtime.overrides.raw_items("integrations") == {}
