"""The Flows page: list, a flow's steps as a numbered list, the YAML editor with every error beside
its field, provisioned flows read-only, a flow in use not deleted, and the rule and entry point forms'
flow select."""

from __future__ import annotations

import html
import re

import pytest

from tests.flows.editing import PROVISIONED_FLOW, flow, rule, with_provisioned_flow

STEPS = """- name: order
  type: ask
  question: ask_order_number
  answer: regex
  pattern: '[A-Z]{2}[0-9]{6}'
  attribute: order_number
"""


@pytest.fixture
def settings(settings, tmp_path):
    return with_provisioned_flow(settings, tmp_path)


def text(answer) -> str:
    return html.unescape(answer.get_data(as_text=True))


def test_the_list_shows_provisioned_flows_read_only_and_is_in_the_menu(operator):
    editor = operator("editor")
    page = text(editor.get("/admin/flows/"))
    assert 'href="/admin/flows/"' in page and "defined in" in page and "flows.yaml" in page
    assert f"/admin/flows/{PROVISIONED_FLOW}/edit" not in page, "no Edit for a provisioned flow"
    shown = text(editor.get(f"/admin/flows/{PROVISIONED_FLOW}"))
    assert '<ol class="flow-steps"' in shown and "choices: Quote, Other" in shown
    refused = editor.get(f"/admin/flows/{PROVISIONED_FLOW}/edit", follow_redirects=True)
    assert "is read-only here" in text(refused)


def test_the_editor_lists_step_kinds_and_their_fields_from_the_schema(operator):
    page = text(operator("editor").get("/admin/flows/new"))
    assert 'id="kind-ask"' in page and "<code>attribute</code>" in page and "<code>regex</code>" in page
    assert 'id="kind-survey"' in page or "survey" not in page, "the flow's other blocks are listed too"
    assert '<textarea id="steps" name="steps" class="code"' in page


def test_creating_a_flow_saves_it_and_shows_its_steps(operator, runtime):
    editor = operator("editor")
    answer = editor.post(
        "/admin/flows/new",
        data={
            "name": "intake",
            "steps": STEPS,
            "on_fail": "route",
            "closing": "",
            "more": "",
            "csrf_token": editor.csrf,
        },
    )
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/flows/intake")
    assert runtime.overrides.raw("flows", "intake")["steps"][0]["pattern"] == "[A-Z]{2}[0-9]{6}"
    page = text(editor.get("/admin/flows/intake"))
    assert "<strong>order</strong>" in page and "pattern: [A-Z]{2}[0-9]{6}" in page


def test_several_errors_are_shown_at_once_beside_their_fields(operator, runtime):
    editor = operator("editor")
    runtime.overrides.save("flows", flow(), runtime.provisioned, create=True)
    bad_steps = STEPS.replace("attribute: order_number", "attribute: order_number\n  attempts: 0").replace(
        "question: ask_order_number", "question: ask_missing"
    )
    answer = editor.post(
        "/admin/flows/intake/edit",
        data={"steps": bad_steps, "on_fail": "sometimes", "closing": "", "more": "", "csrf_token": editor.csrf},
    )
    assert answer.status_code == 422
    page = text(answer)
    assert "step 1: attempts: Must be greater than or equal to 1" in page
    assert "step 1: question: no template 'ask_missing'" in page
    assert 'aria-invalid="true" aria-describedby="err-on_fail-1' in page
    assert "ask_missing" in page, "the text is kept as written"
    assert "The steps, in order" not in page, "no numbered list while invalid"
    assert runtime.overrides.raw("flows", "intake")["steps"][0]["question"] == "ask_order_number", "nothing written"


def test_yaml_that_does_not_parse_is_named_with_its_line(operator, runtime):
    editor = operator("editor")
    answer = editor.post(
        "/admin/flows/new",
        data={
            "name": "bad name!",
            "steps": "- name: [x\n",
            "on_fail": "route",
            "more": "survey: 3",
            "csrf_token": editor.csrf,
        },
    )
    assert answer.status_code == 422
    page = text(answer)
    assert "not valid YAML: line 2" in page
    assert "use 1-64 letters, digits, _ . -" in page, "the name's error beside the YAML one"
    assert "survey" in page and not runtime.overrides.raw_items("flows")


def test_a_flow_in_use_is_not_deleted_and_the_message_names_the_rule(operator, runtime):
    editor = operator("editor")
    runtime.overrides.save("flows", flow(), runtime.provisioned, create=True)
    runtime.overrides.save("rules", rule(), runtime.provisioned, create=True)
    runtime.config_changed()
    answer = editor.post("/admin/flows/intake/delete", data={"csrf_token": editor.csrf}, follow_redirects=True)
    assert "flow 'intake' is used by rule sms-vip: change them first" in text(answer)
    assert runtime.overrides.raw("flows", "intake")
    runtime.overrides.delete("rules", "sms-vip", runtime.provisioned)
    runtime.config_changed()
    answer = editor.post("/admin/flows/intake/delete", data={"csrf_token": editor.csrf}, follow_redirects=True)
    assert "Flow intake deleted." in text(answer) and not runtime.overrides.raw_items("flows")


def test_the_rule_form_chooses_a_flow_from_a_select(operator, runtime):
    editor = operator("editor")
    runtime.overrides.save("flows", flow(), runtime.provisioned, create=True)
    runtime.config_changed()
    form = text(editor.get("/admin/rules/new"))
    select = r'<select id="flow" name="flow"[^>]*>\s*<option value="">none[^<]*</option>\s*'
    assert re.search(select + "<option >provisioned-intake</option><option >intake</option>", form)
    data = {
        "name": "sms-vip", "channel": "sms", "event": "mo", "asset": "test-sms", "keyword": "VIP",
        "forward_to": "TestRouter", "entry_point": "Sales", "flow": "intake", "status": "active",
        "csrf_token": editor.csrf,
    }  # fmt: skip
    assert editor.post("/admin/rules/new", data=data).status_code == 302
    assert runtime.overrides.raw("rules", "sms-vip")["action"]["flow"] == "intake"
    assert "flow intake" in text(editor.get("/admin/rules/"))


def test_a_viewer_sees_flows_but_no_form(operator, runtime):
    runtime.overrides.save("flows", flow(), runtime.provisioned, create=True)
    runtime.config_changed()
    viewer = operator("viewer")
    for url in ("/admin/flows/", "/admin/flows/intake"):
        page = text(viewer.get(url))
        assert 'method="post"' not in page.replace('method="post" action="/admin/logout"', ""), url
    assert viewer.get("/admin/flows/new").status_code == 403
    assert viewer.get("/admin/flows/intake/edit").status_code == 403


def test_the_entry_point_form_chooses_a_flow_and_keeps_it(operator, runtime):
    admin = operator("admin")
    runtime.overrides.save(
        "integrations",
        {
            "name": "Lab",
            "type": "ece",
            "base_url": "http://127.0.0.1:9/ece",
            "client_key": "key",
            "client_secret": "secret",
            "entry_points": [{"name": "Care", "id": "1001", "flow": PROVISIONED_FLOW}],
        },
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()
    form = text(admin.get("/admin/integrations/Lab/entry-points/Care/edit"))
    assert re.search(rf"<option selected>{PROVISIONED_FLOW}</option>", form)
    data = {
        "name": "Care", "id": "1001", "enabled": "on", "max_wait_seconds": "120", "unavailable_action": "discard",
        "unavailable_after_seconds": "300", "default_locale": "en", "flow": "", "csrf_token": admin.csrf,
    }  # fmt: skip
    assert admin.post("/admin/integrations/Lab/entry-points/Care/edit", data=data).status_code == 302
    assert "flow" not in runtime.overrides.raw("integrations", "Lab")["entry_points"][0]
    data["flow"] = "ghost"
    answer = admin.post("/admin/integrations/Lab/entry-points/Care/edit", data=data)
    assert answer.status_code == 422 and "no flow named &#39;ghost&#39;" in answer.get_data(as_text=True)
