"""The dead-letter list: items that failed permanently or ran out of retries, with the reason.

Operators read them in the UI, requeue (the item goes back to the tail of its thread's box and is
tried again) or delete them. The list is capped; each letter is its own key so it can be read,
requeued or deleted by id.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis

from connector.store import keys, replies
from connector.store.boxes import Box, Boxes

DEAD_LETTER_LIMIT = 10_000


@dataclass(frozen=True)
class DeadLetter:
    id: str
    thread: str
    box: str
    item: str
    reason: str
    at: float
    attempts: int = 1

    def payload(self) -> Any:
        try:
            return json.loads(self.item)
        except ValueError:
            return self.item


def add(redis: Redis, thread_id: str, box: Box, item: bytes | str, reason: str, attempts: int = 1) -> DeadLetter:
    letter = DeadLetter(
        id=uuid.uuid4().hex,
        thread=thread_id,
        box=box.value,
        item=item.decode() if isinstance(item, bytes) else item,
        reason=reason,
        at=time.time(),
        attempts=attempts,
    )
    pipe = redis.pipeline()
    pipe.set(keys.dead_letter(letter.id), json.dumps(asdict(letter)))
    pipe.lpush(keys.dead_letters(), letter.id)
    pipe.ltrim(keys.dead_letters(), 0, DEAD_LETTER_LIMIT - 1)
    replies.execute(pipe)
    return letter


def get(redis: Redis, letter_id: str) -> DeadLetter | None:
    raw = replies.bytes_or_none(redis.get(keys.dead_letter(letter_id)))
    return DeadLetter(**json.loads(raw)) if raw else None


def listing(redis: Redis, start: int = 0, count: int = 100) -> list[DeadLetter]:
    ids = [i.decode() for i in replies.bytes_list(redis.lrange(keys.dead_letters(), start, start + count - 1))]
    if not ids:
        return []
    found = replies.bytes_or_none_list(redis.mget([keys.dead_letter(i) for i in ids]))  # one round trip for the page
    return [DeadLetter(**json.loads(raw)) for raw in found if raw]


def delete(redis: Redis, letter_id: str) -> bool:
    pipe = redis.pipeline()
    pipe.delete(keys.dead_letter(letter_id))
    pipe.lrem(keys.dead_letters(), 0, letter_id)
    removed, _ = replies.execute(pipe)
    return bool(removed)


def requeue(redis: Redis, inboxes: Boxes, letter_id: str) -> int | None:
    """Put the letter's item back at the tail of its box and wake the thread; returns the dispatch
    slot to queue a job for (or 0), None when no such letter. The letter is deleted."""
    letter = get(redis, letter_id)
    if letter is None:
        return None
    # A fresh dedupe key: the original one is still live and would drop the requeued item.
    fresh_key = keys.dedupe("requeue", "dead", letter.id)
    result = inboxes.append(Box(letter.box), letter.thread, letter.item, fresh_key, 3600)
    delete(redis, letter_id)
    return max(result, 0)
