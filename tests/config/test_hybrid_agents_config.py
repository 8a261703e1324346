"""Hybrid Chat agents in the configuration: `HybridAgentSchema` and a queue's skills (good and bad
items), and `hybrid_agents` made in the UI / API in the config store: keyed by login in any case, a
password kept only as its hash (empty keeps it), provisioned logins read-only, merged over the files."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from marshmallow import ValidationError
from werkzeug.security import check_password_hash

from connector.config.model import FinesseConfig, HybridAgent
from connector.config.overrides import AGENTS, MASK, ConfigConflict, ConfigInvalid, NotFound
from connector.config.schemas import EntryPointSchema, HybridAgentSchema
from connector.store import keys

PASSWORD = "zoe-password-1"
FINESSE = FinesseConfig(publisher="http://127.0.0.1:9", admin_user="a", admin_password="b")


def local(**extra) -> dict:
    return {"login": "zoe", "name": "Zoe", "password": PASSWORD, "skills": ["english"], **extra}


def stored(runtime, key: str = "zoe") -> dict:
    value = runtime.redis.hget(keys.config_items(AGENTS), key)
    assert value is not None, f"nothing stored for {key}"
    return json.loads(value)


def with_provisioned(runtime, *agents: HybridAgent, finesse: FinesseConfig | None = None) -> None:
    """Provisioned hybrid agents (and a finesse: section) as if the files defined them."""
    runtime._config = replace(runtime.provisioned, hybrid_agents=agents, finesse=finesse)
    runtime.config_changed()


# -- the schemas ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        {"login": "alice", "skills": ["english", "billing"], "max_chats": 3},
        {"login": "zoe", "name": "Zoe", "password": "${ZOE}-resolved", "skills": ["english"]},
        {"login": "jo.doe@example.com", "password_hash": "scrypt:32768:8:1$abc$0123abcdef"},
        {"login": "bob"},
    ],
)
def test_good_agents_load_from_a_file_and_save_here_alike(item, runtime):
    agent = HybridAgentSchema().load(item)
    assert agent.login == item["login"]
    assert agent.local == bool(item.get("password") or item.get("password_hash"))
    with_provisioned(runtime, finesse=FINESSE)
    saved = runtime.overrides.save_agent(item, runtime.provisioned, create=True)
    assert (saved.item.login, saved.item.skills, saved.item.local) == (agent.login, agent.skills, agent.local)


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ({"login": "a b"}, "login", "without spaces or /"),
        ({"login": "a/b"}, "login", "without spaces or /"),
        ({"login": "zoe", "password": "short"}, "password", "between 8 and 256"),
        ({"login": "zoe", "password_hash": "zoe-password-1"}, "password_hash", "not a password hash"),
        (
            {"login": "zoe", "password": PASSWORD, "password_hash": "scrypt:32768:8:1$abc$0123"},
            "password_hash",
            "not both",
        ),
        ({"login": "zoe", "skills": ["english", "English"]}, "skills", "differ only in case"),
        ({"login": "zoe", "max_chats": 0}, "max_chats", "greater than or equal to 1"),
        ({"login": "zoe", "colour": "blue"}, "colour", "Unknown field"),
    ],
)
def test_bad_agents_name_the_field_in_a_file_and_here_alike(item, field, words, runtime):
    with pytest.raises(ValidationError) as caught:
        HybridAgentSchema().load(item)
    assert words in " ".join(caught.value.messages[field]), caught.value.messages
    with_provisioned(runtime, finesse=FINESSE)
    with pytest.raises(ConfigInvalid) as refused:
        runtime.overrides.save_agent(item, runtime.provisioned)
    assert words in " ".join(refused.value.errors[field]), refused.value.errors
    assert runtime.overrides.raw_items(AGENTS) == {}


def test_a_queues_skills_are_one_spelling_each():
    with pytest.raises(ValidationError) as caught:
        EntryPointSchema().load({"name": "Support", "skills": ["english", "English"]})
    assert "differ only in case" in caught.value.messages["skills"][0]
    assert EntryPointSchema().load({"name": "Support", "skills": ["english", "english"]}).skills == ("english",)


# -- the store ------------------------------------------------------------------------------------------


def test_a_local_agent_is_stored_with_a_hash_and_joins_the_configuration(runtime):
    saved = runtime.overrides.save_agent(local(), runtime.provisioned, create=True)
    raw = stored(runtime)
    assert "password" not in raw and PASSWORD not in json.dumps(raw)
    assert check_password_hash(raw["password_hash"], PASSWORD), "the operator accounts' hash (werkzeug)"
    assert saved.item.password is None and saved.item.local
    runtime.config_changed()
    agent = runtime.config.hybrid_agent("ZOE")
    assert agent is not None and agent.name == "Zoe" and agent.skills == ("english",)
    assert agent.password is None and agent.password_hash == raw["password_hash"] and agent.source is None


@pytest.mark.parametrize("kept", [None, "", MASK, "set", "not set"])
def test_an_empty_password_on_edit_keeps_the_stored_hash(runtime, kept):
    runtime.overrides.save_agent(local(), runtime.provisioned, create=True)
    before = stored(runtime)["password_hash"]
    edit = {"login": "Zoe", "skills": ["english", "billing"], "max_chats": 2}
    if kept is not None:
        edit["password"] = kept
    runtime.overrides.save_agent(edit, runtime.provisioned, create=False)
    after = stored(runtime)
    assert after["password_hash"] == before and after["skills"] == ["english", "billing"]
    assert after["login"] == "Zoe" and after["max_chats"] == 2 and "name" not in after


def test_a_new_password_is_hashed_again(runtime):
    runtime.overrides.save_agent(local(), runtime.provisioned, create=True)
    runtime.overrides.save_agent(local(password="a-new-password"), runtime.provisioned, create=False)
    assert check_password_hash(stored(runtime)["password_hash"], "a-new-password")


def test_logins_are_one_item_in_any_case(runtime):
    runtime.overrides.save_agent(local(), runtime.provisioned, create=True)
    with pytest.raises(ConfigConflict, match="already exists"):
        runtime.overrides.save_agent(local(login="ZOE"), runtime.provisioned, create=True)
    with pytest.raises(NotFound):
        runtime.overrides.save_agent(local(login="amy"), runtime.provisioned, create=False)
    runtime.overrides.save_agent(local(login="ZoE", skills=["billing"]), runtime.provisioned)
    assert list(runtime.overrides.raw_items(AGENTS)) == ["zoe"]
    runtime.config_changed()
    assert [a.login for a in runtime.config.hybrid_agents] == ["ZoE"]


def test_invalid_agents_name_each_field(runtime):
    with pytest.raises(ConfigInvalid) as caught:
        runtime.overrides.save_agent(
            {"login": "zoe", "password": "short", "skills": ["ok", "not ok"], "max_chats": 500}, runtime.provisioned
        )
    assert set(caught.value.errors) == {"password", "skills.1", "max_chats"}
    assert runtime.overrides.raw_items(AGENTS) == {}


def test_without_finesse_every_agent_needs_a_password(runtime):
    with pytest.raises(ConfigInvalid) as caught:
        runtime.overrides.save_agent({"login": "alice", "skills": ["english"]}, runtime.provisioned)
    assert "without a finesse: section every agent is a local agent" in caught.value.errors["password"][0]
    with_provisioned(runtime, finesse=FINESSE)
    runtime.overrides.save_agent({"login": "alice", "skills": ["english"]}, runtime.provisioned)
    runtime.config_changed()
    alice = runtime.config.hybrid_agent("alice")
    assert alice is not None and not alice.local, "with Finesse: a Finesse agent's settings"
    with pytest.raises(ConfigInvalid) as caught:
        runtime.overrides.save_agent({"login": "amy"}, runtime.provisioned, local=True)
    assert caught.value.errors == {"password": ["a local agent needs a password"]}


def test_a_provisioned_login_is_read_only_with_its_file(runtime):
    alice = HybridAgent("alice", skills=("english",), source="entrypoints/agents.yaml")
    with_provisioned(runtime, alice, finesse=FINESSE)
    for login in ("alice", "ALICE"):
        with pytest.raises(ConfigConflict, match=r"defined in entrypoints/agents\.yaml and is read-only"):
            runtime.overrides.save_agent({"login": login, "skills": ["billing"]}, runtime.provisioned)
    with pytest.raises(ConfigConflict, match=r"entrypoints/agents\.yaml"):
        runtime.overrides.delete_agent("Alice", runtime.provisioned)
    assert runtime.config.hybrid_agent("alice") == alice


def test_merged_keeps_the_files_first_and_skips_a_shadowed_ui_item(runtime, caplog):
    runtime.overrides.save_agent(local(), runtime.provisioned, create=True)
    zoe_file = HybridAgent("Zoe", skills=("billing",), password="from-the-file", source="entrypoints/agents.yaml")
    with_provisioned(runtime, zoe_file)
    merged = runtime.overrides.merged(runtime.provisioned)
    assert merged.hybrid_agents == (zoe_file,), "the file wins; the UI item is skipped"
    assert "shadowed" in caplog.text


def test_delete_removes_an_agent_made_here(runtime):
    runtime.overrides.save_agent(local(), runtime.provisioned, create=True)
    runtime.overrides.delete_agent("ZOE", runtime.provisioned)
    runtime.config_changed()
    assert runtime.config.hybrid_agent("zoe") is None
    with pytest.raises(NotFound):
        runtime.overrides.delete_agent("zoe", runtime.provisioned)


def test_skills_are_one_spelling_across_queues_and_agents(runtime):
    store = runtime.overrides
    store.save(
        "integrations",
        {"name": "Chat", "type": "hybrid", "entry_points": [{"name": "Support", "skills": ["english"]}]},
        runtime.provisioned,
        create=True,
    )
    with pytest.raises(ConfigInvalid) as caught:
        store.save_agent(local(skills=["billing", "English"]), runtime.provisioned)
    assert "queue Support of Chat writes it 'english'" in caught.value.errors["skills.1"][0]
    store.save_agent(local(skills=["English2"]), runtime.provisioned)
    store.save_agent(local(login="amy", skills=["Billing"]), runtime.provisioned)
    with pytest.raises(ConfigInvalid) as caught:
        store.save(
            "integrations",
            {"name": "Chat", "type": "hybrid", "entry_points": [{"name": "Support", "skills": ["billing"]}]},
            runtime.provisioned,
            create=False,
        )
    assert "agents write it 'Billing'" in caught.value.errors["entry_points.0.skills.0"][0]
