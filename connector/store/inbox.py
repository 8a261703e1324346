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

WAKE_TTL_SECONDS = 60
TIMELINE_LIMIT = 500

# KEYS: dedupe, inbox, active set, wake flag. ARGV: dedupe ttl, item, thread id, wake ttl.
# Returns 0 duplicate, 1 appended (a drain is already queued), 2 appended and a drain must be queued.
_ACCEPT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[4]) then return 2 end
return 1
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

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Forget an empty inbox in the sweeper's set; 0 if an item arrived meanwhile.
_FORGET_IF_EMPTY = """
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Accepted:
    event: InboundEvent
    duplicate: bool
    needs_wake: bool


class Inboxes:
    """Intake and drain primitives over one Redis connection."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._accept = redis.register_script(_ACCEPT)
        self._commit = redis.register_script(_COMMIT)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._forget = redis.register_script(_FORGET_IF_EMPTY)

    # -- intake -------------------------------------------------------------------------------

    def accept(self, events: Sequence[InboundEvent], dedupe_ttl_seconds: int) -> list[Accepted]:
        """Append each new event to its thread's inbox, in the order given; one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for event in events:
            self._accept(
                keys=[
                    keys.dedupe(event.channel, event.asset, event.provider_id),
                    keys.inbox(event.thread_id),
                    keys.active_inboxes(),
                    keys.wake(event.thread_id),
                ],
                args=[dedupe_ttl_seconds, event.to_json(), event.thread_id, WAKE_TTL_SECONDS],
                client=pipe,
            )
        results = pipe.execute()
        return [
            Accepted(event, duplicate=(result == 0), needs_wake=(result == 2))
            for event, result in zip(events, results, strict=True)
        ]

    # -- drain --------------------------------------------------------------------------------

    def clear_wake(self, thread_id: str) -> None:
        """Called by a drain job as it starts: later arrivals must queue a new wake-up."""
        self.redis.delete(keys.wake(thread_id))

    def acquire(self, thread_id: str, lease_seconds: float) -> str | None:
        """Take the thread's lease; the token proves ownership in every later step."""
        token = uuid.uuid4().hex
        if self.redis.set(keys.lease(thread_id), token, nx=True, px=int(lease_seconds * 1000)):
            return token
        return None

    def renew(self, thread_id: str, token: str, lease_seconds: float) -> bool:
        return bool(self._renew(keys=[keys.lease(thread_id)], args=[token, int(lease_seconds * 1000)]))

    def release(self, thread_id: str, token: str) -> None:
        self._release(keys=[keys.lease(thread_id)], args=[token])

    def head(self, thread_id: str) -> bytes | None:
        return self.redis.lindex(keys.inbox(thread_id), 0)

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

    def length(self, thread_id: str) -> int:
        return int(self.redis.llen(keys.inbox(thread_id)))

    def forget_if_empty(self, thread_id: str) -> bool:
        return bool(self._forget(keys=[keys.inbox(thread_id), keys.active_inboxes()], args=[thread_id]))

    def active(self) -> list[str]:
        return sorted(m.decode() for m in self.redis.smembers(keys.active_inboxes()))

    def has_lease(self, thread_id: str) -> bool:
        return bool(self.redis.exists(keys.lease(thread_id)))
