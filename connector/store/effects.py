"""Effects already done for the head item of a box, so a repeat skips them
(docs/architecture.md, "Idempotent effects").

A head item is repeated after a crash (its lease lapses) or a retryable failure; its effects are
calls to ECE or a provider that have no idempotency key of their own (start a conversation, send
part 2 of a split message). Each is recorded here right after it succeeds; the commit that takes
the item out of its box deletes the record in the same atomic step.

A call that can be looked up afterwards (an ECE start carries a client reference) also records an
*attempt* before it is made (`attempt`): a repeat that finds the attempt but no result knows the
call may have taken effect unseen, and asks the far side (`attempted`) instead of calling again.

One handling of an item checks several effects, and nearly always finds none (only a repeat does):
the record is read once, whole, at the first check, and kept here with what this handling records.
The drain knows when there is nothing to read at all (`Held.clean`, and after each commit) and says
so with `recorded={}`. Only the holder of the thread's lease writes a box's effects, so the copy
stays true for as long as the handling holds it.
"""

from __future__ import annotations

from collections.abc import Callable

from redis import Redis
from redis.client import Pipeline

from connector.store import keys, replies
from connector.store.boxes import Box


class Effects:
    """The effects of one box's head item, for one handling of it. `recorded`: what the caller knows
    is recorded (`{}`: nothing), else None and the first check reads it."""

    def __init__(self, redis: Redis, box: Box, thread_id: str, recorded: dict[str, str] | None = None) -> None:
        self.redis = redis
        self.key = keys.effects(box.value, thread_id)
        self._recorded = recorded

    def get(self, effect: str) -> str | None:
        if self._recorded is None:
            stored = replies.bytes_hash(self.redis.hgetall(self.key))
            self._recorded = {name.decode(): value.decode() for name, value in stored.items()}
        return self._recorded.get(effect)

    def record(self, effect: str, result: str = "1") -> None:
        self.redis.hset(self.key, effect, result)
        if self._recorded is not None:
            self._recorded[effect] = result

    def queue_record(self, pipe: Pipeline, effect: str, result: str = "1") -> None:
        """`record` queued on a caller's transaction: an effect that is itself a Redis write is done and
        recorded in one step, so no crash between the two can make a repeat do it twice. The next
        check reads the record again: the transaction may not have run."""
        pipe.hset(self.key, effect, result)
        self._recorded = None

    def attempt(self, effect: str, marker: str) -> str:
        """Record, BEFORE calling, that `effect` is being attempted with `marker` (what a later
        lookup needs, e.g. the client reference sent with the call). The first attempt's marker is
        kept, so every repeat of the item sends and looks up the same one; returns it."""
        field = _attempt_field(effect)
        self.redis.hsetnx(self.key, field, marker)
        self._recorded = None  # an earlier attempt's marker, if any, is the one kept
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

    def reached_contact_center(self, provider_id: str, files: int) -> bool:
        """Whether an earlier handling of this item put the customer's words (`sent_text`) or one of
        their `files` (`sent_file`) in a conversation of the contact center."""
        names = [sent_text(provider_id), *(sent_file(provider_id, index) for index in range(files))]
        return any(self.get(name) is not None for name in names)


# The effects every backend names alike, so the drain can read them (`reached_contact_center`).


def started(sequence: int) -> str:
    """The start of the thread's conversation number `sequence` (one start per conversation: an item
    that starts the next one must not reuse the start it recorded for the last)."""
    return f"start:{sequence}"


def sent_text(provider_id: str) -> str:
    """The customer's message (its text, or all it holds) in the contact center's conversation."""
    return f"message:{provider_id}"


def sent_file(provider_id: str, index: int) -> str:
    """The message's file number `index` in the contact center's conversation (or refused there)."""
    return f"attachment:{provider_id}:{index}"


def _attempt_field(effect: str) -> str:
    return f"{effect}:attempt"
