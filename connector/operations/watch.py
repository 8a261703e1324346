"""What the operators' live pages watch: for each, a probe (connector/live.py) that reads in one
round trip the few keys that change whenever what the page shows changes, and says so as a version.

The pages re-read themselves when told (the conversation list, a conversation, the dead letters), so
an event only names what changed; the entry-point lights are the exception: their readings are
small and the page paints them, so the event carries them. No event holds a message's text.

Why probes rather than a stream of operator events: nothing on the message path pays for a page
nobody has open (the intake and the drain's commit stay as they are), a writer added later cannot
forget to publish, and a page that resumes compares what is there with what it showed, so it never
misses a change a capped stream would have dropped. The price is up to a second of delay and one
small read a second per open page, bounded by the operators' slots (live.operator_slots).
"""

from __future__ import annotations

import time
from typing import Any

from redis import Redis

from connector.backends import indicators
from connector.live import Probe, version
from connector.runtime import Runtime
from connector.store import keys, replies


def conversations(redis: Redis) -> Probe:
    """The conversation list: every change to a conversation (a message either way, a new state, a
    new conversation) moves it to the top of the activity ZSET with a new score."""

    def probe() -> tuple[str, dict[str, Any]]:
        pipe = redis.pipeline(transaction=False)
        pipe.zcard(keys.threads_by_activity())
        pipe.zrevrange(keys.threads_by_activity(), 0, 0, withscores=True)
        count, newest = replies.execute(pipe)
        return version(count, newest), {"topic": "conversations"}

    return probe


def conversation(redis: Redis, thread_id: str) -> Probe:
    """One conversation's page: its activity (every commit), its timeline's length and newest entry
    (retries are noted there without a commit), its boxes and its retry state."""

    def probe() -> tuple[str, dict[str, Any]]:
        pipe = redis.pipeline(transaction=False)
        pipe.zscore(keys.threads_by_activity(), thread_id)
        pipe.llen(keys.timeline(thread_id))
        pipe.lindex(keys.timeline(thread_id), -1)
        pipe.llen(keys.inbox(thread_id))
        pipe.llen(keys.outbox(thread_id))
        pipe.hgetall(keys.retry_state(thread_id))
        answers = replies.execute(pipe)
        answers[5] = sorted(answers[5].items())
        return version(*answers), {"topic": "conversation", "thread": thread_id}

    return probe


def dead_letters(redis: Redis) -> Probe:
    """The dead letters: a new one is pushed at the head; a requeue or delete shortens the list."""

    def probe() -> tuple[str, dict[str, Any]]:
        pipe = redis.pipeline(transaction=False)
        pipe.llen(keys.dead_letters())
        pipe.lindex(keys.dead_letters(), 0)
        total, newest = replies.execute(pipe)
        return version(total, newest), {"topic": "dead_letters", "total": total}

    return probe


def entry_point_lights(runtime: Runtime, integration: str) -> Probe:
    """An integration's stored indicator readings (one MGET) with the configuration the colours
    depend on (a changed threshold or a disabled entry point shows without asking again); the event
    carries every entry point's reading as the API gives it (`indicators.as_dict`)."""

    def probe() -> tuple[str, dict[str, Any]]:
        item = runtime.config.integration(integration)
        if item is None:
            return version(None), {"topic": "indicators", "integration": integration, "readings": []}
        readings = indicators.read_all(runtime.redis, integration, [ep.id for ep in item.entry_points])
        shown = [(ep, readings.get(ep.id)) for ep in item.entry_points]
        now = time.time()
        event = {
            "topic": "indicators",
            "integration": integration,
            "readings": [indicators.as_dict(ep, reading, now) for ep, reading in shown],
        }
        return version(shown), event

    return probe
