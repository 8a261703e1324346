"""/api/v1/hybrid-agents: `hybrid_agents` items by login (any case) with the YAML schema, a password
hashed and never answered ("set" / "not set"), provisioned logins read-only, editors write, viewers
read, and the paths and schemas in the OpenAPI document."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from werkzeug.security import check_password_hash

from connector.config.model import FinesseConfig, HybridAgent
from connector.config.overrides import AGENTS
from connector.store import keys

URL = "/api/v1/hybrid-agents"
PASSWORD = "zoe-password-1"


def stored_hash(runtime, key: str = "zoe") -> str:
    return json.loads(runtime.redis.hget(keys.config_items(AGENTS), key))["password_hash"]


def no_secret_in(answer, runtime) -> None:
    """Neither the password nor any stored hash is in an answer."""
    text = answer.get_data(as_text=True)
    assert PASSWORD not in text and "password_hash" not in text and "scrypt:" not in text
    for raw in runtime.redis.hvals(keys.config_items(AGENTS)):
        assert json.loads(raw)["password_hash"] not in text


def test_put_get_list_and_delete_a_local_agent(api_client, runtime):
    editor = api_client("editor")
    body = {"name": "Zoe", "password": PASSWORD, "skills": ["english"], "max_chats": 2}
    answer = editor.put(f"{URL}/zoe", json=body)
    assert answer.status_code == 200, answer.json
    assert answer.json == {
        "login": "zoe",
        "name": "Zoe",
        "skills": ["english"],
        "max_chats": 2,
        "max_chats_in_effect": 2,
        "local": True,
        "password": "set",
        "source": None,
        "read_only": False,
        "configured": True,
    }
    no_secret_in(answer, runtime)
    assert check_password_hash(stored_hash(runtime), PASSWORD)

    got = api_client("viewer").get(f"{URL}/ZOE")
    assert got.status_code == 200 and got.json["login"] == "zoe"
    no_secret_in(got, runtime)
    listed = api_client("viewer").get(URL)
    assert [a["login"] for a in listed.json] == ["zoe"]
    no_secret_in(listed, runtime)

    again = editor.put(f"{URL}/zoe", json={**got.json, "skills": ["english", "billing"]})
    assert again.status_code == 200, again.json
    assert again.json["password"] == "set" and again.json["skills"] == ["english", "billing"]
    assert check_password_hash(stored_hash(runtime), PASSWORD), "an answer sent back keeps the password"
    no_secret_in(again, runtime)

    assert editor.delete(f"{URL}/Zoe").status_code == 204
    assert api_client("viewer").get(f"{URL}/zoe").status_code == 404
    assert editor.delete(f"{URL}/zoe").status_code == 404


def test_a_finesse_agents_settings_need_finesse_or_a_password(api_client, runtime):
    editor = api_client("editor")
    answer = editor.put(f"{URL}/alice", json={"skills": ["english"]})
    assert answer.status_code == 422
    assert "without a finesse: section" in answer.json["errors"]["json"]["password"][0]
    runtime._config = replace(
        runtime.provisioned, finesse=FinesseConfig(publisher="http://127.0.0.1:9", admin_user="a", max_chats=4)
    )
    runtime.config_changed()
    answer = editor.put(f"{URL}/alice", json={"skills": ["english"]})
    assert answer.status_code == 200, answer.json
    assert answer.json["local"] is False and answer.json["password"] == "not set"
    assert answer.json["max_chats"] is None and answer.json["max_chats_in_effect"] == 4, "finesse.max_chats"


def test_validation_errors_name_the_field(api_client):
    editor = api_client("editor")
    answer = editor.put(f"{URL}/zoe", json={"password": "short", "skills": ["ok", "not ok"], "max_chats": 0})
    assert answer.status_code == 422
    assert set(answer.json["errors"]["json"]) == {"password", "skills.1", "max_chats"}
    renamed = editor.put(f"{URL}/zoe", json={"login": "amy", "password": PASSWORD})
    assert renamed.status_code == 422 and "cannot change" in renamed.json["errors"]["json"]["login"][0]
    assert editor.put(f"{URL}/zoe", json=["not", "an", "object"]).status_code == 422


def test_a_provisioned_login_is_409_naming_its_file(api_client, runtime):
    alice = HybridAgent("alice", skills=("english",), max_chats=3, source="entrypoints/agents.yaml")
    runtime._config = replace(runtime.provisioned, hybrid_agents=(alice,))
    runtime.config_changed()
    editor = api_client("editor")
    answer = editor.put(f"{URL}/Alice", json={"skills": ["billing"], "password": PASSWORD})
    assert answer.status_code == 409 and "entrypoints/agents.yaml" in answer.json["message"]
    assert editor.delete(f"{URL}/alice").status_code == 409
    shown = api_client("viewer").get(f"{URL}/alice").json
    assert shown["read_only"] is True and shown["source"] == "entrypoints/agents.yaml"


def test_a_provisioned_clear_password_is_never_answered(api_client, runtime):
    zoe = HybridAgent("zoe", password="from-the-environment", source="entrypoints/agents.yaml")
    runtime._config = replace(runtime.provisioned, hybrid_agents=(zoe,))
    runtime.config_changed()
    answer = api_client("viewer").get(URL)
    assert answer.json[0]["password"] == "set" and answer.json[0]["local"] is True
    assert "from-the-environment" not in answer.get_data(as_text=True)


@pytest.mark.parametrize("method", ["put", "delete"])
def test_a_viewer_cannot_write(api_client, method):
    viewer = api_client("viewer")
    answer = getattr(viewer, method)(f"{URL}/zoe", json={"password": PASSWORD})
    assert answer.status_code == 403


def test_the_openapi_document_lists_the_paths_and_schemas(client):
    spec = client.get("/api/v1/openapi.json").json
    paths = spec["paths"]
    assert set(paths[URL]) >= {"get"}
    assert set(paths[f"{URL}/{{login}}"]) >= {"get", "put", "delete"}
    assert set(paths[f"{URL}/{{login}}"]["put"]["responses"]) >= {"200", "401", "403", "404", "409", "422"}
    assert "requestBody" in paths[f"{URL}/{{login}}"]["put"]
    schemas = spec["components"]["schemas"]
    assert {"HybridAgentOut", "HybridAgentBody"} <= set(schemas)
    assert "password_hash" not in schemas["HybridAgentOut"]["properties"]
    assert set(schemas["HybridAgentBody"]["properties"]) >= {"login", "skills", "max_chats", "password"}


def test_a_changed_login_is_told_with_the_other_errors(api_client):
    editor = api_client("editor")
    renamed = editor.put(f"{URL}/zoe", json={"login": "amy", "password": "short", "max_chats": 0})
    assert renamed.status_code == 422
    assert set(renamed.json["errors"]["json"]) == {"login", "password", "max_chats"}, renamed.json
