"""The import / export page: provisioned items with their file, YAML downloads, import with a diff."""

from __future__ import annotations

import re

import yaml

from tests.operations.test_import_export import ASSET, ECE, document, rule

NEW = document(
    integrations=[{**ECE, "client_secret": "ece-secret"}],
    assets=[{**ASSET, "auth_token": "sms-token"}],
    rules=[rule("new-rule")],
)


def test_the_page_lists_every_item_with_its_file_read_only(operator):
    page = operator("viewer").get("/admin/transfer/").get_data(as_text=True)
    for name in ("TestRouter", "sms/test-sms", "inapp/test-inapp", "sms-sales", "whatsapp"):
        assert f"<td>{name}</td>" in page, name
    assert page.count("tests/config/channels.yaml") == 1 + 5 + 6
    assert "read-only" in page
    assert "Check and show the changes" not in page, "a viewer cannot import"


def test_export_downloads_yaml_without_secrets(operator):
    viewer = operator("viewer")
    everything = viewer.get("/admin/transfer/export")
    assert everything.mimetype == "application/yaml"
    assert everything.headers["Content-Disposition"] == 'attachment; filename="connector.yaml"'
    text = everything.get_data(as_text=True)
    assert "twilio-test-token" not in text and "${TEST_SMS_AUTH_TOKEN}" in text
    assert set(yaml.safe_load(text)) == {"integrations", "assets", "rules"}
    one = yaml.safe_load(viewer.get("/admin/transfer/export?kind=integrations&name=TestRouter").get_data(as_text=True))
    assert [i["name"] for i in one["integrations"]] == ["TestRouter"]
    assert viewer.get("/admin/transfer/export?kind=rules&name=nope").status_code == 404
    assert viewer.get("/admin/transfer/export?kind=bogus").status_code == 400


def test_import_shows_the_diff_writes_nothing_then_applies(operator, runtime):
    admin = operator("admin")
    preview = admin.post("/admin/transfer/import", data={"csrf_token": admin.csrf, "yaml": NEW})
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "3 to add" in page and "NewECE" in page and "new-rule" in page
    assert runtime.overrides.raw_items("rules") == {}, "nothing written before Apply"
    checked = re.search(r'name="checked" value="([0-9a-f]+)"', page)[1]

    applied = admin.post(
        "/admin/transfer/import/apply", data={"csrf_token": admin.csrf, "yaml": NEW, "checked": checked}
    )
    assert applied.status_code == 302
    assert set(runtime.overrides.raw_items("rules")) == {"new-rule"}
    assert "Imported: 3 item(s) written" in admin.get("/admin/transfer/").get_data(as_text=True)


def test_apply_refuses_text_that_changed_after_the_check(operator, runtime):
    admin = operator("admin")
    page = admin.post("/admin/transfer/import", data={"csrf_token": admin.csrf, "yaml": NEW}).get_data(as_text=True)
    checked = re.search(r'name="checked" value="([0-9a-f]+)"', page)[1]
    edited = NEW.replace("2001", "2002")
    answer = admin.post(
        "/admin/transfer/import/apply", data={"csrf_token": admin.csrf, "yaml": edited, "checked": checked}
    )
    assert answer.status_code == 409 and "changed since it was checked" in answer.get_data(as_text=True)
    assert runtime.overrides.raw_items("integrations") == {}


def test_an_uploaded_file_with_a_problem_is_shown_and_blocks_apply(operator, runtime):
    import io

    admin = operator("admin")
    bad = NEW.replace("+15550009999", "555")
    preview = admin.post(
        "/admin/transfer/import",
        data={"csrf_token": admin.csrf, "file": (io.BytesIO(bad.encode()), "bad.yaml")},
        content_type="multipart/form-data",
    )
    page = preview.get_data(as_text=True)
    assert "assets[0] (&#39;new-sms&#39;): field &#39;number&#39;" in page
    assert ">Apply<" not in page
    checked = re.search(r'name="checked" value="([0-9a-f]+)"', page)[1]
    answer = admin.post(
        "/admin/transfer/import/apply", data={"csrf_token": admin.csrf, "yaml": bad, "checked": checked}
    )
    assert answer.status_code == 422
    assert runtime.overrides.raw_items("integrations") == {}


def test_only_an_admin_imports(operator, runtime):
    editor = operator("editor")
    answer = editor.post("/admin/transfer/import", data={"csrf_token": editor.csrf, "yaml": NEW})
    assert answer.status_code == 403
    assert operator("admin").post("/admin/transfer/import", data={"yaml": NEW}).status_code == 400, "CSRF"


def test_a_blocked_import_never_shows_an_item_as_added(operator, runtime):
    """Above the table the page says nothing can be imported; the table agrees (blocked, not added),
    and the file's schema errors and unknown references are listed together."""
    admin = operator("admin")
    text = document(
        integrations=[{**ECE, "client_secret": "ece-secret"}],
        assets=[{**ASSET, "auth_token": "sms-token"}],
        rules=[rule("r1"), rule("r2", asset="ghost", start="2026-05-01", end="2026-04-01")],
    )
    page = admin.post("/admin/transfer/import", data={"csrf_token": admin.csrf, "yaml": text}).get_data(as_text=True)
    assert "2 problem(s): nothing can be imported until they are fixed" in page
    assert "rules[1] (&#39;r2&#39;): field &#39;end&#39;: end is before start" in page
    assert "rules[1] (&#39;r2&#39;): field &#39;asset&#39;: no sms asset named &#39;ghost&#39;" in page
    r1 = re.search(r"<tr>\s*<td>rules <strong>r1</strong></td>.*?</tr>", page, re.S)[0]
    assert ">blocked<" in r1 and "would be added once the problems above are fixed" in r1
    assert ">added<" not in page and ">Apply<" not in page
    assert "Nothing below is imported until the problems above are fixed; then: 3 to add" in page


def test_a_top_level_list_is_told_in_words(operator):
    admin = operator("admin")
    listed = "- name: r1\n  channel: sms\n"
    page = admin.post("/admin/transfer/import", data={"csrf_token": admin.csrf, "yaml": listed}).get_data(True)
    assert "the file&#39;s top level is a list; expected a mapping with one or more of integrations:, assets:" in page
    assert "Unknown field" not in page
