"""Conversation inboxes: the durable, ordered record of what customers sent.

Invariants (DESIGN §6):
- an event is accepted at most once per (channel, asset, provider id) while its dedupe record lives,
  and the dedupe record and the inbox item are written in one atomic script, so a crash can never
  leave a dedupe record without its item (which would drop the provider's retry as a duplicate);
- items are handled in arrival order by the one drain job holding the thread's lease;
- an item leaves the inbox only when its holder commits it, in the same atomic step that writes the
  timeline entry, so a crash before that repeats the item and never loses it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis

from connector.channels.base import InboundEvent
from connector.store import keys

TIMELINE_LIMIT = 500

# KEYS: dedupe, inbox, active set, wake flag, ready list, dispatch flag.
# ARGV: dedupe ttl, item, thread id, wake ttl.
# Returns 0 duplicate, 1 appended, 2 appended and a dispatch job must be queued.
_ACCEPT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[4]) then
  redis.call('RPUSH', KEYS[5], ARGV[3])
  if redis.call('SET', KEYS[6], '1', 'NX', 'EX', ARGV[4]) then return 2 end
end
return 1
"""

# KEYS: wake flag, ready list, dispatch flag. ARGV: thread id, wake ttl. The sweeper's re-wake:
# returns 1 when a dispatch job must be queued.
_MAKE_READY = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then redis.call('RPUSH', KEYS[2], ARGV[1]) end
if redis.call('LLEN', KEYS[2]) > 0 and redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[2]) then return 1 end
return 0
"""

# KEYS: wake flag, lease. ARGV: token, lease ms. The starting job clears the wake flag first, so an
# item that arrives from now on queues a new wake-up even if this job finds the lease taken.
_ACQUIRE = """
redis.call('DEL', KEYS[1])
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""

# KEYS: lease, inbox. ARGV: token, lease ms. Renews the lease and returns the head, or false when
# the lease is no longer ours (-1) or the inbox is empty (nil).
_RENEW_AND_PEEK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('LINDEX', KEYS[2], 0)
"""

# KEYS: lease, inbox, timeline, activity zset. ARGV: token, expected head, timeline entry, limit,
# thread id, now. Pops the head only if this caller still holds the lease and the head is the item
# it handled.
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[2] then return -2 end
redis.call('LPOP', KEYS[2])
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[3], ARGV[3])
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
end
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
return 1
"""

# KEYS: lease, inbox, active set. ARGV: token, thread id. Releases our lease; forgets the thread in
# the sweeper's set when its inbox is empty. Returns the inbox length left.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
local left = redis.call('LLEN', KEYS[2])
if left == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return left
"""


@dataclass(frozen=True)
class Accepted:
    event: InboundEvent
    duplicate: bool
    needs_dispatch: bool


class Inboxes:
    """Intake and drain primitives; each step is one round trip to Redis."""

    def __init__(self, redis: Redis, wake_ttl_seconds: int = 30) -> None:
        self.redis = redis
        self.wake_ttl_seconds = wake_ttl_seconds
        self._accept = redis.register_script(_ACCEPT)
        self._make_ready = redis.register_script(_MAKE_READY)
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew_and_peek = redis.register_script(_RENEW_AND_PEEK)
        self._commit = redis.register_script(_COMMIT)
        self._release = redis.register_script(_RELEASE)

    # -- intake -------------------------------------------------------------------------------

    def accept(self, events: Sequence[InboundEvent], dedupe_ttl_seconds: int) -> list[Accepted]:
        """Append each new event to its thread's inbox, in the order given."""
        if len(events) == 1:
            # One event is the common case: a direct EVALSHA is one round trip, where a pipeline
            # adds redis-py's SCRIPT EXISTS check.
            results = [self._accept_one(events[0], dedupe_ttl_seconds, self.redis)]
        else:
            pipe = self.redis.pipeline(transaction=False)
            for event in events:
                self._accept_one(event, dedupe_ttl_seconds, pipe)
            results = pipe.execute()
        return [
            Accepted(event, duplicate=(result == 0), needs_dispatch=(result == 2))
            for event, result in zip(events, results, strict=True)
        ]

    def _accept_one(self, event: InboundEvent, dedupe_ttl_seconds: int, client: Redis) -> int:
        return self._accept(
            keys=[
                keys.dedupe(event.channel, event.asset, event.provider_id),
                keys.inbox(event.thread_id),
                keys.active_inboxes(),
                keys.wake(event.thread_id),
                keys.ready(),
                keys.dispatch_flag(),
            ],
            args=[dedupe_ttl_seconds, event.to_json(), event.thread_id, self.wake_ttl_seconds],
            client=client,
        )

    def make_ready(self, thread_id: str) -> bool:
        """Put a stranded thread back on the ready list; True when a dispatch job must be queued."""
        result = self._make_ready(
            keys=[keys.wake(thread_id), keys.ready(), keys.dispatch_flag()], args=[thread_id, self.wake_ttl_seconds]
        )
        return result == 1

    # -- dispatch -----------------------------------------------------------------------------

    def start_dispatch(self) -> None:
        """Called by a dispatch job as it starts: later arrivals must queue another job."""
        self.redis.delete(keys.dispatch_flag())

    def next_ready(self) -> str | None:
        raw = self.redis.lpop(keys.ready())
        return raw.decode() if raw is not None else None

    def claim_dispatch(self) -> bool:
        """True if the caller should queue a dispatch job (ready threads wait and none is queued)."""
        return bool(self.redis.llen(keys.ready())) and bool(
            self.redis.set(keys.dispatch_flag(), "1", nx=True, ex=self.wake_ttl_seconds)
        )

    # -- drain --------------------------------------------------------------------------------

    def acquire(self, thread_id: str, lease_seconds: float) -> str | None:
        """Clear the wake flag and take the thread's lease; the token proves ownership later."""
        token = uuid.uuid4().hex
        taken = self._acquire(keys=[keys.wake(thread_id), keys.lease(thread_id)], args=[token, _ms(lease_seconds)])
        return token if taken == 1 else None

    def renew_and_peek(self, thread_id: str, token: str, lease_seconds: float) -> bytes | LeaseLost | None:
        """The head item with the lease renewed; None when empty; LEASE_LOST when no longer ours."""
        head = self._renew_and_peek(
            keys=[keys.lease(thread_id), keys.inbox(thread_id)], args=[token, _ms(lease_seconds)]
        )
        return LEASE_LOST if head == -1 else head

    def commit(self, thread_id: str, token: str, item: bytes, entry: dict[str, object] | None) -> bool:
        """Pop the handled head and record its timeline entry atomically; False if the lease was lost."""
        result = self._commit(
            keys=[keys.lease(thread_id), keys.inbox(thread_id), keys.timeline(thread_id), keys.threads_by_activity()],
            args=[
                token,
                item,
                json.dumps(entry, separators=(",", ":")) if entry else "",
                TIMELINE_LIMIT,
                thread_id,
                time.time(),
            ],
        )
        return result == 1

    def release(self, thread_id: str, token: str) -> int:
        """Give the lease back; returns how many items are left (an arrival during the release)."""
        return int(
            self._release(
                keys=[keys.lease(thread_id), keys.inbox(thread_id), keys.active_inboxes()], args=[token, thread_id]
            )
        )

    # -- inspection (sweeper, tests) ----------------------------------------------------------

    def head(self, thread_id: str) -> bytes | None:
        return self.redis.lindex(keys.inbox(thread_id), 0)

    def length(self, thread_id: str) -> int:
        return int(self.redis.llen(keys.inbox(thread_id)))

    def active(self) -> list[str]:
        return sorted(m.decode() for m in self.redis.smembers(keys.active_inboxes()))

    def stranded(self, thread_id: str) -> bool:
        """Items waiting, no drain holding the lease and no wake-up queued: nobody will come."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(keys.lease(thread_id), keys.wake(thread_id))
        pipe.llen(keys.inbox(thread_id))
        held_or_queued, length = pipe.execute()
        return held_or_queued == 0 and length > 0


class LeaseLost:
    """Marker: the lease lapsed and another drain may own the thread now."""


LEASE_LOST = LeaseLost()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
