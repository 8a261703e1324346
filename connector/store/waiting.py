"""Where a waiting customer stands: their place among the connector's conversations queued on the
same entry point (`keys.waiting`, kept by the drain's commit in the same step as the thread's state).

For ECE this is the customer's order among the conversations the connector itself queued there, not
ECE's own queue (ECE reports only a depth); a contact center the connector alone feeds sees the
two agree.
"""

from __future__ import annotations

from redis import Redis

from connector.store import keys, replies


def position(redis: Redis, integration: str, entry_point: str, thread_id: str) -> int | None:
    """1 for the customer waiting longest; None when the thread is not waiting there."""
    rank = redis.zrank(keys.waiting(integration, entry_point), thread_id)
    return None if rank is None else replies.integer(rank) + 1


def count(redis: Redis, integration: str, entry_point: str) -> int:
    return replies.integer(redis.zcard(keys.waiting(integration, entry_point)))
