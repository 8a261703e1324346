"""Dispatch: which conversations have work, and the few long-lived jobs that do it.

A conversation with items due goes on the ready list once (its wake flag says it is there); a
capped pool of dispatcher slots says how many dispatch jobs may run. A slot is a ZSET member id →
last heartbeat, so a killed job's slot is reaped after the wake TTL and the pool never shrinks for
long. Retries of a box that is backing off wait in the deferred ZSET until they are due.

The boxes (`store/boxes.py`) claim a slot in the same script that appends an item, so an arrival
and its wake-up are one atomic step.
"""

from __future__ import annotations

from redis import Redis

from connector.store import keys, replies

# Claims a dispatcher slot. The slots are a ZSET id → last heartbeat (Redis time); a slot not
# heard from for `ttl` seconds belonged to a killed job and is reaped, so a crash never shrinks the
# pool for long. Returns the new slot id, or false at the cap. Shared by the scripts below.
CLAIM = """
local function claim(slots, seq, cap, ttl)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now - tonumber(ttl))
  if redis.call('ZCARD', slots) >= tonumber(cap) then return false end
  local id = redis.call('INCR', seq)
  redis.call('ZADD', slots, now, id)
  return id
end
"""

# KEYS: wake flag, ready list, dispatcher slots, slot sequence. ARGV: thread id, wake ttl, cap.
# The sweeper's re-wake: returns a slot id when a dispatch job must be queued, else 0.
_MAKE_READY = (
    CLAIM
    + """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then redis.call('RPUSH', KEYS[2], ARGV[1]) end
if redis.call('LLEN', KEYS[2]) > 0 then return claim(KEYS[3], KEYS[4], ARGV[3], ARGV[2]) or 0 end
return 0
"""
)

# KEYS: deferred zset, ready list, dispatcher slots, slot sequence.
# ARGV: wake key prefix, wake ttl, cap, most members to move.
# Moves the due members of the deferred zset to the ready list (a thread whose wake flag is set is
# already there) and returns {members moved, slot id or 0}: a slot id when a dispatch job must be
# queued. The wake flags are built from the prefix keys.wake() gives, so the key names stay there.
_PROMOTE_DUE = (
    CLAIM
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local thread = string.match(member, '^(.*):[^:]*$') or member
  if redis.call('SET', ARGV[1] .. thread, '1', 'NX', 'EX', ARGV[2]) then redis.call('RPUSH', KEYS[2], thread) end
end
if #due > 0 and redis.call('LLEN', KEYS[2]) > 0 then return {#due, claim(KEYS[3], KEYS[4], ARGV[3], ARGV[2]) or 0} end
return {#due, 0}
"""
)

# KEYS: ready list, dispatcher slots, slot sequence. ARGV: wake ttl, cap. Returns a slot id when
# a dispatch job must be queued (threads wait and a slot is free), else 0.
_CLAIM_IF_READY = (
    CLAIM
    + """
if redis.call('LLEN', KEYS[1]) > 0 then return claim(KEYS[2], KEYS[3], ARGV[2], ARGV[1]) or 0 end
return 0
"""
)


class Dispatch:
    """The ready list, the dispatcher slots and the deferred retries; each step one round trip."""

    def __init__(self, redis: Redis, wake_ttl_seconds: int = 30, dispatchers: int = 2) -> None:
        self.redis = redis
        self.wake_ttl_seconds = wake_ttl_seconds
        self.dispatchers = dispatchers
        self._make_ready = redis.register_script(_MAKE_READY)
        self._claim_if_ready = redis.register_script(_CLAIM_IF_READY)
        self._promote_due = redis.register_script(_PROMOTE_DUE)

    def make_ready(self, thread_id: str) -> int | None:
        """Put a stranded thread back on the ready list; a slot id when a dispatch job must be queued."""
        slot = self._make_ready(
            keys=[keys.wake(thread_id), keys.ready(), keys.dispatchers(), keys.dispatcher_sequence()],
            args=[thread_id, self.wake_ttl_seconds, self.dispatchers],
        )
        return int(slot) or None

    # -- dispatch -----------------------------------------------------------------------------

    def next_ready(self, wait_seconds: float) -> str | None:
        """The next ready thread, waiting up to `wait_seconds` for one (0: no wait)."""
        if wait_seconds <= 0:
            raw = replies.bytes_or_none(self.redis.lpop(keys.ready()))
        else:
            reply = self.redis.blpop([keys.ready()], timeout=wait_seconds)  # type: ignore[arg-type]  # seconds may be decimal since Redis 6; redis-py says int
            popped = replies.popped(reply)
            raw = popped[1] if popped else None
        return raw.decode() if raw is not None else None

    def ready_count(self) -> int:
        """Threads on the ready list now: work no loop has taken yet."""
        return replies.integer(self.redis.llen(keys.ready()))

    def retire(self, slot: int | None) -> None:
        if slot is not None:
            self.redis.zrem(keys.dispatchers(), slot)

    def claim(self) -> int | None:
        """A slot id if the caller should queue a dispatch job: threads wait and a slot is free."""
        slot = self._claim_if_ready(
            keys=[keys.ready(), keys.dispatchers(), keys.dispatcher_sequence()],
            args=[self.wake_ttl_seconds, self.dispatchers],
        )
        return int(slot) or None

    # -- deferred wake-ups of boxes backing off --------------------------------------------------

    def defer(self, thread_id: str, box: str, due_at: float, *, client: Redis | None = None) -> None:
        """Wake the thread at `due_at` (unix s) for `box`'s head; a later call for the box replaces it.
        Each box has its own member, so the other box's wake-up is never lost to this one."""
        (client or self.redis).zadd(keys.deferred(), {keys.deferred_member(thread_id, box): due_at})

    def promote_due(self, batch: int = 500) -> tuple[int, int | None]:
        """Put the threads whose deferred time has come on the ready list; returns how many members
        came due and a slot id when the caller must queue a dispatch job."""
        moved, slot = self._promote_due(
            keys=[keys.deferred(), keys.ready(), keys.dispatchers(), keys.dispatcher_sequence()],
            args=[keys.wake(""), self.wake_ttl_seconds, self.dispatchers, batch],
        )
        return int(moved), int(slot) or None
