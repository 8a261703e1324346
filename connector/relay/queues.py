"""RQ queue names, job defaults and enqueue helpers: the one place that knows them.

Jobs are wake-ups, not records (DESIGN §6): losing one delays work until the sweeper re-wakes the
inbox, it never loses a message. Hence short result TTLs and no RQ-level retries for drains.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

INBOUND = "inbound"
"""Drain jobs: customer events → rules → contact center."""
OUTBOUND = "outbound"
"""Relay jobs: contact-center events → customer channel."""
HOUSEKEEPING = "housekeeping"
"""Scheduled and periodic work (unavailable-policy timers, agent sync)."""

ALL = (INBOUND, OUTBOUND, HOUSEKEEPING)

DRAIN_JOB = "connector.relay.drain.drain_thread"
DRAIN_TIMEOUT_SECONDS = 600


def queue(name: str, redis: Redis) -> Queue:
    return Queue(name, connection=redis, serializer=JSONSerializer)


def wake_drain(redis: Redis, thread_id: str) -> None:
    """Queue a drain of one thread's inbox."""
    queue(INBOUND, redis).enqueue(
        DRAIN_JOB,
        thread_id,
        result_ttl=0,
        failure_ttl=7 * 24 * 3600,
        job_timeout=DRAIN_TIMEOUT_SECONDS,
        description=f"drain {thread_id}",
    )
