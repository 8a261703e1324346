"""The Agents page's and API's view of Hybrid Chat settings (connector/operations/agents.py)."""

from __future__ import annotations

from dataclasses import replace

from connector.backends.hybrid.state import DEFAULT_MAX_CHATS
from connector.config.model import FinesseConfig, HybridAgent
from connector.operations import agents


def test_the_default_most_chats_is_the_routers(runtime):
    assert agents.HYBRID_DEFAULT_MAX_CHATS == DEFAULT_MAX_CHATS
    config = runtime.config
    assert agents.hybrid_settings(config, "nobody").max_chats_in_effect == DEFAULT_MAX_CHATS
    with_finesse = replace(config, finesse=FinesseConfig(publisher="http://127.0.0.1:9", max_chats=7))
    assert agents.hybrid_settings(with_finesse, "nobody").max_chats_in_effect == 7


def test_rows_show_settings_by_login_and_never_a_password(runtime):
    config = replace(
        runtime.config,
        hybrid_agents=(
            HybridAgent("zoe", name="Zoe", password="clear-password", skills=("english",), source="entrypoints/a.yaml"),
            HybridAgent("Alice", skills=("billing",), max_chats=2),
        ),
    )
    rows = agents.hybrid_agents(config)
    assert [r.login for r in rows] == ["Alice", "zoe"]
    alice, zoe = rows
    assert (alice.local, alice.password, alice.max_chats_in_effect, alice.read_only) == (False, "not set", 2, False)
    assert (zoe.local, zoe.password, zoe.read_only, zoe.source) == (True, "set", True, "entrypoints/a.yaml")
    assert "clear-password" not in repr(rows)
    assert agents.hybrid_settings(config, "ALICE").login == "Alice"
    unknown = agents.hybrid_settings(config, "bob")
    assert (unknown.configured, unknown.skills, unknown.max_chats) == (False, (), None)
