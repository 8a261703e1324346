"""Effects already done for the head item of a box, so a repeat skips them
(docs/architecture.md, "Idempotent effects").

A head item is repeated after a crash (its lease lapses) or a retryable failure; its effects are
calls to ECE or a provider that have no idempotency key of their own (start a conversation, send
part 2 of a split message). Each is recorded here right after it succeeds; the commit that takes
the item out of its box deletes the record in the same atomic step.

A call that can be looked up afterwards (an ECE start carries a client reference) also records an
*attempt* before it is made (`attempt`): a repeat that finds the attempt but no result knows the
call may have taken effect unseen, and asks the far side (`attempted`) instead of calling again.
"""

from __future__ import annotations

from collections.abc import Callable

from redis import Redis
from redis.client import Pipeline

from connector.store import keys, replies
from connector.store.boxes import Box


class Effects:
    def __init__(self, redis: Redis, box: Box, thread_id: str) -> None:
        self.redis = redis
        self.key = keys.effects(box.value, thread_id)

    def get(self, effect: str) -> str | None:
        raw = replies.bytes_or_none(self.redis.hget(self.key, effect))
        return raw.decode() if raw is not None else None

    def record(self, effect: str, result: str = "1") -> None:
        self.redis.hset(self.key, effect, result)

    def queue_record(self, pipe: Pipeline, effect: str, result: str = "1") -> None:
        """`record` queued on a caller's transaction: an effect that is itself a Redis write is done and
        recorded in one step, so no crash between the two can make a repeat do it twice."""
        pipe.hset(self.key, effect, result)

    def attempt(self, effect: str, marker: str) -> str:
        """Record, BEFORE calling, that `effect` is being attempted with `marker` (what a later
        lookup needs, e.g. the client reference sent with the call). The first attempt's marker is
        kept, so every repeat of the item sends and looks up the same one; returns it."""
        field = _attempt_field(effect)
        self.redis.hsetnx(self.key, field, marker)
        return self.get(field) or marker

    def attempted(self, effect: str) -> str | None:
        """The marker of an earlier attempt of `effect` for this item, or None if none was made."""
        return self.get(_attempt_field(effect))

    def once(self, effect: str, action: Callable[[], str | None]) -> str:
        """Run `action` unless `effect` was done for this item; returns its (recorded) result."""
        done = self.get(effect)
        if done is not None:
            return done
        result = action() or "1"
        self.record(effect, result)
        return result


def _attempt_field(effect: str) -> str:
    return f"{effect}:attempt"
