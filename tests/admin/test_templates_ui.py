"""The message template editor pages: the origin matrix per scope, editing with a no-JS preview,
errors shown with their line, save, reset, entry point scope and read-only provisioned ones."""

from __future__ import annotations

import re

EP_QUERY = "integration=Helpdesk&entry_point=Billing"


def cell_html(page: str, message_type: str, locale: str) -> str:
    match = re.search(rf'<td id="cell-{message_type}-{locale}"[^>]*>(.*?)</td>', page, re.S)
    assert match, f"no cell {message_type}/{locale}"
    return match.group(0)


def test_the_matrix_shows_where_each_text_comes_from(operator):
    page = operator("viewer").get("/admin/templates/").get_data(as_text=True)
    welcome = cell_html(page, "welcome", "es")
    assert "shipped file" in welcome and "message_templates/es/welcome.txt.j2" in welcome
    assert 'href="/admin/templates/es/welcome"' in welcome
    assert "Another locale" not in page, "a viewer cannot add a locale"


def test_an_editor_previews_without_saving_then_saves(operator, runtime):
    editor = operator("editor")
    url = "/admin/templates/en/agent_assigned"
    page = editor.get(url).get_data(as_text=True)
    assert "You are now chatting with CiscoAgent1." in page, "the preview of the text in effect"
    assert "agent.name" in page and "CiscoAgent1" in page, "the variables with their sample values"

    preview = editor.post(
        url, data={"csrf_token": editor.csrf, "action": "preview", "text": "Hi from {{ agent.name }}"}
    )
    assert preview.status_code == 200 and "Hi from CiscoAgent1" in preview.get_data(as_text=True)
    assert runtime.overrides.templates() == {}, "a preview saves nothing"

    saved = editor.post(url, data={"csrf_token": editor.csrf, "action": "save", "text": "Hi from {{ agent.name }}"})
    assert saved.status_code == 302 and saved.headers["Location"] == url, "saving stays on the template"
    assert runtime.overrides.templates() == {"en": {"agent_assigned": "Hi from {{ agent.name }}"}}
    page = editor.get(url).get_data(as_text=True)
    assert "agent_assigned (en, deployment-wide) saved" in page
    assert "In effect: <strong>deployment override (en)</strong>" in page, "the override named once"
    assert page.count("deployment override") == 1, page
    matrix = editor.get("/admin/templates/").get_data(as_text=True)
    cell = cell_html(matrix, "agent_assigned", "en")
    assert "deployment override (en)" in cell and cell.count("deployment override") == 1, cell


def test_an_error_is_shown_with_its_line_and_the_text_is_kept(operator, runtime):
    editor = operator("editor")
    text = "Hello\n{{ agent.name }\nBye"
    answer = editor.post(
        "/admin/templates/en/welcome", data={"csrf_token": editor.csrf, "action": "save", "text": text}
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "Line 2: " in page and '<span class="line-no">2</span> {{ agent.name }' in page
    assert "Not saved: the template has an error on line 2." in page
    assert "Hello\n{{ agent.name }\nBye</textarea>" in page
    assert runtime.overrides.templates() == {}


def test_saving_empty_turns_the_message_off_and_reset_brings_the_file_back(operator, runtime):
    editor = operator("editor")
    editor.post("/admin/templates/en/welcome", data={"csrf_token": editor.csrf, "action": "save", "text": ""})
    matrix = editor.get("/admin/templates/").get_data(as_text=True)
    assert "off" in cell_html(matrix, "welcome", "en")
    page = editor.get("/admin/templates/en/welcome").get_data(as_text=True)
    assert "Reset to default" in page and "nothing: this message would not be sent" in page

    reset = editor.post("/admin/templates/en/welcome/reset", data={"csrf_token": editor.csrf}, follow_redirects=True)
    assert "is back to the shipped file: message_templates/en/welcome.txt.j2" in reset.get_data(as_text=True)
    assert runtime.overrides.templates() == {}


def test_an_entry_point_scope_edits_that_entry_points_messages(operator, runtime, helpdesk):
    editor = operator("editor")
    matrix = editor.get(f"/admin/templates/?{EP_QUERY}").get_data(as_text=True)
    assert "Entry point Helpdesk / Billing" in matrix
    assert f'href="/admin/templates/es/welcome?{EP_QUERY.replace("&", "&amp;")}"' in cell_html(matrix, "welcome", "es")
    saved = editor.post(
        f"/admin/templates/es/welcome?{EP_QUERY}",
        data={"csrf_token": editor.csrf, "action": "save", "text": "Hola {{ entry_point.name }}", "all_locales": "1"},
    )
    assert saved.status_code == 302
    assert saved.headers["Location"] == f"/admin/templates/es/welcome?{EP_QUERY}"
    entry_point = runtime.overrides.raw("integrations", "Helpdesk")["entry_points"][0]
    assert entry_point["messages"] == {"welcome": "Hola {{ entry_point.name }}"}
    page = editor.get(f"/admin/templates/en/welcome?{EP_QUERY}").get_data(as_text=True)
    assert "Hola Billing" in page and "for every locale" in page


def test_the_scope_picker_redirects_to_the_entry_point(operator, helpdesk):
    answer = operator("viewer").get("/admin/templates/", query_string={"scope": "Helpdesk|Billing"})
    assert answer.status_code == 302 and answer.headers["Location"] == f"/admin/templates/?{EP_QUERY}"
    back = operator("viewer").get("/admin/templates/", query_string={"scope": ""})
    assert back.headers["Location"] == "/admin/templates/"


def test_a_provisioned_entry_point_is_read_only_naming_its_file(operator, runtime):
    editor = operator("editor")
    url = "/admin/templates/en/welcome?integration=TestRouter&entry_point=Support"
    page = editor.get(url).get_data(as_text=True)
    assert "defined in" in page and "channels.yaml" in page
    assert "readonly" in page and 'value="save"' not in page
    refused = editor.post(url, data={"csrf_token": editor.csrf, "action": "save", "text": "Hi"})
    assert refused.status_code == 422 and "read-only here" in refused.get_data(as_text=True)
    assert runtime.overrides.raw_items("integrations") == {}


def test_another_locale_opens_its_editor_and_a_viewer_cannot_save(operator, runtime):
    editor = operator("editor")
    go = editor.get("/admin/templates/", query_string={"locale": "fr", "type": "welcome"})
    assert go.headers["Location"] == "/admin/templates/fr/welcome"
    viewer = operator("viewer")
    refused = viewer.post("/admin/templates/en/welcome", data={"csrf_token": viewer.csrf, "action": "save", "text": ""})
    assert refused.status_code == 403
    assert 'value="save"' not in viewer.get("/admin/templates/en/welcome").get_data(as_text=True)
    assert runtime.overrides.templates() == {}


def test_send_as_test_is_absent_outside_the_sandbox(operator):
    page = operator("editor").get("/admin/templates/en/welcome").get_data(as_text=True)
    assert "Send as test" not in page


def test_a_template_error_is_told_beside_the_forms_other_errors(operator, runtime):
    editor = operator("editor")
    form = {"csrf_token": editor.csrf, "action": "save", "text": "Hello {{ agent.name }", "all_locales": "1"}
    answer = editor.post("/admin/templates/en/welcome", data=form)
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "all_locales: only entry point overrides can serve every locale" in page
    assert "Line 1: " in page, "the template's own error is shown too"
    assert runtime.overrides.templates() == {}
