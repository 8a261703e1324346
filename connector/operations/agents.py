"""Agents and agent sync, as the operator UI and the REST API both show them.

Each agent is read from the registry that agent sync fills (`connector/blending/agents.py`): who they
are in Finesse, their voice and chat states, whether the connector holds them NOT_READY, whether the
deployment's `finesse.chat_enabled` policy lets them take chats (and why), whether they logged in to
the connector, and the last change Finesse refused. Nothing here calls Finesse: a sync is asked of
the listener (it owns the Finesse sessions), which runs it within a second and records its outcome.

Hybrid Chat settings (`hybrid_agents`, by login): a Finesse agent's skills and most chats, and the local
agents of a deployment without Finesse, who log in with a password the connector keeps as a hash only.
Provisioned ones are read-only with their file; those made here go through the config store.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis

from connector.blending.agents import AgentProfile, AgentRecord, AgentRegistry
from connector.blending.finesse.credentials import CredentialStore
from connector.blending.service import may_need_reconcile
from connector.config.model import ChatEnabledPolicy, Config, FinesseConfig, HybridAgent
from connector.config.overrides import PASSWORD_NOT_SET, PASSWORD_SET
from connector.operations.finesse import NotConfigured
from connector.runtime import Runtime
from connector.store import keys, replies

HYBRID_DEFAULT_MAX_CHATS = 3
"""An agent's most chats when neither `hybrid_agents` nor `finesse.max_chats` says (docs/hybrid.md; the
router's own default, which tests/operations/test_hybrid_agents_ops.py holds equal)."""
SYNC_REQUEST_SECONDS = 300
"""How long a sync request waits for the listener before it lapses (no listener is running)."""


@dataclass(frozen=True)
class AgentRow:
    """One agent as operators see it."""

    id: str
    login_name: str | None
    name: str | None
    team: str | None
    extension: str | None
    logged_in_to_connector: bool
    voice_state: str
    voice_reason_id: str | None
    chat_state: str
    active_chats: int
    chat_enabled: bool
    chat_enabled_reason: str
    held_not_ready_by_connector: bool
    pending_change: bool
    """A change the connector asked for is not confirmed yet, or was refused (it is asked again)."""
    last_error: str | None
    updated_at: float | None


@dataclass(frozen=True)
class SyncStatus:
    """The last agent sync and any request waiting for the listener."""

    at: float | None
    """When the last run started (unix seconds); None: never ran."""
    ok: bool | None
    error: str | None
    agents: int | None
    added: int | None
    updated: int | None
    removed: int | None
    chat_enabled: int | None
    requested_at: float | None
    """An operator's request the listener has not taken yet."""
    running: bool
    interval_seconds: float | None
    """finesse.sync_interval_seconds; None without a finesse: section."""

    @property
    def outcome(self) -> str:
        if self.at is None:
            return "never run"
        if not self.ok:
            return f"failed: {self.error}"
        return (
            f"{self.agents} agents ({self.added} added, {self.updated} updated, {self.removed} removed), "
            f"{self.chat_enabled} chat-enabled"
        )


def chat_enabled_reason(policy_text: str | None, profile: AgentProfile | None, enabled: bool) -> str:
    """Why the agent may or may not take chats, in the words of the `finesse.chat_enabled` policy."""
    if policy_text is None:
        return "no finesse: section, so no chat_enabled policy"
    try:
        policy = ChatEnabledPolicy.parse(policy_text)
    except ValueError:
        return f'the chat_enabled policy "{policy_text}" is not valid'
    if profile is None:
        return "not synced from Finesse yet (known only from an event): the next sync applies the policy"
    quoted = f'"{policy_text}"'
    match policy.kind:
        case "all":
            because = "the policy is all: every agent takes chats"
        case "none":
            because = "the policy is none: no agent takes chats"
        case "team":
            team = profile.team_name or "(no team)"
            listed = "is" if policy.includes(profile) else "is not"
            because = f"team {team} {listed} in {quoted}"
        case _:
            roles = ", ".join(profile.roles) or "(none)"
            listed = "match" if policy.includes(profile) else "do not match"
            because = f"roles {roles} {listed} {quoted}"
    if policy.includes(profile) != enabled:
        now = "enabled" if policy.includes(profile) else "not enabled"
        because += f"; the policy now makes the agent {now}, which the next sync applies"
    return because


def _row(record: AgentRecord, logged_in: set[str], policy_text: str | None) -> AgentRow:
    profile, state = record.profile, record.state
    return AgentRow(
        id=record.agent_id,
        login_name=profile.login_name or None if profile else None,
        name=profile.name or None if profile else None,
        team=profile.team_name if profile else None,
        extension=profile.extension if profile else None,
        logged_in_to_connector=record.agent_id in logged_in,
        voice_state=state.voice,
        voice_reason_id=state.voice_reason_id,
        chat_state=state.chat.value,
        active_chats=len(state.chats),
        chat_enabled=state.chat_enabled,
        chat_enabled_reason=chat_enabled_reason(policy_text, profile, state.chat_enabled),
        held_not_ready_by_connector=state.voice_hold,
        pending_change=may_need_reconcile(state),
        last_error=state.last_error,
        updated_at=state.updated_at or None,
    )


def _rows(rt: Runtime, records: Iterable[AgentRecord]) -> list[AgentRow]:
    logged_in = set(CredentialStore(rt.redis, rt.settings.secret_key).agents())
    finesse = rt.config.finesse
    policy = finesse.chat_enabled if finesse is not None else None
    return [_row(record, logged_in, policy) for record in records]


def listing(rt: Runtime) -> list[AgentRow]:
    """Every agent in the registry, by Finesse id (one round trip per kind of record)."""
    return _rows(rt, AgentRegistry(rt.redis).records())


def one(rt: Runtime, agent_id: str) -> AgentRow | None:
    registry = AgentRegistry(rt.redis)
    if not replies.integer(rt.redis.sismember(keys.agents(), agent_id)):
        return None
    return _rows(rt, [AgentRecord(agent_id, registry.profile(agent_id), registry.state(agent_id))])[0]


def _number(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def sync_status(redis: Redis, config: FinesseConfig | None) -> SyncStatus:
    """The last run as the listener recorded it (`keys.agent_sync_status`), and a waiting request."""
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(keys.agent_sync_status())
    pipe.get(keys.agent_sync_requested())
    pipe.exists(keys.agent_sync_lock())
    stored, requested, running = replies.execute(pipe)
    status = {k.decode(): v.decode() for k, v in replies.bytes_hash(stored).items()}
    request = replies.bytes_or_none(requested)
    requested_at: float | None = None
    if request is not None:
        # request_sync stores the time; an older process stored "1": requested, time unknown (0)
        requested_at = float(request) if request.replace(b".", b"", 1).isdigit() else 0.0
        requested_at = requested_at if requested_at > 1e9 else 0.0
    at = status.get("at")
    error = status.get("error") or None
    return SyncStatus(
        at=float(at) if at else None,
        ok=None if not at else error is None,
        error=error,
        agents=_number(status.get("agents")),
        added=_number(status.get("added")),
        updated=_number(status.get("updated")),
        removed=_number(status.get("removed")),
        chat_enabled=_number(status.get("chat_enabled")),
        requested_at=requested_at,
        running=bool(running),
        interval_seconds=config.sync_interval_seconds if config is not None else None,
    )


def request_sync(rt: Runtime) -> SyncStatus:
    """Ask the listener for a sync now (it looks every half second); NotConfigured without finesse:."""
    config = rt.config.finesse
    if config is None:
        raise NotConfigured()
    rt.redis.set(keys.agent_sync_requested(), repr(time.time()), ex=SYNC_REQUEST_SECONDS)
    return sync_status(rt.redis, config)


# -- Hybrid Chat settings (hybrid_agents) -------------------------------------------------------------


@dataclass(frozen=True)
class HybridAgentRow:
    """An agent's Hybrid Chat settings as operators see them (never a password or its hash)."""

    login: str
    name: str | None
    skills: tuple[str, ...]
    max_chats: int | None
    """As configured; None: the default (`finesse.max_chats`, else Hybrid Chat's own)."""
    max_chats_in_effect: int
    local: bool
    """Logs in with a password the connector keeps (no Finesse)."""
    password: str
    """ "set" or "not set": whether the agent has a password here; the password itself is never shown."""
    source: str | None
    """The provisioning file that defines it (read-only here), or None."""
    configured: bool
    """An item exists (in a file, or made here); False: a Finesse agent on the defaults."""

    @property
    def read_only(self) -> bool:
        return self.source is not None


def default_max_chats(config: Config) -> int:
    """An agent's most chats when their `hybrid_agents` item does not say: `finesse.max_chats`, else 3."""
    return config.finesse.max_chats if config.finesse is not None else HYBRID_DEFAULT_MAX_CHATS


def _hybrid_row(config: Config, login: str, agent: HybridAgent | None) -> HybridAgentRow:
    local = agent is not None and agent.local
    in_effect = (agent.max_chats if agent is not None else None) or default_max_chats(config)
    return HybridAgentRow(
        login=agent.login if agent is not None else login,
        name=agent.name if agent is not None else None,
        skills=agent.skills if agent is not None else (),
        max_chats=agent.max_chats if agent is not None else None,
        max_chats_in_effect=in_effect,
        local=local,
        password=PASSWORD_SET if local else PASSWORD_NOT_SET,
        source=agent.source if agent is not None else None,
        configured=agent is not None,
    )


def hybrid_agents(config: Config) -> list[HybridAgentRow]:
    """Every `hybrid_agents` item in effect (provisioned, then made here), by login."""
    return sorted((_hybrid_row(config, a.login, a) for a in config.hybrid_agents), key=lambda r: r.login.casefold())


def hybrid_settings(config: Config, login: str) -> HybridAgentRow:
    """The settings of `login` (any case): its item, or a Finesse agent's defaults (`configured` False)."""
    return _hybrid_row(config, login, config.hybrid_agent(login))


def save_hybrid_agent(rt: Runtime, body: Any, *, create: bool | None = None, local: bool = False) -> HybridAgentRow:
    """Create or change an agent's settings through the config store (a password is hashed there; an
    empty one keeps the stored hash). Raises ConfigInvalid naming the field, ConfigConflict, NotFound."""
    stored = rt.overrides.save_agent(body, rt.provisioned, create=create, local=local)
    rt.config_changed()
    return hybrid_settings(rt.config, stored.item.login)


def delete_hybrid_agent(rt: Runtime, login: str) -> None:
    """Remove settings made here: a Finesse agent goes back to the defaults; a local agent is gone."""
    rt.overrides.delete_agent(login, rt.provisioned)
    rt.config_changed()
