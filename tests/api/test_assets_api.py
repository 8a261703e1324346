"""/api/v1/assets: CRUD with the channel schemas, webhook URLs, secrets masked, provisioned read-only."""

from __future__ import annotations

import pytest

from connector.config.overrides import MASK

URL = "/api/v1/assets"
BASE = "https://connector.example.com"


def sms(**overrides) -> dict:
    item = {
        "name": "lab-sms",
        "channel": "sms",
        "number": "+15550009999",
        "account_sid": "AClab",
        "auth_token": "sms-secret-token",
    }
    item.update(overrides)
    return item


def test_list_shows_every_asset_with_urls_and_source(api_client, runtime):
    answer = api_client("viewer").get(URL)
    assert answer.status_code == 200
    by_key = {(a["channel"], a["name"]): a for a in answer.json}
    sms_asset = by_key[("sms", "test-sms")]
    assert sms_asset["webhook_url"] == f"{BASE}/webhooks/sms/test-sms"
    assert sms_asset["status_url"] == f"{BASE}/webhooks/sms/test-sms/status"
    assert sms_asset["auth_token"] == MASK and sms_asset["read_only"] is True
    assert sms_asset["source"] == runtime.provisioned.asset("sms", "test-sms").source
    messenger = by_key[("messenger", "test-messenger")]
    assert messenger["verify_token"] == "messenger-verify-token", "Meta's console needs it: not masked"
    assert messenger["app_secret"] == MASK and messenger["page_access_token"] == MASK
    assert messenger["status_url"] is None


def test_create_get_put_delete(api_client, runtime):
    admin = api_client("admin")
    created = admin.post(URL, json=sms())
    assert created.status_code == 201, created.json
    assert created.json["auth_token"] == MASK and created.json["api_base_url"] == "https://api.twilio.com"
    got = admin.get(f"{URL}/sms/lab-sms").json
    assert got["webhook_url"] == f"{BASE}/webhooks/sms/lab-sms"
    changed = admin.put(f"{URL}/sms/lab-sms", json=sms(auth_token=MASK, number="+15550008888"))
    assert changed.status_code == 200
    raw = runtime.overrides.raw("assets", "sms/lab-sms")
    assert raw["auth_token"] == "sms-secret-token" and raw["number"] == "+15550008888"
    assert admin.delete(f"{URL}/sms/lab-sms").status_code == 204
    assert admin.get(f"{URL}/sms/lab-sms").status_code == 404


def test_validation_names_the_field(api_client, runtime):
    admin = api_client("admin")
    answer = admin.post(URL, json=sms(number="12", extra="x"))
    assert answer.status_code == 422
    assert {"number", "extra"} <= set(answer.json["errors"]["json"])
    wrong_channel = admin.post(URL, json={"name": "x", "channel": "fax"})
    assert wrong_channel.status_code == 422 and "channel" in wrong_channel.json["errors"]["json"]
    assert admin.post(URL, data="nope", content_type="application/json").status_code == 422
    assert runtime.overrides.raw_items("assets") == {}


def test_put_cannot_move_and_provisioned_is_409(api_client, runtime):
    admin = api_client("admin")
    admin.post(URL, json=sms())
    moved = admin.put(f"{URL}/sms/lab-sms", json=sms(name="other"))
    assert moved.status_code == 422 and "name" in moved.json["errors"]["json"]
    source = runtime.provisioned.asset("sms", "test-sms").source
    answer = admin.put(f"{URL}/sms/test-sms", json=sms(name="test-sms"))
    assert answer.status_code == 409 and source in answer.json["message"]
    assert admin.delete(f"{URL}/sms/test-sms").status_code == 409
    assert admin.put(f"{URL}/sms/missing", json=sms(name="missing")).status_code == 404


def test_delete_refused_while_a_rule_uses_it(api_client, runtime):
    admin = api_client("admin")
    admin.post(URL, json=sms())
    runtime.overrides.save(
        "rules",
        {
            "name": "lab",
            "channel": "sms",
            "event": "mo",
            "asset": "lab-sms",
            "action": {"forward_to": "TestRouter", "entry_point": "Support"},
        },
        runtime.provisioned,
        create=True,
    )
    answer = admin.delete(f"{URL}/sms/lab-sms")
    assert answer.status_code == 409 and "lab" in answer.json["message"]


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_writes_need_an_admin(api_client, runtime, role):
    assert api_client(role).post(URL, json=sms()).status_code == 403
    assert runtime.overrides.raw_items("assets") == {}


def test_openapi_documents_the_five_channel_bodies(client):
    spec = client.get("/api/v1/openapi.json").json
    one_of = spec["paths"][URL]["post"]["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert len(one_of) == 5
    out = spec["components"]["schemas"]["AssetOut"]["properties"]
    assert {"webhook_url", "status_url", "source", "read_only", "page_id", "number", "delivery_url"} <= set(out)


def test_a_moved_asset_is_told_with_its_other_errors(api_client):
    admin = api_client("admin")
    admin.post(URL, json=sms())
    moved = admin.put(f"{URL}/sms/lab-sms", json=sms(name="other", number="555"))
    assert moved.status_code == 422
    assert set(moved.json["errors"]["json"]) == {"name", "number"}, moved.json
