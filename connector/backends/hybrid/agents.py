"""Who an agent is to Hybrid Chat, and with which routing settings.

An agent is a Finesse agent of the registry (synced: their id is Finesse's), or a local agent of a
deployment without Finesse (`hybrid_agents` with a password: their id is `local:<login>`). Their
skills and `max_chats` come from `hybrid_agents` by login; `max_chats` falls back to
`finesse.max_chats`, then to DEFAULT_MAX_CHATS.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.backends.hybrid.state import DEFAULT_MAX_CHATS
from connector.config.model import LOCAL_AGENT_PREFIX, Config

LOCAL_PREFIX = LOCAL_AGENT_PREFIX


@dataclass(frozen=True)
class AgentSettings:
    agent_id: str
    login: str
    name: str
    skills: tuple[str, ...]
    max_chats: int
    local: bool


def local_agent_id(login: str) -> str:
    return f"{LOCAL_PREFIX}{login.casefold()}"


def settings_for(config: Config, agent_id: str, login: str, name: str | None = None) -> AgentSettings:
    configured = config.hybrid_agent(login)
    default_max = config.finesse.max_chats if config.finesse is not None else DEFAULT_MAX_CHATS
    return AgentSettings(
        agent_id=agent_id,
        login=login,
        name=(configured.name if configured and configured.name else None) or name or login,
        skills=configured.skills if configured else (),
        max_chats=(configured.max_chats if configured and configured.max_chats else None) or default_max,
        local=agent_id.startswith(LOCAL_PREFIX),
    )
