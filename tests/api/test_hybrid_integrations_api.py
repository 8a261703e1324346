"""/api/v1/integrations for Hybrid Chat: queues with skills, priority, offer and inactivity timeouts and
max wait; none of ECE's fields asked or shown; validation errors name the field; the test reports per
queue."""

from __future__ import annotations

URL = "/api/v1/integrations"
ECE_ONLY = (
    "base_url",
    "version",
    "client_key",
    "client_secret",
    "callback_auth",
    "verify_tls",
    "ca_bundle",
    "api_paths",
    "max_in_flight",
)


def hybrid(**overrides) -> dict:
    item = {
        "name": "Chat",
        "type": "hybrid",
        "entry_points": [
            {
                "name": "Support",
                "skills": ["english"],
                "priority": 1,
                "offer_timeout_seconds": 20,
                "inactivity_timeout_seconds": 120,
                "max_wait_seconds": 600,
            },
            {"name": "Billing", "skills": ["english", "billing"], "priority": 2},
        ],
    }
    item.update(overrides)
    return item


def test_a_hybrid_integration_is_made_and_shown_without_the_ece_fields(api_client):
    admin = api_client("admin")
    answer = admin.post(URL, json=hybrid())
    assert answer.status_code == 201, answer.json
    shown = answer.json
    assert not set(ECE_ONLY) & set(shown), shown
    assert shown["callback_url"] is None
    support, billing = shown["entry_points"]
    assert "id" not in support, "a queue's id is its name: not shown, never asked"
    assert (support["skills"], support["priority"], support["offer_timeout_seconds"], support["max_wait_seconds"]) == (
        ["english"],
        1,
        20,
        600,
    )
    assert (billing["skills"], billing["priority"], billing["offer_timeout_seconds"]) == (["english", "billing"], 2, 30)
    assert (support["inactivity_timeout_seconds"], billing["inactivity_timeout_seconds"]) == (120, 900)
    provisioned = api_client("viewer").get(f"{URL}/TestRouter").json
    assert "base_url" not in provisioned and provisioned["callback_url"] is None


def test_an_edit_changes_the_queue_fields_and_an_empty_base_url_is_dropped(api_client, runtime):
    admin = api_client("admin")
    admin.post(URL, json=hybrid())
    body = hybrid(base_url="", callback_auth={"type": "none"})
    body["entry_points"][0] = {**body["entry_points"][0], "skills": ["spanish"], "priority": 5}
    answer = admin.put(f"{URL}/Chat", json=body)
    assert answer.status_code == 200, answer.json
    assert answer.json["entry_points"][0]["skills"] == ["spanish"]
    stored = runtime.overrides.raw("integrations", "Chat")
    assert "base_url" not in stored and "callback_auth" not in stored
    assert runtime.config.integration("Chat").entry_point("Support").priority == 5


def test_validation_errors_name_the_queue_field(api_client):
    body = hybrid()
    body["entry_points"][0] = {
        "name": "Support",
        "skills": ["english", "not a skill"],
        "offer_timeout_seconds": 1,
        "inactivity_timeout_seconds": 3,
    }
    body["entry_points"][1]["skills"] = ["billing", "Billing"]
    answer = api_client("admin").post(URL, json=body)
    assert answer.status_code == 422
    errors = answer.json["errors"]["json"]
    assert set(errors) == {
        "entry_points.0.skills.1",
        "entry_points.0.offer_timeout_seconds",
        "entry_points.0.inactivity_timeout_seconds",
        "entry_points.1.skills",
    }
    assert errors["entry_points.0.inactivity_timeout_seconds"] == ["0 (off) or 5 to 86400 seconds"]
    assert "a skill is 1-64 letters" in errors["entry_points.0.skills.1"][0]
    assert "'billing' and 'Billing' differ only in case" in errors["entry_points.1.skills"][0]


def test_the_test_reports_each_queue_and_refuses_a_disabled_one(api_client, runtime):
    admin = api_client("admin")
    found = admin.post(f"{URL}/test", json=hybrid())
    assert found.status_code == 200
    assert [f["check"] for f in found.json["findings"]] == ["queue Support", "queue Billing"]
    assert "no READY agent has its skills" in found.json["findings"][0]["message"]
    body = hybrid()
    body["entry_points"][1]["enabled"] = False
    refused = admin.post(f"{URL}?test=true", json=body)
    assert refused.status_code == 422
    assert refused.json["message"] == "the Hybrid Chat test failed: nothing was saved"
    assert set(refused.json["errors"]["test"]) == {"queue Billing"}
    assert runtime.overrides.raw_items("integrations") == {}
