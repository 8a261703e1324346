"""The rules page: evaluation order, moving (provisioned rules too), UI rules' forms with inline
errors, and the tester a viewer can use (tests/config/channels.yaml is the configuration)."""

from __future__ import annotations

import re

PROVISIONED = ["sms-sales", "sms-all", "messenger", "whatsapp", "apple", "inapp"]


def form(csrf: str, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "name": "sms-vip",
        "channel": "sms",
        "event": "mo",
        "asset": "test-sms",
        "keyword": "VIP",
        "forward_to": "TestRouter",
        "entry_point": "Sales",
        "start": "",
        "end": "",
        "status": "active",
        **fields,
    }


def order_on_page(page: str) -> list[str]:
    return re.findall(r'<tr id="rule-([^"]+)"', page)


def test_the_page_lists_rules_in_evaluation_order_with_their_file(operator):
    page = operator("viewer").get("/admin/rules/").get_data(as_text=True)
    assert order_on_page(page) == PROVISIONED
    assert "defined in " in page and "channels.yaml" in page
    assert "TestRouter / Sales" in page and "SALES" in page
    assert "Move sms-sales up" not in page and "New rule" not in page, "a viewer gets no write controls"


def test_an_editor_moves_a_provisioned_rule_down_and_up(operator, runtime):
    editor = operator("editor")
    page = editor.get("/admin/rules/").get_data(as_text=True)
    assert "Move sms-sales down" in page and "Edit sms-sales" not in page, "movable, not editable"
    answer = editor.post("/admin/rules/sms-sales/move", data={"csrf_token": editor.csrf, "direction": "down"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("#rule-sms-sales")
    assert order_on_page(editor.get("/admin/rules/").get_data(as_text=True))[:2] == ["sms-all", "sms-sales"]
    assert runtime.overrides.rule_order()[:2] == ["sms-all", "sms-sales"]
    editor.post("/admin/rules/sms-sales/move", data={"csrf_token": editor.csrf, "direction": "up"})
    assert order_on_page(editor.get("/admin/rules/").get_data(as_text=True)) == PROVISIONED


def test_moving_needs_the_csrf_token_and_the_editor_role(operator, runtime):
    editor, viewer = operator("editor"), operator("viewer")
    assert editor.post("/admin/rules/sms-sales/move", data={"direction": "down"}).status_code == 400
    refused = viewer.post("/admin/rules/sms-sales/move", data={"csrf_token": viewer.csrf, "direction": "down"})
    assert refused.status_code == 403
    assert runtime.overrides.rule_order() == []


def test_create_edit_and_delete_a_ui_rule(operator, runtime):
    editor = operator("editor")
    created = editor.post("/admin/rules/new", data=form(editor.csrf, start="2026-01-01"))
    assert created.status_code == 302, created.get_data(as_text=True)
    page = editor.get("/admin/rules/").get_data(as_text=True)
    assert order_on_page(page)[-1] == "sms-vip" and "Edit sms-vip" in page
    assert runtime.overrides.raw("rules", "sms-vip")["start"] == "2026-01-01"

    edit_page = editor.get("/admin/rules/sms-vip/edit").get_data(as_text=True)
    assert 'value="VIP"' in edit_page and 'value="2026-01-01"' in edit_page
    saved = editor.post("/admin/rules/sms-vip/edit", data=form(editor.csrf, keyword="GOLD", status="inactive"))
    assert saved.status_code == 302
    stored = runtime.overrides.raw("rules", "sms-vip")
    assert stored["keyword"] == "GOLD" and stored["status"] == "inactive" and "start" not in stored

    deleted = editor.post("/admin/rules/sms-vip/delete", data={"csrf_token": editor.csrf})
    assert deleted.status_code == 302
    assert "sms-vip" not in order_on_page(editor.get("/admin/rules/").get_data(as_text=True))


def test_validation_errors_show_next_to_their_field_and_nothing_is_saved(operator, runtime):
    editor = operator("editor")
    answer = editor.post(
        "/admin/rules/new",
        data=form(editor.csrf, event="incoming_message", entry_point="Nope", start="2026-05-01", end="2026-04-01"),
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert re.search(r'id="err-event">sms rules use event &#39;mo&#39;', page)
    assert 'aria-describedby="err-event"' in page
    assert runtime.overrides.raw_items("rules") == {}
    wrong_target = editor.post("/admin/rules/new", data=form(editor.csrf, entry_point="Nope"))
    assert re.search(
        r'id="err-action-entry_point">integration &#39;TestRouter&#39; has no entry point', wrong_target.get_data(True)
    )
    assert 'value="VIP"' in wrong_target.get_data(as_text=True), "the operator's input is kept"


def test_a_provisioned_rule_cannot_be_edited_or_deleted(operator):
    editor = operator("editor")
    answer = editor.get("/admin/rules/sms-sales/edit", follow_redirects=True)
    assert "is defined in" in answer.get_data(as_text=True) and "read-only" in answer.get_data(as_text=True)
    editor.post("/admin/rules/sms-sales/delete", data={"csrf_token": editor.csrf})
    page = editor.get("/admin/rules/").get_data(as_text=True)
    assert "sms-sales" in order_on_page(page) and "read-only" in page


def test_a_viewer_uses_the_tester(operator):
    page = operator("viewer").get(
        "/admin/rules/", query_string={"channel": "sms", "asset": "test-sms", "text": "hello", "date": "2026-02-01"}
    )
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Rule &#39;sms-all&#39; matches: the message is forwarded to TestRouter / Support." in text
    assert "first word is not &#39;SALES&#39;" in text
    assert "rule &#39;sms-all&#39; matched first" in text, "later rules are shown as not reached"
    assert "on 2026-02-01" in text


def test_the_tester_answer_follows_the_order(operator):
    editor = operator("editor")
    query = {"channel": "sms", "asset": "test-sms", "text": "SALES now"}
    assert "Rule &#39;sms-sales&#39; matches" in editor.get("/admin/rules/", query_string=query).get_data(True)
    editor.post("/admin/rules/sms-all/move", data={"csrf_token": editor.csrf, "direction": "up"})
    after = editor.get("/admin/rules/", query_string=query).get_data(as_text=True)
    assert "Rule &#39;sms-all&#39; matches" in after
    assert "rule &#39;sms-all&#39; matched first" in after


def test_the_tester_names_an_unknown_asset_and_a_bad_date(operator):
    viewer = operator("viewer")
    page = viewer.get("/admin/rules/", query_string={"channel": "sms", "asset": "ghost"}).get_data(as_text=True)
    assert "no sms asset named &#39;ghost&#39;: use one of test-sms" in page
    bad = viewer.get("/admin/rules/", query_string={"channel": "sms", "asset": "test-sms", "date": "soon"})
    assert "use a date like 2026-05-01" in bad.get_data(as_text=True)


def test_every_error_of_the_form_is_in_one_answer(operator, runtime):
    """Fields, the rule's own consistency (an end before its start) and what it refers to are told
    together: an operator never fixes one error to be shown the next."""
    editor = operator("editor")
    answer = editor.post(
        "/admin/rules/new",
        data=form(
            editor.csrf,
            name="no spaces allowed",
            event="incoming_message",
            asset="ghost",
            entry_point="Nope",
            start="2026-05-01",
            end="2026-04-01",
        ),
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert re.search(r'id="err-name">use 1-64 letters', page)
    assert re.search(r'id="err-event">sms rules use event &#39;mo&#39;', page)
    assert re.search(r'id="err-asset">no sms asset named &#39;ghost&#39;', page)
    assert re.search(r'id="err-action-entry_point">integration &#39;TestRouter&#39; has no entry point', page)
    assert re.search(r'id="err-end">end is before start', page)
    assert runtime.overrides.raw_items("rules") == {}


def test_a_taken_name_is_told_beside_the_other_errors(operator, runtime):
    editor = operator("editor")
    assert editor.post("/admin/rules/new", data=form(editor.csrf)).status_code == 302
    again = editor.post("/admin/rules/new", data=form(editor.csrf, start="2026-05-01", end="2026-04-01"))
    assert again.status_code == 422
    page = again.get_data(as_text=True)
    assert re.search(r'id="err-name">a rule named &#39;sms-vip&#39; already exists', page)
    assert re.search(r'id="err-end">end is before start', page)
