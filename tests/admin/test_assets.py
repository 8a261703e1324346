"""Assets in the operator UI: the five channels' forms from their schemas, webhook URLs, the Meta
verify token, secrets masked and kept, provisioned assets read-only."""

from __future__ import annotations

import re

import pytest

from connector.config.overrides import MASK

BASE = "https://connector.example.com"

FORMS = {
    "sms": {"number": "+15550009999", "account_sid": "AClab0000", "auth_token": "sms-secret-token"},
    "messenger": {
        "page_id": "999",
        "app_secret": "meta-app-secret",
        "page_access_token": "page-secret-token",
        "verify_token": "lab-verify",
    },
    "whatsapp": {
        "phone_number_id": "888",
        "app_secret": "wa-app-secret",
        "access_token": "wa-secret-token",
        "verify_token": "lab-wa-verify",
    },
    "apple": {"business_id": "biz-1", "msp_id": "msp-1", "secret": "c2VjcmV0LWtleS1mb3ItbGFi"},
    "inapp": {"app_id": "lab-app", "secret": "inapp-secret-0123456789", "delivery_url": "https://app.example.com/in"},
}
SECRETS = {"auth_token", "app_secret", "page_access_token", "access_token", "secret"}


def text(answer) -> str:
    return answer.get_data(as_text=True)


def create(admin, channel: str, name: str = "lab", **overrides: str):
    data = {"csrf_token": admin.csrf, "name": name, **FORMS[channel], **overrides}
    return admin.post(f"/admin/assets/new?channel={channel}", data=data)


def test_the_list_shows_every_asset_with_its_webhook_url_and_file(operator, runtime):
    page = text(operator("viewer").get("/admin/assets/"))
    source = runtime.provisioned.assets[0].source
    for asset in runtime.provisioned.assets:
        assert f"{BASE}/webhooks/{asset.channel}/{asset.name}" in page
    assert f"defined in {source}" in page
    assert "/edit" not in page and "New asset" not in page


def test_new_asset_asks_for_the_channel_first(operator):
    page = text(operator("admin").get("/admin/assets/new"))
    for label in ("SMS (Twilio)", "Facebook Messenger", "WhatsApp Cloud API", "Apple Messages for Business", "In-app"):
        assert label in page
    assert 'name="channel"' in page and 'type="radio"' in page


@pytest.mark.parametrize("channel", list(FORMS))
def test_each_channel_form_shows_its_schema_fields(operator, channel):
    page = text(operator("admin").get(f"/admin/assets/new?channel={channel}"))
    for field in FORMS[channel]:
        assert f'name="{field}"' in page
        if field in SECRETS:
            assert re.search(rf'name="{field}" type="password"', page), field
    others = {f for c, fields in FORMS.items() if c != channel for f in fields} - set(FORMS[channel])
    assert not any(f'name="{f}"' in page for f in others), "only the chosen channel's fields"


@pytest.mark.parametrize("channel", list(FORMS))
def test_create_each_channel_and_see_its_webhook_url_with_secrets_masked(operator, runtime, channel):
    admin = operator("admin")
    answer = create(admin, channel)
    assert answer.status_code == 302, text(answer)
    raw = runtime.overrides.raw("assets", f"{channel}/lab")
    assert {k: raw[k] for k in FORMS[channel]} == FORMS[channel]
    page = text(admin.get(f"/admin/assets/{channel}/lab"))
    assert f'value="{BASE}/webhooks/{channel}/lab"' in page
    for field, value in FORMS[channel].items():
        if field in SECRETS:
            assert value not in page, field
    assert MASK in page


def test_sms_shows_the_status_callback_url_and_meta_the_verify_token(operator):
    admin = operator("admin")
    create(admin, "sms")
    create(admin, "messenger")
    sms = text(admin.get("/admin/assets/sms/lab"))
    assert f'value="{BASE}/webhooks/sms/lab/status"' in sms
    messenger = text(admin.get("/admin/assets/messenger/lab"))
    assert 'id="verify-token" readonly value="lab-verify"' in messenger
    assert "/status" not in messenger


def test_an_edit_keeps_secrets_left_empty_and_never_shows_them(operator, runtime):
    admin = operator("admin")
    create(admin, "whatsapp")
    form = text(admin.get("/admin/assets/whatsapp/lab/edit"))
    assert "wa-secret-token" not in form and "wa-app-secret" not in form
    assert "leave empty to keep it" in form
    data = {"csrf_token": admin.csrf, **FORMS["whatsapp"], "access_token": "", "app_secret": "", "waba_id": "42"}
    assert admin.post("/admin/assets/whatsapp/lab/edit", data=data).status_code == 302
    raw = runtime.overrides.raw("assets", "whatsapp/lab")
    assert raw["access_token"] == "wa-secret-token" and raw["app_secret"] == "wa-app-secret"
    assert raw["waba_id"] == "42"


def test_invalid_fields_are_shown_inline(operator, runtime):
    admin = operator("admin")
    answer = create(admin, "sms", number="5550000", name="bad name")
    assert answer.status_code == 422
    page = text(answer)
    assert 'id="number-error"' in page and 'id="name-error"' in page
    assert 'value="5550000"' in page, "the operator's input is kept"
    assert runtime.overrides.raw_items("assets") == {}


def test_a_provisioned_asset_is_read_only(operator, runtime):
    admin = operator("admin")
    page = text(admin.get("/admin/assets/sms/test-sms"))
    assert "defined in" in page and "Edit asset" not in page
    assert "twilio-test-token" not in page
    assert admin.get("/admin/assets/sms/test-sms/edit").status_code == 404
    admin.post("/admin/assets/sms/test-sms/delete", data={"csrf_token": admin.csrf})
    assert runtime.config.asset("sms", "test-sms") is not None


def test_delete_is_refused_while_a_rule_uses_it(operator, runtime):
    admin = operator("admin")
    create(admin, "inapp")
    runtime.overrides.save(
        "rules",
        {
            "name": "lab-inapp",
            "channel": "inapp",
            "event": "incoming_message",
            "asset": "lab",
            "action": {"forward_to": "TestRouter", "entry_point": "Support"},
        },
        runtime.provisioned,
        create=True,
    )
    answer = admin.post("/admin/assets/inapp/lab/delete", data={"csrf_token": admin.csrf}, follow_redirects=True)
    assert "used by rule(s) lab-inapp" in text(answer)
    runtime.overrides.delete("rules", "lab-inapp", runtime.provisioned)
    assert admin.post("/admin/assets/inapp/lab/delete", data={"csrf_token": admin.csrf}).status_code == 302
    assert runtime.overrides.raw_items("assets") == {}


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_an_admin_changes_assets(operator, runtime, role):
    client = operator(role)
    assert create(client, "sms").status_code == 403
    assert runtime.overrides.raw_items("assets") == {}


def test_an_unknown_channel_is_404(operator):
    assert operator("admin").get("/admin/assets/new?channel=fax").status_code == 404
    assert operator("viewer").get("/admin/assets/fax/x").status_code == 404


def test_every_error_of_an_asset_is_in_one_answer(operator, runtime):
    """The Apple secret's base64 check is told beside the field errors, not after they are fixed."""
    admin = operator("admin")
    answer = create(admin, "apple", name="no spaces", secret="not base64!", api_base_url="ftp://apple.example.com")
    assert answer.status_code == 422
    page = text(answer)
    assert re.search(r'id="name-error">use 1-64 letters', page)
    assert re.search(r'id="secret-error">must be base64, as Apple issues it', page)
    assert 'id="api_base_url-error"' in page
    assert runtime.overrides.raw_items("assets") == {}
