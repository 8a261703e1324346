"""The flows API: a flow's life cycle, every error of a body in one 422, provisioned flows read-only,
a flow in use not deleted, and rules' `flow` through the rules API."""

from __future__ import annotations

import pytest

from tests.flows.editing import PROVISIONED_FLOW, flow, rule, with_provisioned_flow


@pytest.fixture
def settings(settings, tmp_path):
    return with_provisioned_flow(settings, tmp_path)


def test_an_editor_creates_reads_replaces_and_deletes_a_flow(api_client):
    editor = api_client("editor")
    created = editor.post("/api/v1/flows", json=flow())
    assert created.status_code == 201, created.json
    assert created.json["read_only"] is False and created.json["source"] is None and created.json["used_by"] == []
    assert created.json["steps"][0]["pattern"] == "[A-Z]{2}[0-9]{6}" and created.json["on_fail"] == "route"
    assert [f["name"] for f in editor.get("/api/v1/flows").json] == [PROVISIONED_FLOW, "intake"]
    replaced = editor.put("/api/v1/flows/intake", json=flow(on_fail="close", closing="flow_closing"))
    assert replaced.status_code == 200 and replaced.json["closing"] == "flow_closing"
    assert editor.get("/api/v1/flows/intake").json["on_fail"] == "close"
    assert editor.delete("/api/v1/flows/intake").status_code == 204
    assert editor.get("/api/v1/flows/intake").status_code == 404


def test_a_bad_flow_is_answered_with_every_error_at_once(api_client):
    body = flow(
        closing="flow_closing",
        steps=[
            {"name": "a", "type": "ask", "question": "ask_nothing_here", "attribute": "x", "attempts": 0},
            {"name": "b", "type": "ask", "question": "ask_topic", "attribute": "y", "answer": "email", "pattern": "x"},
        ],
    )
    answer = api_client("editor").post("/api/v1/flows", json=body)
    assert answer.status_code == 422
    errors = answer.json["errors"]["json"]
    assert set(errors) == {"steps.0.attempts", "steps.0.question", "steps.1.pattern", "closing"}
    assert errors["steps.1.pattern"] == ["only a regex answer has a pattern"]


def test_the_name_cannot_change_and_provisioned_flows_are_read_only(api_client):
    editor = api_client("editor")
    editor.post("/api/v1/flows", json=flow())
    renamed = editor.put("/api/v1/flows/intake", json=flow("other", on_fail="nope"))
    assert renamed.status_code == 422
    assert (
        renamed.json["errors"]["json"]["name"] == ["must stay 'intake'"] and "on_fail" in renamed.json["errors"]["json"]
    )
    listed = editor.get(f"/api/v1/flows/{PROVISIONED_FLOW}").json
    assert listed["read_only"] is True and listed["source"].endswith("flows.yaml")
    refused = editor.put(f"/api/v1/flows/{PROVISIONED_FLOW}", json=flow(PROVISIONED_FLOW))
    assert refused.status_code == 409 and "flows.yaml" in refused.json["message"]
    assert editor.delete(f"/api/v1/flows/{PROVISIONED_FLOW}").status_code == 409
    assert editor.post("/api/v1/flows", json=flow()).status_code == 409


def test_a_rule_names_a_flow_and_the_flow_cannot_go_while_it_does(api_client):
    editor = api_client("editor")
    editor.post("/api/v1/flows", json=flow())
    missing = editor.post("/api/v1/rules", json=rule(flow_name="ghost"))
    assert missing.status_code == 422 and missing.json["errors"]["json"] == {"action.flow": ["no flow named 'ghost'"]}
    created = editor.post("/api/v1/rules", json=rule())
    assert created.status_code == 201 and created.json["action"]["flow"] == "intake"
    assert editor.get("/api/v1/flows/intake").json["used_by"] == ["rule sms-vip"]
    refused = editor.delete("/api/v1/flows/intake")
    assert refused.status_code == 409
    assert refused.json["message"] == "flow 'intake' is used by rule sms-vip: change them first"


def test_a_viewer_reads_flows_but_cannot_write_them(api_client):
    viewer = api_client("viewer")
    assert viewer.get("/api/v1/flows").status_code == 200
    assert viewer.post("/api/v1/flows", json=flow()).status_code == 403
