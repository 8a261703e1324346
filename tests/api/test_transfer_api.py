"""/api/v1/config/export and /api/v1/config/import (dry run by default, then apply)."""

from __future__ import annotations

import yaml

from tests.admin.test_transfer_ui import NEW


def test_export_everything_or_one_item(api_client):
    api = api_client("viewer")
    body = api.get("/api/v1/config/export").get_json()
    assert "twilio-test-token" not in body["yaml"] and "TEST_SMS_AUTH_TOKEN" in body["variables"]
    assert body["items"] == 1 + 5 + 6 and body["filename"] == "connector.yaml"
    one = api.get("/api/v1/config/export?kind=assets&name=sms/test-sms").get_json()
    assert [a["name"] for a in yaml.safe_load(one["yaml"])["assets"]] == ["test-sms"]
    assert api.get("/api/v1/config/export?kind=rules&name=nope").status_code == 404
    assert api.get("/api/v1/config/export?kind=widgets").status_code == 422
    assert api.get("/api/v1/config/export?name=x").status_code == 400


def test_import_is_a_dry_run_until_asked_to_apply(api_client, runtime):
    api = api_client("admin")
    dry = api.post("/api/v1/config/import", json={"yaml": NEW})
    assert dry.status_code == 200
    body = dry.get_json()
    assert body["ok"] and not body["applied"] and body["written"] == 0
    assert [(c["kind"], c["key"], c["action"]) for c in body["changes"]] == [
        ("integrations", "NewECE", "add"),
        ("assets", "sms/new-sms", "add"),
        ("rules", "new-rule", "add"),
    ]
    assert runtime.overrides.raw_items("integrations") == {}

    applied = api.post("/api/v1/config/import?dry_run=false", json={"yaml": NEW}).get_json()
    assert applied["applied"] and applied["written"] == 3
    assert "new-rule" in runtime.overrides.raw_items("rules")
    again = api.post("/api/v1/config/import", json={"yaml": NEW}).get_json()
    assert {c["action"] for c in again["changes"]} == {"unchanged"}


def test_problems_are_listed_by_a_dry_run_and_refuse_an_apply(api_client, runtime):
    api = api_client("admin")
    bad = NEW.replace("+15550009999", "555")
    dry = api.post("/api/v1/config/import", json={"yaml": bad}).get_json()
    assert not dry["ok"]
    [problem] = dry["problems"]
    assert (problem["item"], problem["field"]) == ("assets[0] ('new-sms')", "number")
    refused = api.post("/api/v1/config/import?dry_run=false", json={"yaml": bad})
    assert refused.status_code == 422
    assert "field 'number'" in refused.get_json()["errors"]["json"]["yaml"][0]
    assert runtime.overrides.raw_items("integrations") == {}


def test_bad_bodies_and_roles(api_client):
    assert api_client("admin").post("/api/v1/config/import", json={}).status_code == 422
    assert api_client("admin").post("/api/v1/config/import", json={"yaml": 5}).status_code == 422
    assert api_client("editor").post("/api/v1/config/import", json={"yaml": NEW}).status_code == 403


def test_a_dry_run_names_every_problem_and_its_summary_agrees(api_client):
    from tests.operations.test_import_export import ASSET, ECE, document, rule

    api = api_client("admin")
    text = document(
        integrations=[{**ECE, "client_secret": "ece-secret"}],
        assets=[{**ASSET, "auth_token": "sms-token", "number": "555"}],
        rules=[rule("r1", action={"forward_to": "Ghost", "entry_point": "Billing"})],
    )
    dry = api.post("/api/v1/config/import", json={"yaml": text}).get_json()
    assert not dry["ok"]
    assert {(p["item"], p["field"]) for p in dry["problems"]} == {
        ("assets[0] ('new-sms')", "number"),
        ("rules[0] ('r1')", "action.forward_to"),
    }
    assert dry["summary"] == (
        "2 problem(s): nothing can be imported until they are fixed; "
        "once they are fixed: 1 to add, 0 to change, 0 unchanged, 0 refused"
    )
    listed = api.post("/api/v1/config/import", json={"yaml": "- name: r1\n"}).get_json()
    assert listed["problems"][0]["message"].startswith("the file's top level is a list; expected a mapping")
    applied = api.post("/api/v1/config/import?dry_run=false", json={"yaml": NEW}).get_json()
    assert applied["summary"] == "Imported: 3 item(s) written, 0 unchanged."
