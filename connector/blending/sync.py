"""Agent sync: Finesse's agents into the connector's registry, periodically and on demand.

Each run reads every user with one admin `GET /finesse/api/Users` and, per agent:
- stores the profile (id, login name, names, team, extension, roles);
- applies the deployment's chat-enabled policy (`finesse.chat_enabled`). On UCCX the reference
  product needed a role assigned by hand after each sync; here it is a setting;
- feeds the User state it read to blending as a report, so every sync also reconciles voice states.
Agents Finesse no longer has are removed. While Finesse cannot answer, nothing is removed: an
outage must not empty the registry.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from connector.blending.agents import AgentProfile, AgentRegistry
from connector.blending.events import ChatEnabledChanged
from connector.blending.finesse.client import FinesseClient, FinesseError, FinesseUser
from connector.blending.service import BlendingService, voice_report
from connector.config.model import ChatEnabledPolicy
from connector.store import keys

log = logging.getLogger(__name__)

_SYNC_LOCK_SECONDS = 300
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SyncInProgress(Exception):
    """Another process is syncing agents now."""


@dataclass(frozen=True)
class SyncResult:
    at: float
    agents: int
    added: int
    updated: int
    removed: int
    chat_enabled: int


def profile_of(user: FinesseUser) -> AgentProfile:
    return AgentProfile(
        agent_id=user.id,
        login_name=user.login_name,
        first_name=user.first_name,
        last_name=user.last_name,
        extension=user.extension,
        team_id=user.team_id,
        team_name=user.team_name,
        roles=tuple(user.roles),
    )


class AgentSync:
    """Keeps the registry equal to Finesse's agents. One run at a time across processes."""

    def __init__(
        self,
        client: FinesseClient,
        registry: AgentRegistry,
        service: BlendingService,
        policy: ChatEnabledPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.registry = registry
        self.service = service
        self.policy = policy
        self.clock = clock

    def sync(self) -> SyncResult:
        """One run, now. Raises SyncInProgress if another is running, FinesseError if Finesse cannot
        answer (the registry is left as it was)."""
        redis = self.registry.redis
        token = uuid.uuid4().hex
        if not redis.set(keys.agent_sync_lock(), token, nx=True, ex=_SYNC_LOCK_SECONDS):
            raise SyncInProgress("agent sync is already running")
        try:
            return self._run()
        except FinesseError as exc:
            redis.hset(keys.agent_sync_status(), mapping={"at": str(self.clock()), "error": str(exc)})
            raise
        finally:
            redis.eval(_RELEASE, 1, keys.agent_sync_lock(), token)

    def _run(self) -> SyncResult:
        at = self.clock()  # before the read: a notification handled meanwhile is newer than this read
        users = self.client.users()
        known = set(self.registry.ids())
        added = updated = enabled_count = 0
        for user in users:
            is_new = user.id not in known
            changed = self.registry.save_profile(profile_of(user))
            added += is_new
            updated += changed and not is_new
            enabled = self.policy.includes(user)
            enabled_count += enabled
            if is_new or self.registry.state(user.id).chat_enabled != enabled:
                self.service.handle(ChatEnabledChanged(user.id, enabled, at=at))
            self.service.handle(voice_report(user, at))
        gone = known - {u.id for u in users}
        for agent_id in sorted(gone):
            self.registry.remove(agent_id)
        result = SyncResult(at, len(users), added, updated, len(gone), enabled_count)
        self.registry.redis.hset(
            keys.agent_sync_status(),
            mapping={
                "at": str(at),
                "agents": result.agents,
                "added": added,
                "updated": updated,
                "removed": len(gone),
                "chat_enabled": enabled_count,
                "error": "",
            },
        )
        log.info("agent sync: %d agents, %d added, %d updated, %d removed", result.agents, added, updated, len(gone))
        return result

    def run_periodically(self, interval_seconds: float, stop: threading.Event) -> None:
        """Sync every `interval_seconds` (finesse.sync_interval_seconds) until `stop` is set; a failed
        run is logged and retried at the next interval."""
        while not stop.is_set():
            try:
                self.sync()
            except SyncInProgress:
                log.debug("agent sync skipped: another process is running it")
            except FinesseError as exc:
                log.warning("agent sync failed, retried in %.0f s: %s", interval_seconds, exc)
            stop.wait(interval_seconds)
