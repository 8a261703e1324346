"""`check-config` on Hybrid Chat: `hybrid_agents` problems name the file, the item (by login) and the
field; without a finesse: section an agent needs a password; logins are unique in any case; a queue's
skills are checked, one spelling across queues and agents."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from connector.config.loader import ConfigError, load_config
from connector.config.overrides import ConfigConflict
from connector.settings import PROJECT_ROOT

QUEUES = """
integrations:
  - name: Chat
    type: hybrid
    entry_points:
      - {name: Support, skills: [english], priority: 1, offer_timeout_seconds: 30, max_wait_seconds: 600}
"""
FINESSE = """
finesse: {publisher: "https://finesse.example.com", admin_user: a, admin_password: b}
"""


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    (tmp_path / "deploy.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env=env or {})
    return [str(p).removeprefix(f"{tmp_path}/") for p in caught.value.problems]


def test_the_example_files_commented_hybrid_chat_sections_load(tmp_path):
    """entrypoints/example.yaml shows a Hybrid Chat integration and hybrid_agents, commented out."""
    text = (PROJECT_ROOT / "entrypoints" / "example.yaml").read_text()
    queues = text[text.index("  # - name: HybridChat") : text.index("\nassets:")]
    agents = text[text.index("# hybrid_agents:") : text.index("\nfinesse:")]
    uncommented = "integrations:\n" + re.sub(r"(?m)^  # ", "  ", queues) + "\n" + re.sub(r"(?m)^# ?", "", agents)
    (tmp_path / "deploy.yaml").write_text(uncommented + FINESSE)
    config = load_config(tmp_path, env={"ZOE_PASSWORD": "zoe-password-1"})
    chat = config.integration("HybridChat")
    assert chat.type == "hybrid" and chat.base_url == ""
    support = chat.entry_point("Support")
    assert (support.id, support.skills, support.priority, support.offer_timeout_seconds) == (
        "Support",
        ("english",),
        1,
        30,
    )
    assert support.max_wait_seconds == 600 and support.unavailable.action == "close"
    assert support.inactivity_timeout_seconds == 900
    assert [a.login for a in config.hybrid_agents] == ["alice", "zoe"]
    assert config.hybrid_agent("ZOE").local and not config.hybrid_agent("alice").local


def test_agent_problems_name_the_item_by_login_and_the_field(tmp_path):
    found = problems(
        tmp_path,
        QUEUES
        + FINESSE
        + """
hybrid_agents:
  - {login: zoe, name: Zoe Zimmer, password: short}
  - {login: amy, password_hash: "not-a-hash"}
  - {login: bob, skills: ["no spaces"]}
""",
    )
    assert "deploy.yaml: hybrid_agents[0] ('zoe'): field 'password': Length must be between 8 and 256." in found
    assert any(
        p.startswith("deploy.yaml: hybrid_agents[1] ('amy'): field 'password_hash': not a password hash") for p in found
    )
    assert any(p.startswith("deploy.yaml: hybrid_agents[2] ('bob'): field 'skills.0': a skill is") for p in found)


def test_without_finesse_an_agent_needs_a_password_or_a_hash(tmp_path):
    found = problems(
        tmp_path,
        QUEUES
        + """
hybrid_agents:
  - {login: zoe, name: Zoe, skills: [english]}
  - {login: amy, password_hash: "scrypt:32768:8:1$salt$0123abcd"}
  - {login: kim, password: "${KIM_PASSWORD}"}
""",
    )
    assert found[0] == (
        "deploy.yaml: hybrid_agents[2] ('kim'): field 'password': environment variable KIM_PASSWORD is not set "
        "(written ${KIM_PASSWORD})"
    )
    assert found[1:] == [
        "deploy.yaml: hybrid_agents[0] ('zoe'): field 'password': without a finesse: section every agent is a local "
        "agent, who logs in with a password: set password (${ENV_NAME}) or password_hash, or add the finesse: "
        "section if this is a Finesse agent"
    ], "an unset variable is its one problem; amy's hash suffices"


def test_logins_are_unique_in_any_case_across_files_and_items_made_here(tmp_path, runtime):
    (tmp_path / "a.yaml").write_text(QUEUES + FINESSE + "hybrid_agents: [{login: alice}]\n")
    (tmp_path / "b.yaml").write_text("hybrid_agents: [{login: Alice, skills: [english]}]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/b.yaml: hybrid_agents ('Alice'): field 'login': already in {tmp_path}/a.yaml"
    ]
    (tmp_path / "b.yaml").unlink()
    runtime._config = load_config(tmp_path, env={})
    runtime.config_changed()
    with pytest.raises(ConfigConflict, match=r"hybrid agent 'alice' is defined in .*a\.yaml and is read-only here"):
        runtime.overrides.save_agent({"login": "ALICE", "skills": ["english"]}, runtime.provisioned)


def test_a_queues_skills_are_checked(tmp_path):
    found = problems(
        tmp_path,
        FINESSE
        + """
integrations:
  - name: Chat
    type: hybrid
    entry_points:
      - {name: Support, skills: [English]}
      - {name: Sales, skills: [english, "bad skill"]}
      - {name: Billing, skills: [billing, Billing]}
hybrid_agents:
  - {login: alice, skills: [english]}
""",
    )
    assert (
        "deploy.yaml: integrations[0] ('Chat'): field 'entry_points.1.skills.1': a skill is 1-64 letters, digits, _ . -"
        in found
    )
    assert (
        "deploy.yaml: integrations[0] ('Chat'): field 'entry_points.2.skills': 'billing' and 'Billing' differ only in "
        "case: skills are compared exactly, write one spelling" in found
    )
    (tmp_path / "deploy.yaml").write_text(
        FINESSE + QUEUES.replace("[english]", "[English]") + "hybrid_agents: [{login: alice, skills: [english]}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    assert [str(p).removeprefix(f"{tmp_path}/") for p in caught.value.problems] == [
        "deploy.yaml: integrations[0] ('Chat'): field 'entry_points.0.skills.0': agents write it 'english': skills "
        "are compared exactly, write one spelling"
    ]


def test_the_command_prints_file_item_and_field(tmp_path):
    (tmp_path / "deploy.yaml").write_text(QUEUES + "hybrid_agents: [{login: zoe, skills: [english]}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "connector", "check-config", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        timeout=60,
    )
    assert result.returncode == 1
    assert "deploy.yaml: hybrid_agents[0] ('zoe'): field 'password': without a finesse: section" in result.stderr


def test_a_queues_inactivity_timeout_is_off_at_0_else_5_seconds_to_a_day(tmp_path):
    (tmp_path / "deploy.yaml").write_text(
        FINESSE
        + """
integrations:
  - name: Chat
    type: hybrid
    entry_points:
      - {name: Support}
      - {name: Sales, inactivity_timeout_seconds: 0}
      - {name: Billing, inactivity_timeout_seconds: 5}
      - {name: Claims, inactivity_timeout_seconds: 86400}
"""
    )
    chat = load_config(tmp_path, env={}).integration("Chat")
    assert [q.inactivity_timeout_seconds for q in chat.entry_points] == [900, 0, 5, 86400], "900 unless set"
    found = problems(
        tmp_path,
        FINESSE
        + """
integrations:
  - name: Chat
    type: hybrid
    entry_points:
      - {name: Support, inactivity_timeout_seconds: 3}
      - {name: Sales, inactivity_timeout_seconds: 86401}
      - {name: Billing, inactivity_timeout_seconds: -1}
""",
    )
    assert found == [
        f"deploy.yaml: integrations[0] ('Chat'): field 'entry_points.{n}.inactivity_timeout_seconds': 0 (off) or 5 "
        "to 86400 seconds"
        for n in range(3)
    ]
