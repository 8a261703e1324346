"""Timers coming due: a timer a backend scheduled (`backends/outbox.py`) puts its item in the
thread's outbox, for the lease holder to act on.

The timers wait in a Redis zset (`store/timers.py`) that every worker's sweeper polls. `fire_timer`
is the RQ job that timers scheduled before that used; RQ runs it by this module's path
(`queues.TIMER_JOB`), so the path stays put while such timers may still come due.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from connector.backends import outbox
from connector.runtime import Runtime, current

log = logging.getLogger(__name__)


def fire_due_timers(runtime: Runtime) -> int:
    """Fire the timers that came due; returns how many fired. A timer whose firing fails stays
    claimed and comes due again after its claim lease (at least once; the outbox keeps one)."""
    fired = 0
    for timer in runtime.timers.claim_due():
        try:
            outbox.timer_came_due(runtime, timer.thread_id, timer.item)
        except RedisError:
            raise
        except Exception:
            log.exception("timer failed, it comes due again", extra={"conversation": timer.thread_id})
            continue
        runtime.timers.done(timer)
        fired += 1
    return fired


def fire_timer(thread_id: str, item: dict[str, Any]) -> bool:
    """RQ job of a timer scheduled as an RQ job: put its item in the thread's outbox."""
    return outbox.timer_came_due(current(), thread_id, item)
