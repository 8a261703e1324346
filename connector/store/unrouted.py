"""Customer messages that matched no rule (and no default rule): the last LIMIT of them, newest
first, for the operators' "Unrouted messages" page and the overview's count.

A record says where the message came from and why each rule passed it over; it holds no message
text (the conversation's timeline has it, for those allowed to read it).
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from connector.store import keys, replies

LIMIT = 1000


def record(redis: Redis, entry: dict[str, Any]) -> None:
    pipe = redis.pipeline()
    pipe.lpush(keys.unrouted(), json.dumps(entry))
    pipe.ltrim(keys.unrouted(), 0, LIMIT - 1)
    replies.execute(pipe)


def listing(redis: Redis, start: int = 0, count: int = 100) -> list[dict[str, Any]]:
    """Records `start` to `start + count - 1`, newest first; an unreadable one is skipped."""
    found = []
    for raw in replies.bytes_list(redis.lrange(keys.unrouted(), start, start + count - 1)):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict):
            found.append(entry)
    return found


def total(redis: Redis) -> int:
    return replies.integer(redis.llen(keys.unrouted()))
