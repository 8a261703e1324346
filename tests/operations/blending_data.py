"""Data the agents and Finesse tests (API, UI, operations) build on: a UI-made finesse: section, agents
in the registry in telling states, a recorded agent sync, and a configuration folder whose files
define a finesse: section (the provisioned, read-only case)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import yaml
from redis import Redis

from connector.blending.agents import AgentProfile, AgentRegistry
from connector.blending.finesse.credentials import CredentialStore
from connector.blending.machine import Chat, new_agent
from connector.runtime import Runtime
from connector.store import keys
from tests.conftest import CONFIG_DIR

ADMIN_PASSWORD = "finesse-admin-pw"
SECTION = {
    "publisher": "http://127.0.0.1:9",  # the discard port: nothing listens
    "subscriber": "http://127.0.0.1:9/subscriber",
    "admin_user": "fadmin",
    "admin_password": ADMIN_PASSWORD,
    "not_ready_reason": "Handling Chat",
    "max_chats": 3,
    "chat_enabled": "team:Support",
    "events": "poll",
    "sync_interval_seconds": 120,
}
SYNC_AT = 1_790_000_000.0


def make_section(runtime: Runtime, **overrides: object) -> None:
    """A finesse: section made in the UI (stored beside the provisioned files)."""
    runtime.overrides.save_singleton("finesse", {**SECTION, **overrides}, runtime.provisioned)
    runtime.config_changed()


def set_state(redis: Redis, agent_id: str, **fields: object) -> None:
    registry = AgentRegistry(redis)
    with registry.lock(agent_id) as lock:
        registry.save_state(lock, replace(new_agent(agent_id), **fields))  # type: ignore[arg-type]


def seed_agents(runtime: Runtime) -> None:
    """Alice (Support) chatting and held NOT_READY, logged in to the connector; Bob (Sales) not
    chat-enabled by the team policy, with a refused change; and a recorded sync."""
    redis = runtime.redis
    registry = AgentRegistry(redis)
    registry.save_profile(
        AgentProfile("1001", "alice", "Alice", "Archer", extension="5001", team_id="1", team_name="Support")
    )
    registry.save_profile(
        AgentProfile("1002", "bob", "Bob", "Baker", extension="5002", team_id="2", team_name="Sales", roles=("Agent",))
    )
    set_state(
        redis,
        "1001",
        voice="NOT_READY",
        voice_reason_id="12",
        voice_hold=True,
        chats=("chat-1", "chat-2"),
        chat=Chat.ACTIVE,
        chat_enabled=True,
    )
    set_state(
        redis,
        "1002",
        voice="READY",
        chat=Chat.NOT_READY,
        chat_enabled=False,
        last_error="400 Invalid State: the agent may not change to NOT_READY",
    )
    CredentialStore(redis, runtime.settings.secret_key).save("1001", "alice", "alice-finesse-pw")
    redis.hset(
        keys.agent_sync_status(),
        mapping={
            "at": str(SYNC_AT),
            "agents": 2,
            "added": 2,
            "updated": 0,
            "removed": 0,
            "chat_enabled": 1,
            "error": "",
        },
    )


def provisioned_config_dir(folder: Path, **section: object) -> Path:
    """The test configuration plus a file that defines the finesse: section."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in CONFIG_DIR.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    (folder / "blending.yaml").write_text(yaml.safe_dump({"finesse": {**SECTION, **section}}))
    return folder
