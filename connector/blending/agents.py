"""The agent registry: who the agents are (synced from Finesse) and their blending state, in Redis.

Invariants:
- an agent's blending state is written only by the holder of that agent's lock, and the write
  itself checks the lock token in one script. A handler whose lease ran out (a stalled worker)
  cannot overwrite a newer state: it gets `LockLost`;
- the profile (what Finesse says about the agent) and the state (what blending knows) are separate
  keys with separate writers (sync, and the service), so neither can clobber the other;
- login names map to agent ids case-insensitively, and the mapping follows a renamed login.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any

from redis import Redis

from connector.blending.machine import AgentState, Chat, Dialog, VoiceRequest, new_agent
from connector.store import keys, replies
from connector.store.tokens import DELETE_IF_HELD

# KEYS: lock, state, agents set. ARGV: token, state JSON, agent id.
_SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""


class AgentBusy(Exception):
    """Another handler held the agent's lock for longer than the wait allows."""


class LockLost(Exception):
    """The lease ran out before the handler saved: another handler may have changed the agent since."""


@dataclass(frozen=True)
class AgentProfile:
    """An agent as Finesse reports it (agent sync keeps it current)."""

    agent_id: str
    login_name: str = ""
    first_name: str = ""
    last_name: str = ""
    extension: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    roles: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or self.login_name


@dataclass(frozen=True)
class AgentRecord:
    """What the registry knows about one agent; `profile` is None for an agent met only in events."""

    agent_id: str
    profile: AgentProfile | None
    state: AgentState


@dataclass(frozen=True)
class AgentLock:
    agent_id: str
    token: str


# -- state as JSON (fields unknown to this version are dropped, missing ones take their defaults) --

_STATE_FIELDS = {f.name for f in fields(AgentState)}
_PROFILE_FIELDS = {f.name for f in fields(AgentProfile)}


def encode_state(state: AgentState) -> str:
    return json.dumps(asdict(state), separators=(",", ":"))


def decode_state(agent_id: str, text: str | bytes | None) -> AgentState:
    if not text:
        return new_agent(agent_id)
    raw: dict[str, Any] = {k: v for k, v in json.loads(text).items() if k in _STATE_FIELDS}
    raw["agent_id"] = agent_id
    raw["dialogs"] = tuple(Dialog(**d) for d in raw.get("dialogs", ()))
    raw["request"] = VoiceRequest(**raw["request"]) if raw.get("request") else None
    raw["chat"] = Chat(raw.get("chat", Chat.READY))
    for name in ("ended_dialogs", "chats", "ended_chats", "presence"):
        if name in raw:
            raw[name] = tuple(raw[name])
    return AgentState(**raw)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _encode_profile(profile: AgentProfile) -> dict[str, str]:
    data = asdict(profile)
    data["roles"] = json.dumps(list(profile.roles))
    return {k: "" if v is None else str(v) for k, v in data.items()}


def _decode_profile(agent_id: str, data: dict[bytes, bytes]) -> AgentProfile | None:
    if not data:
        return None
    raw = {_text(k): _text(v) for k, v in data.items() if _text(k) in _PROFILE_FIELDS}
    roles = tuple(json.loads(raw.pop("roles", "[]")))
    extension, team_id, team_name = (raw.pop(name, "") or None for name in ("extension", "team_id", "team_name"))
    raw.pop("agent_id", None)
    return AgentProfile(
        agent_id=agent_id, roles=roles, extension=extension, team_id=team_id, team_name=team_name, **raw
    )


class AgentRegistry:
    """Agents and their blending state over one Redis connection. Thread-safe (redis-py pools)."""

    def __init__(self, redis: Redis, *, lease_seconds: float = 30.0, wait_seconds: float = 10.0) -> None:
        self.redis = redis
        self.lease_ms = int(lease_seconds * 1000)
        self.wait_seconds = wait_seconds
        self._save = redis.register_script(_SAVE)
        self._release = redis.register_script(DELETE_IF_HELD)

    # -- profiles (agent sync) --------------------------------------------------------------------

    def save_profile(self, profile: AgentProfile) -> bool:
        """Store the profile; True if it was new or changed."""
        old = self.profile(profile.agent_id)
        if old == profile:
            return False
        pipe = self.redis.pipeline(transaction=True)
        if old and old.login_name and old.login_name.casefold() != profile.login_name.casefold():
            pipe.hdel(keys.agent_logins(), old.login_name.casefold())
        pipe.delete(keys.agent_profile(profile.agent_id))
        pipe.hset(keys.agent_profile(profile.agent_id), mapping=_encode_profile(profile))
        if profile.login_name:
            pipe.hset(keys.agent_logins(), profile.login_name.casefold(), profile.agent_id)
        pipe.sadd(keys.agents(), profile.agent_id)
        replies.execute(pipe)
        return True

    def profile(self, agent_id: str) -> AgentProfile | None:
        return _decode_profile(agent_id, replies.bytes_hash(self.redis.hgetall(keys.agent_profile(agent_id))))

    def agent_id_for_login(self, login_name: str) -> str | None:
        found = replies.bytes_or_none(self.redis.hget(keys.agent_logins(), login_name.strip().casefold()))
        return _text(found) if found else None

    def remove(self, agent_id: str) -> None:
        """Forget the agent (Finesse no longer has it)."""
        profile = self.profile(agent_id)
        pipe = self.redis.pipeline(transaction=True)
        if profile and profile.login_name:
            pipe.hdel(keys.agent_logins(), profile.login_name.casefold())
        pipe.delete(keys.agent_profile(agent_id), keys.agent_state(agent_id))
        pipe.srem(keys.agents(), agent_id)
        pipe.srem(keys.blending_due(), agent_id)
        replies.execute(pipe)

    def ids(self) -> list[str]:
        return sorted(_text(m) for m in replies.bytes_set(self.redis.smembers(keys.agents())))

    # -- blending state ---------------------------------------------------------------------------

    def state(self, agent_id: str) -> AgentState:
        """The stored state (a fresh one for an unknown agent). Read without the lock: a snapshot."""
        return decode_state(agent_id, replies.bytes_or_none(self.redis.get(keys.agent_state(agent_id))))

    def records(self) -> list[AgentRecord]:
        """Every agent with profile and state, read in one round trip per kind."""
        ids = self.ids()
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for agent_id in ids:
            pipe.hgetall(keys.agent_profile(agent_id))
        profiles = replies.execute(pipe)
        states = replies.bytes_or_none_list(self.redis.mget([keys.agent_state(agent_id) for agent_id in ids]))
        return [
            AgentRecord(agent_id, _decode_profile(agent_id, p), decode_state(agent_id, s))
            for agent_id, p, s in zip(ids, profiles, states, strict=True)
        ]

    @contextmanager
    def lock(self, agent_id: str) -> Iterator[AgentLock]:
        """Hold the agent exclusively: the one handler that loads, decides, acts and saves."""
        token = uuid.uuid4().hex
        key = keys.agent_lock(agent_id)
        deadline = time.monotonic() + self.wait_seconds
        pause = 0.001
        while not self.redis.set(key, token, nx=True, px=self.lease_ms):
            if time.monotonic() >= deadline:
                raise AgentBusy(f"agent {agent_id} is held by another handler for over {self.wait_seconds:g} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        try:
            yield AgentLock(agent_id, token)
        finally:
            self._release(keys=[key], args=[token])

    def save_state(self, lock: AgentLock, state: AgentState) -> None:
        """Write the state if `lock` is still held; raises LockLost otherwise."""
        if state.agent_id != lock.agent_id:
            raise ValueError(f"state of agent {state.agent_id} saved under the lock of agent {lock.agent_id}")
        agent_id = lock.agent_id
        saved = self._save(
            keys=[keys.agent_lock(agent_id), keys.agent_state(agent_id), keys.agents()],
            args=[lock.token, encode_state(state), agent_id],
        )
        if not saved:
            raise LockLost(f"the lease on agent {lock.agent_id} ran out before its state was saved")

    # -- reconcile bookkeeping --------------------------------------------------------------------

    def mark_due(self, agent_id: str, due: bool) -> None:
        if due:
            self.redis.sadd(keys.blending_due(), agent_id)
        else:
            self.redis.srem(keys.blending_due(), agent_id)

    def due(self) -> list[str]:
        return sorted(_text(m) for m in replies.bytes_set(self.redis.smembers(keys.blending_due())))
