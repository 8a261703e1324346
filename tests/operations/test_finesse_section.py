"""The finesse: section made in the UI (connector/config/overrides.py, operations/finesse.py): kept
beside the provisioned files, exported and imported like UI rules, shadowed by a file that defines
it; and the words the Agents page and API give for each agent's chat-enabled state."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
import yaml

from connector.blending.agents import AgentProfile
from connector.config.loader import load_config
from connector.config.overrides import MASK, ConfigConflict, ConfigInvalid
from connector.operations import agents, import_export
from connector.runtime import Runtime
from connector.store import keys
from tests.operations.blending_data import ADMIN_PASSWORD, SECTION, make_section, provisioned_config_dir
from tests.operations.test_import_export import SECRETS

ENV = {"FINESSE_ADMIN_USER": "fadmin", "FINESSE_ADMIN_PASSWORD": ADMIN_PASSWORD}


def plan(runtime, text: str, env=ENV) -> import_export.Plan:
    return import_export.plan(text, runtime.config, runtime.provisioned, runtime.overrides, env)


def test_a_ui_made_section_round_trips_through_export_and_import(runtime, redis, tmp_path):
    make_section(runtime)
    made = runtime.config.finesse
    assert made is not None and made.source is None

    exported = import_export.export(runtime.config)
    section = yaml.safe_load(exported.text)["finesse"]
    assert section["admin_password"] == "${FINESSE_ADMIN_PASSWORD}" and ADMIN_PASSWORD not in exported.text
    assert {"FINESSE_ADMIN_USER", "FINESSE_ADMIN_PASSWORD"} <= set(exported.variables)
    (tmp_path / "finesse.yaml").write_text(yaml.safe_dump({"finesse": section}))
    loaded = load_config(tmp_path, ENV).finesse
    assert replace(loaded, source=None) == made, "the exported section is a file check-config loads"

    redis.flushall()  # another deployment: nothing stored (its files are the same test configuration)
    fresh = Runtime(runtime.settings)
    env = {**dict(zip(exported.variables, SECRETS, strict=False)), **ENV}  # the files' secrets, then finesse's
    planned = plan(fresh, exported.text, env)
    assert planned.ok, planned.problems
    assert [c.action for c in planned.changes if c.kind == "finesse"] == ["add"]
    assert [c.kind for c in planned.writes] == ["finesse"], "the provisioned items stay the files'"
    assert fresh.overrides.singleton("finesse") is None, "nothing written by a plan"
    written = import_export.apply(planned, fresh.overrides, fresh.provisioned)
    fresh.config_changed()
    assert [c.kind for c in written] == ["finesse"]
    assert fresh.config.finesse == made
    assert fresh.overrides.singleton("finesse")["admin_password"] == ADMIN_PASSWORD, "resolved from the environment"

    again = plan(fresh, exported.text, env)
    assert [c.action for c in again.changes if c.kind == "finesse"] == ["unchanged"] and again.writes == []


def test_an_imported_change_lists_its_fields_and_a_masked_password_keeps_the_stored_one(runtime):
    make_section(runtime)
    changed = {**SECTION, "max_chats": 5, "chat_enabled": "all", "admin_password": MASK}
    planned = plan(runtime, yaml.safe_dump({"finesse": changed}), env={})
    [change] = planned.changes
    assert (change.action, change.fields) == ("change", ("chat_enabled", "max_chats"))
    import_export.apply(planned, runtime.overrides, runtime.provisioned)
    stored = runtime.overrides.singleton("finesse")
    assert (stored["max_chats"], stored["admin_password"]) == (5, ADMIN_PASSWORD)


def test_an_import_problem_names_the_field(runtime):
    masked = plan(runtime, yaml.safe_dump({"finesse": {**SECTION, "admin_password": MASK}}), env={})
    assert [(p.item, p.field) for p in masked.problems] == [("finesse", "admin_password")]
    bad = plan(runtime, yaml.safe_dump({"finesse": {**SECTION, "max_chats": 0}}))
    assert [(p.item, p.field) for p in bad.problems] == [("finesse", "max_chats")]
    leaked = plan(runtime, yaml.safe_dump({"finesse": {**SECTION, "publisher": "${HOME}"}}))
    assert {(p.item, p.field) for p in leaked.problems} == {("finesse", "publisher")}
    assert any("resolved in secret fields only" in p.message for p in leaked.problems)
    assert runtime.overrides.singleton("finesse") is None


@pytest.fixture
def provisioned(settings, redis, tmp_path) -> Runtime:
    return Runtime(replace(settings, config_dir=provisioned_config_dir(tmp_path / "config")))


def test_a_provisioned_section_refuses_a_different_import_and_ui_edits(provisioned):
    source = provisioned.provisioned.finesse.source
    planned = plan(provisioned, yaml.safe_dump({"finesse": {**SECTION, "max_chats": 9}}))
    [change] = planned.changes
    assert (change.action, change.fields) == ("refused", ("max_chats",)) and source in change.reason
    assert [c.action for c in plan(provisioned, yaml.safe_dump({"finesse": SECTION})).changes] == ["unchanged"]
    with pytest.raises(ConfigConflict, match=source):
        provisioned.overrides.save_singleton("finesse", SECTION, provisioned.provisioned)


def test_a_file_that_defines_the_section_later_wins_over_the_ui_one(runtime, provisioned, caplog):
    make_section(runtime, max_chats=2)  # made while no file defined it
    with caplog.at_level(logging.WARNING, logger="connector.config.overrides"):
        assert provisioned.config.finesse.max_chats == SECTION["max_chats"]
    assert provisioned.config.finesse.source == provisioned.provisioned.finesse.source
    assert "shadowed" in caplog.text


def test_a_stored_section_is_in_effect_until_it_no_longer_validates(runtime, redis):
    """What another process stored (by version) is what every process runs; a section a schema
    change left invalid is skipped, never half-applied."""
    for stored in (SECTION, {"publisher": "nope"}):
        redis.hset(keys.config_items("finesse"), "finesse", json.dumps(stored))
        redis.incr(keys.config_version())
        runtime.config_changed()
        if stored is SECTION:
            assert runtime.config.finesse == replace(runtime.config.finesse, **SECTION)
    assert runtime.config.finesse is None


def test_the_store_refuses_an_invalid_section_naming_each_field(runtime):
    with pytest.raises(ConfigInvalid) as refused:
        runtime.overrides.save_singleton("finesse", {**SECTION, "max_chats": 0, "publisher": "x"}, runtime.provisioned)
    assert set(refused.value.errors) == {"max_chats", "publisher"}


# -- chat-enabled, in words ---------------------------------------------------------------------------

SUPPORT = AgentProfile("1", "ann", team_name="Support", roles=("Agent",))


@pytest.mark.parametrize(
    ("policy", "enabled", "words"),
    [
        ("all", True, "the policy is all: every agent takes chats"),
        ("none", False, "the policy is none: no agent takes chats"),
        ("team:Support,Billing", True, 'team Support is in "team:Support,Billing"'),
        ("team:Billing", False, 'team Support is not in "team:Billing"'),
        ("role:Agent", True, 'roles Agent match "role:Agent"'),
        ("role:Supervisor", False, 'roles Agent do not match "role:Supervisor"'),
        (
            "team:Billing",
            True,
            'team Support is not in "team:Billing"; the policy now makes the agent not enabled, which the next sync '
            "applies",
        ),
        (None, True, "no finesse: section, so no chat_enabled policy"),
    ],
)
def test_chat_enabled_is_explained_by_the_policy(policy, enabled, words):
    assert agents.chat_enabled_reason(policy, SUPPORT, enabled) == words


def test_an_agent_met_only_in_an_event_is_not_explained_by_a_team():
    assert agents.chat_enabled_reason("team:Support", None, True).startswith("not synced from Finesse yet")


def test_a_request_made_by_an_older_process_still_shows_as_waiting(redis):
    redis.set(keys.agent_sync_requested(), "1")
    assert agents.sync_status(redis, None).requested_at == 0.0
