"""Conversation boxes: the durable, ordered record of what customers sent (inbox) and of what the
contact center sends them (outbox).

Invariants (docs/architecture.md, "Reliability"):
- an event is accepted at most once per dedupe key while its dedupe record lives, and the dedupe
  record and the box item are written in one atomic script, so a crash can never leave a dedupe
  record without its item (which would drop the sender's retry as a duplicate);
- both boxes of a thread are drained by the one job holding the thread's lease, each in arrival
  order, so one writer at a time changes a thread;
- an item leaves its box only when its holder commits it, in the same atomic step that writes the
  timeline entry and the thread, so a crash before that repeats the item and never loses it;
- a box whose head failed with a retryable error is skipped until its `until` time (its retry
  state), while the other box keeps flowing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from redis import Redis
from redis.client import Pipeline
from redis.typing import EncodableT

from connector.channels.base import InboundEvent
from connector.conversations import State
from connector.store import keys, replies, scripts
from connector.store.dispatch import CLAIM
from connector.store.tallies import (
    TRAFFIC_TTL_SECONDS,
    Counter,
    Tally,
    Traffic,
    counter_field,
    minute_of,
    traffic_field,
)
from connector.store.thread_script import ThreadScript

TIMELINE_LIMIT = 500
SWEEP_BATCH = 500
"""Threads checked per round trip by the sweeper."""

# KEYS: dedupe, box, active set, wake flag, ready list, dispatcher slots, slot sequence, retry state,
# tallies, this minute's traffic, lease. ARGV: dedupe ttl, item, thread id, wake ttl, dispatcher cap,
# box name, tally field ('' none), traffic field ('' none), traffic ttl.
# Returns -1 duplicate, 0 appended, or a slot id (> 0): appended, and a dispatch job must be
# queued for that slot. A box backing off is not woken: its head must go first and its retry
# wake-up is already scheduled, so a drain now would only find it waiting (during an outage
# that churn would cost more than the intake itself). Nor is a thread whose lease is held: its
# holder's release (`_RELEASE`, atomic like this) counts the item as due and the holder drains on,
# so a wake-up would only send another drain to find the lease taken.
_ACCEPT = (
    CLAIM
    + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return -1 end
redis.call('RPUSH', KEYS[2], ARGV[2])
if ARGV[7] ~= '' then redis.call('HINCRBYFLOAT', KEYS[9], ARGV[7], 1) end
if ARGV[8] ~= '' then
  redis.call('HINCRBY', KEYS[10], ARGV[8], 1)
  redis.call('EXPIRE', KEYS[10], ARGV[9])
end
redis.call('SADD', KEYS[3], ARGV[3])
local until_at = tonumber(redis.call('HGET', KEYS[8], ARGV[6] .. '_until') or '0')
if until_at > 0 then
  local t = redis.call('TIME')
  if until_at > tonumber(t[1]) + tonumber(t[2]) / 1000000 then return 0 end
end
if redis.call('EXISTS', KEYS[11]) == 1 then return 0 end
if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[4]) then
  redis.call('RPUSH', KEYS[5], ARGV[3])
  local slot = claim(KEYS[6], KEYS[7], ARGV[5], ARGV[4])
  if slot then return slot end
end
return 0
"""
)

# KEYS: wake flag, lease, inbox, dispatcher slots, outbox, retry state, inbox effects, outbox effects.
# ARGV: token, lease ms, slot id or ''.
# The starting drain clears the wake flag first, so an item that arrives from now on queues a new
# wake-up even if this drain finds the lease taken; it also heartbeats its dispatcher slot.
# Returns false when the lease is taken, else {1, inbox head, outbox head, inbox until, outbox
# until, inbox effects exist, outbox effects exist} (heads false when empty; untils '' when the box
# is not backing off; effects 1 or 0).
_ACQUIRE = """
redis.call('DEL', KEYS[1])
if ARGV[3] ~= '' then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[4], 'XX', tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[3])
end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local until_in = redis.call('HGET', KEYS[6], 'in_until') or ''
local until_out = redis.call('HGET', KEYS[6], 'out_until') or ''
return {1, redis.call('LINDEX', KEYS[3], 0), redis.call('LINDEX', KEYS[5], 0), until_in, until_out,
  redis.call('EXISTS', KEYS[7]), redis.call('EXISTS', KEYS[8])}
"""

# KEYS: lease, box, timeline, activity zset, thread hash, retry state, box effects, waiting zset,
# tallies, this minute's traffic. ARGV: token, expected head, timeline entry, timeline limit, thread id,
# now, lease ms, box name, waiting ('in' | 'out' | ''), queued-at score, n, m, traffic ttl, then n tally
# (field, amount) pairs, then m traffic (field, amount) pairs, then the thread's fields as name, value pairs.
# Pops the head only if this caller still holds the lease and the head is the item it handled; in
# the same step records the timeline entry, the thread and the item's tallies, keeps the thread in its
# entry point's waiting set exactly while it is queued, forgets the item's retry state and effects, and renews
# the lease.
# Returns -1 when the lease was lost, -2 when the head changed, else {1, next head (absent: empty)}.
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[2] then return -2 end
redis.call('LPOP', KEYS[2])
redis.call('HDEL', KEYS[6], ARGV[8], ARGV[8] .. '_until')
redis.call('DEL', KEYS[7])
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[3], ARGV[3])
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
end
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
if ARGV[9] == 'in' then redis.call('ZADD', KEYS[8], ARGV[10], ARGV[5])
elseif ARGV[9] == 'out' then redis.call('ZREM', KEYS[8], ARGV[5]) end
local tallied, counted = tonumber(ARGV[11]), tonumber(ARGV[12])
local at = 14
for i = at, at - 1 + 2 * tallied, 2 do redis.call('HINCRBYFLOAT', KEYS[9], ARGV[i], ARGV[i + 1]) end
at = at + 2 * tallied
for i = at, at - 1 + 2 * counted, 2 do redis.call('HINCRBY', KEYS[10], ARGV[i], ARGV[i + 1]) end
if counted > 0 then redis.call('EXPIRE', KEYS[10], ARGV[13]) end
at = at + 2 * counted
if #ARGV >= at then redis.call('HSET', KEYS[5], unpack(ARGV, at)) end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {1, redis.call('LINDEX', KEYS[2], 0)}
"""

# KEYS: lease, inbox, active set, outbox, retry state. ARGV: token, thread id.
# Releases our lease; forgets the thread in the sweeper's set when both boxes are empty. Returns
# how many items are due now: items of a box that is backing off are not due.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local total, due = 0, 0
for i, box in ipairs({{KEYS[2], 'in_until'}, {KEYS[4], 'out_until'}}) do
  local n = redis.call('LLEN', box[1])
  total = total + n
  local until_at = tonumber(redis.call('HGET', KEYS[5], box[2]) or '0')
  if until_at <= now then due = due + n end
end
if total == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return due
"""


class Box(StrEnum):
    """A thread's two ordered boxes; the value names the box in retry state and effects keys."""

    IN = "in"  # customer events, from the webhooks
    OUT = "out"  # contact-center events and system messages, for the customer

    def key(self, thread_id: str) -> str:
        return keys.inbox(thread_id) if self is Box.IN else keys.outbox(thread_id)


@dataclass(frozen=True)
class Accepted:
    event: InboundEvent
    duplicate: bool
    dispatch_slot: int | None
    """Set when this arrival claimed a dispatcher slot: queue a dispatch job for it."""


@dataclass(frozen=True)
class Held:
    """What a drain sees when it takes a thread's lease."""

    token: str
    heads: dict[Box, bytes | None]
    until: dict[Box, float]
    """Per box, the time before which its head must not be retried (0: not backing off)."""
    clean: frozenset[Box] = frozenset()
    """Boxes whose head has no effect recorded (not a repeat of a handling that did some): its
    handling need not read them (`Effects(..., recorded={})`)."""


class Boxes:
    """Intake and drain primitives of both boxes; each step is one round trip to Redis."""

    def __init__(self, redis: Redis, wake_ttl_seconds: int = 30, dispatchers: int = 2) -> None:
        self.redis = redis
        self.wake_ttl_seconds = wake_ttl_seconds
        self.dispatchers = dispatchers
        self._append_one = ThreadScript(redis, _ACCEPT)
        self._accept = self._append_one.script
        self._acquire = redis.register_script(_ACQUIRE)
        self._commit = redis.register_script(_COMMIT)
        self._release = redis.register_script(_RELEASE)

    # -- intake -------------------------------------------------------------------------------

    def accept(self, events: Sequence[InboundEvent], dedupe_ttl_seconds: int) -> list[Accepted]:
        """Append each new event to its thread's inbox, in the order given."""

        received_at = time.time()

        def append_event(event: InboundEvent, client: Pipeline | None) -> int:
            dedupe_key = keys.dedupe(event.channel, event.asset, event.provider_id)
            tally = counter_field(Counter.MESSAGES_IN, channel=event.channel, kind=event.kind.value)
            traffic = traffic_field(Traffic.IN, event.channel) if event.kind.routable else ""
            item = event.to_json(received_at=received_at)
            return self.append(
                Box.IN,
                event.thread_id,
                item,
                dedupe_key,
                dedupe_ttl_seconds,
                client=client,
                tally=tally,
                traffic=traffic,
            )

        if len(events) == 1:
            # One event is the common case: one EVALSHA on this thread's connection, where a
            # pipeline adds redis-py's SCRIPT EXISTS check.
            results = [append_event(events[0], None)]
        else:
            pipe = self.redis.pipeline(transaction=False)
            for event in events:
                append_event(event, pipe)
            results = replies.execute(pipe)
        return [
            Accepted(event, duplicate=(result == -1), dispatch_slot=int(result) if result > 0 else None)
            for event, result in zip(events, results, strict=True)
        ]

    def append(
        self,
        box: Box,
        thread_id: str,
        item: str,
        dedupe_key: str,
        dedupe_ttl_seconds: int,
        *,
        client: Pipeline | None = None,
        tally: str = "",
        traffic: str = "",
    ) -> int:
        """Append one item to a thread's box unless `dedupe_key` was seen: -1 duplicate, 0 appended,
        or a dispatcher slot id (> 0) for which the caller must queue a dispatch job. `tally` is a
        counter field and `traffic` a per-minute field (store/tallies.py) incremented with the append,
        never for a duplicate.

        With `client` a pipeline, the call is queued on it; otherwise it runs at once on this
        thread's own connection (the intake's fast path, store/thread_script.py)."""
        script = self._append_one if client is None else partial(scripts.queue, client, self._accept)
        result: int = script(
            keys=[
                dedupe_key,
                box.key(thread_id),
                keys.active_inboxes(),
                keys.wake(thread_id),
                keys.ready(),
                keys.dispatchers(),
                keys.dispatcher_sequence(),
                keys.retry_state(thread_id),
                keys.tallies(),
                keys.traffic(minute_of(time.time())),
                keys.lease(thread_id),
            ],
            args=[
                dedupe_ttl_seconds,
                item,
                thread_id,
                self.wake_ttl_seconds,
                self.dispatchers,
                box.value,
                tally,
                traffic,
                TRAFFIC_TTL_SECONDS,
            ],
        )
        return result

    # -- drain --------------------------------------------------------------------------------

    def acquire(self, thread_id: str, lease_seconds: float, slot: int | None = None) -> Held | None:
        """Take the thread's lease, or None when another drain holds it. The token proves ownership
        in every later step; `slot` is the dispatcher's, kept alive."""
        token = uuid.uuid4().hex
        answer = self._acquire(
            keys=[
                keys.wake(thread_id),
                keys.lease(thread_id),
                keys.inbox(thread_id),
                keys.dispatchers(),
                keys.outbox(thread_id),
                keys.retry_state(thread_id),
                keys.effects(Box.IN.value, thread_id),
                keys.effects(Box.OUT.value, thread_id),
            ],
            args=[token, _ms(lease_seconds), "" if slot is None else slot],
        )
        if not answer:
            return None
        _, head_in, head_out, until_in, until_out, effects_in, effects_out = answer
        return Held(
            token,
            heads={Box.IN: head_in, Box.OUT: head_out},
            until={Box.IN: float(until_in or 0), Box.OUT: float(until_out or 0)},
            clean=frozenset(box for box, found in ((Box.IN, effects_in), (Box.OUT, effects_out)) if not found),
        )

    def commit(
        self,
        thread_id: str,
        token: str,
        item: bytes,
        entry: dict[str, object] | None,
        thread_fields: dict[str, str] | None = None,
        lease_seconds: float = 30.0,
        box: Box = Box.IN,
        tally: Tally | None = None,
    ) -> bytes | LeaseLost | None:
        """Pop the handled head of `box`, record its timeline entry and the thread (and its place in
        its entry point's waiting set), forget its retry state and effects, renew the lease, all in
        one atomic step; returns the box's next head (None: empty), or LEASE_LOST. The next head
        starts with no effect recorded: the step deletes the box's, and only the lease holder writes
        them."""
        waiting, score = _waiting(thread_fields)
        now = time.time()
        tallied = tally.pairs() if tally is not None else []
        counted = tally.traffic_pairs() if tally is not None else []
        args: list[EncodableT] = [
            token,
            item,
            json.dumps(entry, separators=(",", ":")) if entry else "",
            TIMELINE_LIMIT,
            thread_id,
            now,
            _ms(lease_seconds),
            box.value,
            waiting,
            score,
            len(tallied),
            len(counted),
            TRAFFIC_TTL_SECONDS,
        ]
        for name, amount in [*tallied, *counted]:
            args += [name, amount]
        for name, value in (thread_fields or {}).items():
            args += [name, value]
        answer = self._commit(
            keys=[
                keys.lease(thread_id),
                box.key(thread_id),
                keys.timeline(thread_id),
                keys.threads_by_activity(),
                keys.thread(thread_id),
                keys.retry_state(thread_id),
                keys.effects(box.value, thread_id),
                _waiting_key(thread_fields),
                keys.tallies(),
                keys.traffic(minute_of(now)),
            ],
            args=args,
        )
        if not isinstance(answer, list):
            return LEASE_LOST
        return answer[1] if len(answer) > 1 else None

    def release(self, thread_id: str, token: str) -> int:
        """Give the lease back; returns how many items are due now (arrivals during the drain, which
        queued no wake-up of their own: the holder must drain on, or put the thread back on the
        ready list)."""
        return int(
            self._release(
                keys=[
                    keys.lease(thread_id),
                    keys.inbox(thread_id),
                    keys.active_inboxes(),
                    keys.outbox(thread_id),
                    keys.retry_state(thread_id),
                ],
                args=[token, thread_id],
            )
        )

    # -- inspection (sweeper, tests) ----------------------------------------------------------

    def head(self, thread_id: str, box: Box = Box.IN) -> bytes | None:
        return replies.bytes_or_none(self.redis.lindex(box.key(thread_id), 0))

    def length(self, thread_id: str, box: Box = Box.IN) -> int:
        return replies.integer(self.redis.llen(box.key(thread_id)))

    def active(self) -> list[str]:
        return sorted(m.decode() for m in replies.bytes_set(self.redis.smembers(keys.active_inboxes())))

    def stranded(self, thread_id: str, now: float | None = None) -> bool:
        """Items due, no drain holding the lease and no wake-up queued: nobody will come. Items of
        a box backing off are not due until its retry time."""
        return bool(self.stranded_among([thread_id], now))

    def stranded_among(self, thread_ids: Sequence[str], now: float | None = None) -> list[str]:
        """The stranded ones of `thread_ids`, checked in pipelines of SWEEP_BATCH threads: a sweep
        over thousands of conversations waiting out an outage is a few round trips, not thousands."""
        now = time.time() if now is None else now
        stranded: list[str] = []
        for start in range(0, len(thread_ids), SWEEP_BATCH):
            chunk = thread_ids[start : start + SWEEP_BATCH]
            pipe = self.redis.pipeline(transaction=False)
            for thread_id in chunk:
                pipe.exists(keys.lease(thread_id), keys.wake(thread_id))
                pipe.llen(keys.inbox(thread_id))
                pipe.llen(keys.outbox(thread_id))
                pipe.hmget(keys.retry_state(thread_id), ["in_until", "out_until"])
            answers = replies.execute(pipe)
            for index, thread_id in enumerate(chunk):
                held_or_queued, length_in, length_out, (until_in, until_out) = answers[4 * index : 4 * index + 4]
                if held_or_queued:
                    continue
                due_in = length_in > 0 and float(until_in or 0) <= now
                due_out = length_out > 0 and float(until_out or 0) <= now
                if due_in or due_out:
                    stranded.append(thread_id)
        return stranded


def _waiting(thread_fields: dict[str, str] | None) -> tuple[str, str]:
    """('in', queued-at) while the thread waits for an agent on an entry point, ('out', '') once it
    does not, ('', '') when the commit leaves the thread as it was."""
    if thread_fields is None:
        return "", ""
    queued = thread_fields.get("state") == State.QUEUED.value and thread_fields.get("entry_point")
    return ("in", thread_fields.get("queued_at") or "0") if queued else ("out", "")


def _waiting_key(thread_fields: dict[str, str] | None) -> str:
    fields = thread_fields or {}
    return keys.waiting(fields.get("integration", ""), fields.get("entry_point", ""))


class LeaseLost:
    """Marker: the lease lapsed and another drain may own the thread now."""


LEASE_LOST = LeaseLost()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
