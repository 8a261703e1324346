"""Scheduled timers: a queue-status check, the end of an unavailable interval or of a wait, a
survey's timeout. Each is one member of a Redis zset, due at its score.

An RQ scheduled job per timer cost a job hash, two registries, the scheduler's move and a worker's
pick-up: on Hybrid Chat, where every new chat schedules its wait timer, that was 7 % of a worker's
CPU. A zset member costs one ZADD and a share of a poll every worker makes anyway (the sweeper's,
every DEFERRED_POLL_SECONDS).

At least once: a poll claims the due timers by moving their score forward by a lease, in one
script, so two workers never claim the same timer at once; the claimer removes a timer only after
it fired. A worker killed in between leaves it to come due again when the lease ends. Firing twice
is harmless: a timer's outbox item is deduped per conversation, type and firing
(`backends/outbox.py`).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connector.store import keys, replies

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)

CLAIM_LEASE_SECONDS = 30.0
"""How long a claimed timer is left to its claimer before another poll may claim it again."""

# KEYS: timers zset. ARGV: lease seconds, most timers to claim.
# Returns the due members, each now due again at now + lease (Redis time: one clock for every poller).
_CLAIM_DUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), member)
end
return due
"""


@dataclass(frozen=True)
class DueTimer:
    thread_id: str
    item: dict[str, Any]
    member: bytes
    """Its zset member, to remove once it fired."""


class Timers:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._claim_due = redis.register_script(_CLAIM_DUE)

    def schedule(self, thread_id: str, item: dict[str, Any], due_at: float) -> None:
        """Fire `item` into the thread's outbox at `due_at` (unix s). Each call is its own timer,
        as each RQ job was: scheduling one twice fires it twice, and the outbox keeps the first."""
        member = json.dumps({"thread": thread_id, "item": item, "id": uuid.uuid4().hex}, separators=(",", ":"))
        self.redis.zadd(keys.timers(), {member: due_at})

    def claim_due(self, batch: int = 500, lease_seconds: float = CLAIM_LEASE_SECONDS) -> list[DueTimer]:
        """The timers due now, claimed for `lease_seconds`; `done` each once it fired."""
        members = replies.bytes_list(self._claim_due(keys=[keys.timers()], args=[lease_seconds, batch]))
        due = []
        for member in members:
            try:
                due.append(self._parsed(member))
            except (ValueError, KeyError, TypeError):
                # Only this module writes members; one that cannot be read can never fire, and left
                # in place it would be claimed again every lease.
                log.error("unreadable timer dropped", extra={"timer": member[:200].decode(errors="replace")})
                self.redis.zrem(keys.timers(), member)
        return due

    def done(self, timer: DueTimer) -> None:
        self.redis.zrem(keys.timers(), timer.member)

    def pending(self) -> list[DueTimer]:
        """Every timer not yet fired, soonest first (the operator's view and tests)."""
        members = replies.bytes_list(self.redis.zrange(keys.timers(), 0, -1))
        return [self._parsed(member) for member in members]

    @staticmethod
    def _parsed(member: bytes) -> DueTimer:
        found = json.loads(member)
        return DueTimer(str(found["thread"]), dict(found["item"]), member)
