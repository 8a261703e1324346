"""/api/v1/agents under flask-smorest: documented in the OpenAPI document, each agent's states as
media blending knows them, on-demand sync for editors, and the deployment-wide CONNECTOR_API_TOKEN
kept for these routes only."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from connector import create_app
from connector.store import keys
from tests.operations.blending_data import SYNC_AT, make_section, seed_agents

URL = "/api/v1/agents"
OLD_FIELDS = {
    "id",
    "login_name",
    "name",
    "team",
    "extension",
    "logged_in_to_connector",
    "voice_state",
    "chat_state",
    "active_chats",
    "chat_enabled",
    "held_not_ready_by_connector",
    "last_error",
}


@pytest.fixture
def blending(runtime):
    make_section(runtime)
    seed_agents(runtime)


def test_the_agents_and_finesse_routes_are_in_the_openapi_document_with_their_schemas(client):
    spec = client.get("/api/v1/openapi.json").json
    paths = spec["paths"]
    assert {"get"} <= set(paths["/api/v1/agents"]) and {"get"} <= set(paths["/api/v1/agents/{agent_id}"])
    assert "post" in paths["/api/v1/agents/sync"]
    assert {"get", "put", "delete"} <= set(paths["/api/v1/finesse"]) and "post" in paths["/api/v1/finesse/test"]
    schemas = spec["components"]["schemas"]
    assert OLD_FIELDS | {"chat_enabled_reason", "pending_change"} <= set(schemas["AgentOut"]["properties"])
    assert {"agents", "sync", "chat_enabled_policy"} <= set(schemas["AgentsOut"]["properties"])
    assert {"publisher", "subscriber", "not_ready_reason", "max_chats", "chat_enabled", "source", "read_only"} <= set(
        schemas["FinesseOut"]["properties"]
    )
    sync = paths["/api/v1/agents/sync"]["post"]["responses"]
    assert {"202", "401", "403", "404"} <= set(sync)
    assert {"401", "403", "409", "422"} <= set(paths["/api/v1/finesse"]["put"]["responses"])


def test_a_viewer_lists_every_agent_with_their_states_and_the_last_sync(api_client, blending):
    answer = api_client("viewer").get(URL)
    assert answer.status_code == 200, answer.json
    agents = {a["id"]: a for a in answer.json["agents"]}
    alice, bob = agents["1001"], agents["1002"]
    assert set(alice) >= OLD_FIELDS, "the fields scripts read before stay"
    assert (alice["login_name"], alice["name"], alice["team"], alice["extension"]) == (
        "alice",
        "Alice Archer",
        "Support",
        "5001",
    )
    assert (alice["voice_state"], alice["voice_reason_id"], alice["chat_state"]) == ("NOT_READY", "12", "ACTIVE")
    assert alice["active_chats"] == 2 and alice["held_not_ready_by_connector"] is True
    assert alice["logged_in_to_connector"] is True and bob["logged_in_to_connector"] is False
    assert alice["chat_enabled"] is True and alice["chat_enabled_reason"] == 'team Support is in "team:Support"'
    assert bob["chat_enabled"] is False and bob["chat_enabled_reason"] == 'team Sales is not in "team:Support"'
    assert bob["last_error"].startswith("400 Invalid State")
    assert answer.json["chat_enabled_policy"] == "team:Support" and answer.json["finesse_configured"] is True
    sync = answer.json["sync"]
    assert (sync["at"], sync["ok"], sync["agents"], sync["added"], sync["chat_enabled"]) == (SYNC_AT, True, 2, 2, 1)
    assert sync["outcome"] == "2 agents (2 added, 0 updated, 0 removed), 1 chat-enabled"
    assert sync["interval_seconds"] == 120 and sync["requested_at"] is None


def test_one_agent_by_id_and_404_for_an_unknown_one(api_client, blending):
    viewer = api_client("viewer")
    answer = viewer.get(f"{URL}/1002")
    assert answer.status_code == 200 and answer.json["login_name"] == "bob"
    missing = viewer.get(f"{URL}/9999")
    assert missing.status_code == 404 and "9999" in missing.json["message"]


def test_an_editor_asks_for_a_sync_a_viewer_may_not(api_client, runtime, blending):
    refused = api_client("viewer").post(f"{URL}/sync")
    assert refused.status_code == 403
    assert runtime.redis.get(keys.agent_sync_requested()) is None

    answer = api_client("editor").post(f"{URL}/sync")
    assert answer.status_code == 202, answer.json
    assert answer.json["status"] == "sync requested"
    assert runtime.redis.get(keys.agent_sync_requested()) is not None, "the listener takes it from here"
    assert answer.json["sync"]["requested_at"] > SYNC_AT
    assert api_client("viewer").get(URL).json["sync"]["requested_at"] == answer.json["sync"]["requested_at"]


def test_a_sync_needs_a_finesse_section(api_client, runtime):
    answer = api_client("editor").post(f"{URL}/sync")
    assert answer.status_code == 404
    assert "finesse" in answer.json["message"]
    assert runtime.redis.get(keys.agent_sync_requested()) is None
    listed = api_client("viewer").get(URL).json
    assert listed["agents"] == [] and listed["finesse_configured"] is False and listed["sync"]["outcome"] == "never run"


def test_a_failed_sync_shows_its_error(api_client, runtime, blending):
    runtime.redis.hset(keys.agent_sync_status(), mapping={"error": "no Finesse node is in service"})
    sync = api_client("viewer").get(URL).json["sync"]
    assert sync["ok"] is False and sync["outcome"] == "failed: no Finesse node is in service"


def test_the_deployment_token_reads_and_syncs_agents_and_opens_nothing_else(runtime, blending, caplog):
    runtime.settings = replace(runtime.settings, api_token="deployment-token")
    client = create_app(runtime=runtime).test_client()
    bearer = {"Authorization": "Bearer deployment-token"}
    assert client.get(URL, headers=bearer).status_code == 200
    assert client.get(f"{URL}/1001", headers=bearer).json["login_name"] == "alice"
    with caplog.at_level(logging.INFO, logger="connector.audit"):
        assert client.post(f"{URL}/sync", headers=bearer).status_code == 202
    assert [r.operator for r in caplog.records if r.name == "connector.audit"] == ["CONNECTOR_API_TOKEN"]
    for method, path in (("GET", "/api/v1/finesse"), ("GET", "/api/v1/rules"), ("POST", "/api/v1/finesse/test")):
        assert client.open(path, method=method, headers=bearer).status_code == 401, path
    assert client.get(URL, headers={"Authorization": "Bearer not-the-token"}).status_code == 401
    assert client.get(URL).status_code == 401


def test_without_a_deployment_token_set_an_empty_bearer_opens_nothing(client, blending):
    assert client.get(URL, headers={"Authorization": "Bearer "}).status_code == 401
    assert client.get(f"{URL}/1001", headers={"Authorization": "Bearer"}).status_code == 401


def test_a_ui_session_reads_agents_and_sends_its_csrf_token_to_sync(operator, runtime, blending):
    editor = operator("editor")
    assert editor.get(URL).status_code == 200
    assert editor.post(f"{URL}/sync").status_code == 400, "a session write needs X-CSRFToken"
    assert runtime.redis.get(keys.agent_sync_requested()) is None
    assert editor.post(f"{URL}/sync", headers={"X-CSRFToken": editor.csrf}).status_code == 202
