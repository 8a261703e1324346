"""The rules API: evaluation order, UI rules' life cycle, provisioned rules read-only but movable,
and the tester that explains a routing decision (tests/config/channels.yaml is the configuration)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from connector import create_app
from connector.auth.tokens import ApiTokens
from connector.runtime import Runtime
from tests.conftest import CONFIG_DIR, add_operator

PROVISIONED = ["sms-sales", "sms-all", "messenger", "whatsapp", "apple", "inapp"]


def rule(name: str = "sms-vip", **fields):
    return {
        "name": name,
        "channel": "sms",
        "event": "mo",
        "asset": "test-sms",
        "keyword": "VIP",
        "action": {"forward_to": "TestRouter", "entry_point": "Sales"},
        **fields,
    }


def names(client) -> list[str]:
    return [r["name"] for r in client.get("/api/v1/rules").json]


def test_rules_are_listed_in_evaluation_order_with_their_file(api_client):
    listing = api_client("viewer").get("/api/v1/rules")
    assert listing.status_code == 200
    assert [r["name"] for r in listing.json] == PROVISIONED
    assert [r["position"] for r in listing.json] == [1, 2, 3, 4, 5, 6]
    first = listing.json[0]
    assert first["source"].endswith("channels.yaml") and first["editable"] is False and first["default"] is False
    assert first["keyword"] == "SALES"
    assert first["action"] == {"forward_to": "TestRouter", "entry_point": "Sales", "flow": None}


def test_an_editor_creates_reads_replaces_and_deletes_a_rule(api_client):
    editor = api_client("editor")
    created = editor.post("/api/v1/rules", json=rule(start="2026-01-01"))
    assert created.status_code == 201, created.json
    assert created.json["position"] == 7 and created.json["editable"] and created.json["source"] is None
    assert created.json["start"] == "2026-01-01"
    assert editor.get("/api/v1/rules/sms-vip").json["keyword"] == "VIP"

    replaced = editor.put("/api/v1/rules/sms-vip", json=rule(keyword="GOLD", status="inactive"))
    assert replaced.status_code == 200
    assert replaced.json["keyword"] == "GOLD" and replaced.json["status"] == "inactive"
    assert "start" not in replaced.json or replaced.json["start"] is None, "PUT replaces the whole rule"

    assert editor.delete("/api/v1/rules/sms-vip").status_code == 204
    assert editor.get("/api/v1/rules/sms-vip").status_code == 404
    assert names(editor) == PROVISIONED


def test_a_created_name_must_be_new_and_cannot_change(api_client):
    editor = api_client("editor")
    assert editor.post("/api/v1/rules", json=rule()).status_code == 201
    assert editor.post("/api/v1/rules", json=rule()).status_code == 409
    taken = editor.post("/api/v1/rules", json=rule("sms-sales"))
    assert taken.status_code == 409 and "channels.yaml" in taken.json["message"]
    renamed = editor.put("/api/v1/rules/sms-vip", json=rule("other"))
    assert renamed.status_code == 422 and "name" in renamed.json["errors"]["json"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (rule(event="incoming_message"), "event"),
        (rule(channel="messenger", event="incoming_message", asset="test-messenger"), "keyword"),
        (rule(asset="nope"), "asset"),
        (rule(action={"forward_to": "TestRouter", "entry_point": "Nope"}), "action.entry_point"),
        (rule(action={"forward_to": "Nope", "entry_point": "Sales"}), "action.forward_to"),
        (rule(start="2026-05-01", end="2026-04-01"), "end"),
        (rule(status="paused"), "status"),
        (rule(colour="red"), "colour"),
        ({k: v for k, v in rule().items() if k != "action"}, "action"),
    ],
)
def test_an_invalid_rule_is_refused_naming_the_field(api_client, body, field):
    answer = api_client("editor").post("/api/v1/rules", json=body)
    assert answer.status_code == 422, answer.json
    assert field in answer.json["errors"]["json"], answer.json
    assert "sms-vip" not in names(api_client("viewer"))


def test_a_body_that_is_not_an_object_is_a_422(api_client):
    answer = api_client("editor").post("/api/v1/rules", json=["not", "a", "rule"])
    assert answer.status_code == 422 and "_schema" in answer.json["errors"]["json"]


def test_provisioned_rules_are_read_only_naming_their_file(api_client):
    editor = api_client("editor")
    replaced = editor.put("/api/v1/rules/sms-sales", json=rule("sms-sales"))
    assert replaced.status_code == 409 and "channels.yaml" in replaced.json["message"]
    deleted = editor.delete("/api/v1/rules/sms-sales")
    assert deleted.status_code == 409 and "channels.yaml" in deleted.json["message"]
    assert editor.get("/api/v1/rules/sms-sales").json["keyword"] == "SALES"


def test_a_viewer_reads_but_cannot_change_rules(api_client):
    viewer = api_client("viewer")
    assert viewer.post("/api/v1/rules", json=rule()).status_code == 403
    assert viewer.put("/api/v1/rules/order", json={"order": list(reversed(PROVISIONED))}).status_code == 403
    assert viewer.delete("/api/v1/rules/sms-sales").status_code == 403
    assert names(viewer) == PROVISIONED


def test_the_order_covers_provisioned_and_ui_rules_and_changes_the_tester_answer(api_client):
    editor = api_client("editor")
    probe = {"channel": "sms", "asset": "test-sms", "text": "sales please"}
    assert editor.post("/api/v1/rules/test", json=probe).json["rule"] == "sms-sales"
    assert editor.post("/api/v1/rules", json=rule()).status_code == 201

    order = ["sms-vip", "sms-all", "sms-sales", "messenger", "whatsapp", "apple", "inapp"]
    answer = editor.put("/api/v1/rules/order", json={"order": order})
    assert answer.status_code == 200
    assert [r["name"] for r in answer.json] == order
    assert names(editor) == order

    tested = editor.post("/api/v1/rules/test", json=probe).json
    assert tested["rule"] == "sms-all" and tested["entry_point"] == "Support"
    assert tested["rules"][0] == {
        "position": 1,
        "rule": "sms-vip",
        "outcome": "missed",
        "reason": "first word is not 'VIP'",
    }
    assert tested["rules"][2]["rule"] == "sms-sales" and tested["rules"][2]["outcome"] == "not reached"


@pytest.mark.parametrize(
    ("order", "problem"),
    [
        (PROVISIONED[:-1], "missing inapp"),
        ([*PROVISIONED, "ghost"], "unknown ghost"),
        ([*PROVISIONED, "inapp"], "repeated inapp"),
    ],
)
def test_an_order_must_list_every_rule_once(api_client, order, problem):
    answer = api_client("editor").put("/api/v1/rules/order", json={"order": order})
    assert answer.status_code == 422
    assert problem in " ".join(answer.json["errors"]["json"]["order"])


def test_the_tester_explains_every_earlier_rule_and_a_viewer_may_use_it(api_client):
    answer = api_client("viewer").post(
        "/api/v1/rules/test", json={"channel": "sms", "asset": "test-sms", "text": "hello there", "date": "2026-03-01"}
    )
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["rule"] == "sms-all" and body["forward_to"] == "TestRouter" and body["by_default"] is False
    assert body["event"] == "mo" and body["date"] == "2026-03-01"
    assert body["summary"] == "Rule 'sms-all' matches: the message is forwarded to TestRouter / Support."
    outcomes = [(v["rule"], v["outcome"], v["reason"]) for v in body["rules"]]
    assert outcomes[:3] == [
        ("sms-sales", "missed", "first word is not 'SALES'"),
        ("sms-all", "matched", None),
        ("messenger", "not reached", "rule 'sms-all' matched first"),
    ]


def test_the_tester_says_when_no_rule_routes_the_message(api_client, runtime):
    runtime.overrides.save(
        "assets",
        {
            "name": "spare-wa",
            "channel": "whatsapp",
            "phone_number_id": "1",
            "app_secret": "s",
            "access_token": "t",
            "verify_token": "v",
        },
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()
    body = api_client("viewer").post("/api/v1/rules/test", json={"channel": "whatsapp", "asset": "spare-wa"}).json
    assert body["rule"] is None and body["forward_to"] is None
    assert "not be routed" in body["summary"]
    whatsapp = next(v for v in body["rules"] if v["rule"] == "whatsapp")
    assert whatsapp == {
        "position": 4,
        "rule": "whatsapp",
        "outcome": "missed",
        "reason": "asset is spare-wa, rule wants test-whatsapp",
    }


@pytest.mark.parametrize(
    ("probe", "field"),
    [
        ({"channel": "fax", "asset": "test-sms"}, "channel"),
        ({"channel": "sms", "asset": "nope"}, "asset"),
        ({"channel": "sms"}, "asset"),
        ({"channel": "sms", "asset": "test-sms", "date": "yesterday"}, "date"),
    ],
)
def test_the_tester_names_a_bad_field(api_client, probe, field):
    answer = api_client("viewer").post("/api/v1/rules/test", json=probe)
    assert answer.status_code == 422
    assert field in answer.json["errors"]["json"]


def test_the_tester_needs_a_login_and_a_session_needs_the_csrf_token(app, operator):
    probe = {"channel": "sms", "asset": "test-sms", "text": "hi"}
    assert app.test_client().post("/api/v1/rules/test", json=probe).status_code == 401
    viewer = operator("viewer")
    assert viewer.post("/api/v1/rules/test", json=probe).status_code == 400, "CSRF token missing"
    assert viewer.post("/api/v1/rules/test", json=probe, headers={"X-CSRFToken": viewer.csrf}).status_code == 200


def test_the_default_rule_is_listed_last_and_takes_what_no_rule_matches(
    settings, redis, tmp_path, operator_password_hash
):
    folder = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, folder)
    (folder / "default.yaml").write_text(
        "default_rule: {name: fallback, action: {forward_to: TestRouter, entry_point: Support}}\n"
    )
    runtime = Runtime(replace(settings, config_dir=folder))
    client = create_app(runtime=runtime).test_client()
    add_operator(redis, "reader", "viewer", operator_password_hash)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ApiTokens(redis).issue('reader', 'tests')}"
    runtime.overrides.save(
        "rules",
        rule("only-vip", keyword="VIP"),
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()
    listing = client.get("/api/v1/rules").json
    assert [r["name"] for r in listing][-1] == "fallback"
    assert listing[-1]["default"] is True and listing[-1]["source"].endswith("default.yaml")
    assert listing[-1]["position"] == 8

    runtime.overrides.set_rule_order(["only-vip", *PROVISIONED], runtime.config)
    runtime.config_changed()
    assert [r["name"] for r in client.get("/api/v1/rules").json] == ["only-vip", *PROVISIONED, "fallback"]
    # a message to an asset no rule names falls through every rule to the default
    runtime.overrides.save(
        "assets",
        {"name": "spare-sms", "channel": "sms", "number": "+15550009999", "account_sid": "AC1", "auth_token": "t"},
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()
    body = client.post("/api/v1/rules/test", json={"channel": "sms", "asset": "spare-sms", "text": "hi"}).json
    assert body["rule"] == "fallback" and body["by_default"] is True
    assert body["summary"] == "No rule matches; the default rule 'fallback' forwards it to TestRouter / Support."
    assert body["rules"][-1] == {"position": 8, "rule": "fallback", "outcome": "default", "reason": None}
    assert all(v["outcome"] == "missed" for v in body["rules"][:-1])


def test_every_error_of_a_rule_is_in_one_422(api_client):
    editor = api_client("editor")
    bad = rule(
        "no spaces",
        event="incoming_message",
        asset="ghost",
        colour="red",
        action={"forward_to": "TestRouter", "entry_point": "Nope"},
        start="2026-05-01",
        end="2026-04-01",
    )
    answer = editor.post("/api/v1/rules", json=bad)
    assert answer.status_code == 422
    errors = answer.json["errors"]["json"]
    assert set(errors) == {"name", "event", "asset", "colour", "action.entry_point", "end"}, errors
    assert errors["end"] == ["end is before start"]


def test_a_renamed_rule_is_told_with_its_other_errors(api_client):
    editor = api_client("editor")
    assert editor.post("/api/v1/rules", json=rule()).status_code == 201
    renamed = editor.put(
        "/api/v1/rules/sms-vip", json=rule("other", asset="ghost", start="2026-05-01", end="2026-04-01")
    )
    assert renamed.status_code == 422
    assert set(renamed.json["errors"]["json"]) == {"name", "asset", "end"}, renamed.json
