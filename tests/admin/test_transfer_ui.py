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
