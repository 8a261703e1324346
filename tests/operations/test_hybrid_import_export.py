"""Hybrid Chat agents in export and import: an export is a backup, so a local agent made here is
written with its password_hash (never a clear password) and a provisioned clear password as
`${LOGIN_PASSWORD}`; the file loads with check-config, and importing it restores the same logins."""

from __future__ import annotations

from dataclasses import replace

import yaml
from werkzeug.security import check_password_hash

from connector.config.loader import load_config
from connector.config.model import FinesseConfig, HybridAgent
from connector.config.overrides import AGENTS
from connector.operations import import_export

PASSWORD = "zoe-password-1"
FINESSE = FinesseConfig(publisher="http://127.0.0.1:9", admin_user="a", admin_password="b")


def plan(runtime, text: str, env=None) -> import_export.Plan:
    return import_export.plan(text, runtime.config, runtime.provisioned, runtime.overrides, env or {})


def apply(runtime, text: str, env=None) -> list[import_export.Change]:
    written = import_export.apply(plan(runtime, text, env), runtime.overrides, runtime.provisioned)
    runtime.config_changed()
    return written


def document(*agents: dict) -> str:
    return yaml.safe_dump({"hybrid_agents": list(agents)}, sort_keys=False)


def zoe(**extra) -> dict:
    return {"login": "zoe", "name": "Zoe", "password": PASSWORD, "skills": ["english"], **extra}


def test_an_export_writes_the_hash_of_a_local_agent_and_a_reference_for_a_provisioned_password(runtime, tmp_path):
    runtime.overrides.save_agent(zoe(), runtime.provisioned, create=True)
    kim = HybridAgent("kim", password="kims-clear-password", skills=("billing",), source="entrypoints/agents.yaml")
    runtime._config = replace(runtime.provisioned, hybrid_agents=(kim,))
    runtime.config_changed()
    exported = import_export.export(runtime.config)
    assert PASSWORD not in exported.text and "kims-clear-password" not in exported.text
    agents = yaml.safe_load(exported.text)["hybrid_agents"]
    stored_hash = runtime.overrides.raw_items(AGENTS)["zoe"]["password_hash"]
    assert agents == [
        {"login": "kim", "skills": ["billing"], "password": "${KIM_PASSWORD}"},
        {"login": "zoe", "name": "Zoe", "skills": ["english"], "password_hash": stored_hash},
    ]
    assert "KIM_PASSWORD" in exported.variables and "written as their hash" in exported.text
    (tmp_path / "connector.yaml").write_text(exported.text)
    env = {name: "x" * 32 for name in exported.variables}
    loaded = load_config(tmp_path, env=env)
    assert loaded.hybrid_agent("zoe").password_hash == stored_hash
    assert loaded.hybrid_agent("kim").password == "x" * 32


def test_one_agent_or_every_agent_is_exported_by_kind(runtime):
    runtime.overrides.save_agent(zoe(), runtime.provisioned, create=True)
    runtime.overrides.save_agent(zoe(login="amy"), runtime.provisioned, create=True)
    runtime.config_changed()
    one = yaml.safe_load(import_export.export(runtime.config, AGENTS, "ZOE").text)
    assert list(one) == ["hybrid_agents"] and [a["login"] for a in one["hybrid_agents"]] == ["zoe"]
    every = import_export.export(runtime.config, AGENTS)
    assert every.items == 2 and "integrations" not in yaml.safe_load(every.text)


def test_a_backup_restores_the_same_logins(runtime):
    runtime.overrides.save_agent(zoe(), runtime.provisioned, create=True)
    runtime.config_changed()
    text = import_export.export(runtime.config, AGENTS).text
    runtime.overrides.delete_agent("zoe", runtime.provisioned)
    runtime.config_changed()
    assert [c.action for c in plan(runtime, text).changes] == ["add"]
    apply(runtime, text)
    restored = runtime.config.hybrid_agent("zoe")
    assert restored is not None and check_password_hash(restored.password_hash, PASSWORD)
    assert [c.action for c in plan(runtime, text).changes] == ["unchanged"]


def test_an_imported_clear_password_is_hashed_and_compared_with_the_stored_hash(runtime):
    text = document({**zoe(), "password": "${ZOE_PASSWORD}"})
    env = {"ZOE_PASSWORD": PASSWORD}
    written = apply(runtime, text, env)
    assert [(c.kind, c.key, c.action) for c in written] == [(AGENTS, "zoe", "add")]
    raw = runtime.overrides.raw_items(AGENTS)["zoe"]
    assert "password" not in raw and check_password_hash(raw["password_hash"], PASSWORD)
    assert [c.action for c in plan(runtime, text, env).changes] == ["unchanged"]
    changed = plan(runtime, text, {"ZOE_PASSWORD": "another-password"}).changes
    assert [(c.action, c.fields) for c in changed] == [("change", ("password",))]
    kept = plan(runtime, document({"login": "ZOE", "name": "Zoe", "skills": ["english", "billing"]})).changes
    assert [(c.action, c.fields) for c in kept] == [("change", ("login", "skills"))], "no password: the hash is kept"
    apply(runtime, document({"login": "zoe", "name": "Zoe", "skills": ["billing"]}))
    assert runtime.overrides.raw_items(AGENTS)["zoe"]["password_hash"] == raw["password_hash"], "left out: kept"


def test_provisioned_agents_are_unchanged_when_equal_and_refused_otherwise(runtime):
    alice = HybridAgent("alice", skills=("english",), max_chats=3, source="entrypoints/agents.yaml")
    runtime._config = replace(runtime.provisioned, hybrid_agents=(alice,), finesse=FINESSE)
    runtime.config_changed()
    same = plan(runtime, document({"login": "Alice", "skills": ["english"], "max_chats": 3}))
    assert [(c.action, c.reason) for c in same.changes] == [("unchanged", "defined in entrypoints/agents.yaml")]
    other = plan(runtime, document({"login": "alice", "skills": ["billing"], "max_chats": 3}))
    assert [(c.action, c.fields) for c in other.changes] == [("refused", ("skills.0",))]
    assert "read-only here" in other.changes[0].reason


def test_problems_name_the_agent_and_the_field(runtime):
    found = plan(
        runtime,
        document(
            zoe(),
            zoe(login="ZOE"),
            {"login": "amy", "skills": ["english"]},
            {"login": "kim", "password": "${KIM_PASSWORD}"},
            {"login": "lee", "name": "${HOME}", "password": PASSWORD},
        ),
    )
    problems = [str(p) for p in found.problems]
    assert (
        "import: hybrid_agents[1] ('ZOE'): field 'login': repeated in this file (logins are compared in any case)"
        in problems
    )
    assert any(
        p.startswith("import: hybrid_agents[2] ('amy'): field 'password': without a finesse: section") for p in problems
    )
    assert (
        "import: hybrid_agents[3] ('kim'): field 'password': environment variable KIM_PASSWORD is not set "
        "(written ${KIM_PASSWORD})" in problems
    )
    assert any(p.startswith("import: hybrid_agents[4] ('lee'): field 'name': ${...} references") for p in problems)
    assert len(problems) == 4, problems


def test_an_import_checks_skill_spellings_across_queues_and_agents(runtime):
    text = yaml.safe_dump(
        {
            "integrations": [
                {"name": "Chat", "type": "hybrid", "entry_points": [{"name": "Support", "skills": ["English"]}]}
            ],
            "hybrid_agents": [zoe()],
        },
        sort_keys=False,
    )
    problems = [str(p) for p in plan(runtime, text).problems]
    words = "skills are compared exactly, write one spelling"
    assert (
        f"import: integrations ('Chat'): field 'entry_points.0.skills.0': agents write it 'english': {words}"
        in problems
    )
    assert f"import: hybrid_agents ('zoe'): field 'skills.0': queues write it 'English': {words}" in problems
    assert runtime.overrides.raw_items(AGENTS) == {}


def test_an_exported_hybrid_integration_loads_without_eces_fields(runtime, tmp_path):
    queues = {"name": "Chat", "type": "hybrid", "entry_points": [{"name": "Support", "skills": ["english"]}]}
    runtime.overrides.save("integrations", queues, runtime.provisioned, create=True)
    runtime.config_changed()
    exported = import_export.export(runtime.config, "integrations", "Chat")
    item = yaml.safe_load(exported.text)["integrations"][0]
    assert "base_url" not in item and "callback_auth" not in item
    (tmp_path / "chat.yaml").write_text(exported.text)
    assert load_config(tmp_path, env={}).integration("Chat").entry_point("Support").skills == ("english",)
