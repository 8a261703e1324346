"""RQ queue names, job defaults and enqueue helpers: the one place that knows them.

Jobs are wake-ups, not records (docs/architecture.md, "The inbox is the record, the job is a wake-up"):
losing one delays work until the sweeper re-wakes the inbox, it never loses a message. Hence short
result TTLs and no RQ-level retries for drains.
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
"""Scheduled and periodic work (unavailable-policy timers, agent sync); retries do not use it."""

ALL = (INBOUND, OUTBOUND, HOUSEKEEPING)

DISPATCH_JOB = "connector.relay.drain.drain_ready"
TIMER_JOB = "connector.relay.outbox.fire_timer"
"""RQ job paths: scheduled and queued jobs name them, so they stay put across versions."""
DISPATCH_TIMEOUT_SECONDS = 600
DISPATCH_BUDGET_SECONDS = 5.0
"""A dispatch job hands over to a fresh job after this long, so none nears its timeout."""
DISPATCH_LINGER_SECONDS = 0.25
"""How long an idle dispatch job waits for more ready threads before giving its worker back."""
DEFERRED_POLL_SECONDS = 0.25
"""How often each worker moves retries that came due to the ready list and fires the timers that
came due: the most a retry or a timer waits past its time."""


def queue(name: str, redis: Redis) -> Queue:
    return Queue(name, connection=redis, serializer=JSONSerializer)


def enqueue_dispatch(redis: Redis, slot: int) -> None:
    """Queue a job that drains ready threads. A few long-lived jobs serve every thread: the per-job
    cost of RQ is paid per burst, not per message."""
    queue(INBOUND, redis).enqueue(
        DISPATCH_JOB,
        slot,
        result_ttl=0,
        failure_ttl=7 * 24 * 3600,
        job_timeout=DISPATCH_TIMEOUT_SECONDS,
        description="drain ready conversations",
    )
