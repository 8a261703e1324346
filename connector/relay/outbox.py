"""The timer job: a timer a backend scheduled (`backends/outbox.py`) has come due.

RQ runs it by this module's path (`queues.TIMER_JOB`), so the path stays put while timers of a
running deployment are scheduled.
"""

from __future__ import annotations

from typing import Any

from connector.backends import outbox
from connector.runtime import current


def fire_timer(thread_id: str, item: dict[str, Any]) -> bool:
    """RQ job: put the timer's item in the thread's outbox, for the lease holder to act on."""
    return outbox.timer_came_due(current(), thread_id, item)
