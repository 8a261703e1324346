"""Timers in Redis: scheduled with one ZADD, claimed by one poll at a time, fired at least once and
into the outbox once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from connector import queues
from connector.backends import outbox
from connector.relay.outbox import fire_due_timers
from connector.runtime import install
from connector.store import keys
from connector.store.timers import Timers

THREAD = "t-timers"


def outbox_items(redis) -> list[dict]:
    return [json.loads(raw) for raw in redis.lrange(keys.outbox(THREAD), 0, -1)]


def test_a_timer_is_claimed_once_it_is_due_and_by_one_poll_at_a_time(redis):
    timers = Timers(redis)
    timers.schedule(THREAD, {"source": "timer", "type": "wait_expired", "sequence": 1}, time.time() + 60)
    assert timers.claim_due() == [], "not due yet"

    timers.schedule(THREAD, {"source": "timer", "type": "queue_status", "sequence": 1}, time.time() - 1)
    [claimed] = timers.claim_due()
    assert (claimed.thread_id, claimed.item["type"]) == (THREAD, "queue_status")
    assert timers.claim_due() == [], "claimed: another poll within the lease gets nothing"
    assert len(timers.pending()) == 2, "a claimed timer stays until it fired"

    timers.done(claimed)
    assert [t.item["type"] for t in timers.pending()] == ["wait_expired"]


def test_a_claimer_that_dies_before_firing_leaves_the_timer_to_come_due_again(redis):
    timers = Timers(redis)
    timers.schedule(THREAD, {"source": "timer", "type": "queue_status", "sequence": 1}, time.time() - 1)
    [first] = timers.claim_due(lease_seconds=0.2)  # then killed: `done` never runs
    assert timers.claim_due() == []
    time.sleep(0.3)
    [again] = timers.claim_due()
    assert again.member == first.member


def test_scheduling_adds_one_zset_member_and_no_rq_job(runtime, redis):
    outbox.schedule_timer(runtime, THREAD, 3, "wait_expired", 120, firing=2)
    [timer] = runtime.timers.pending()
    assert timer.item == {"source": "timer", "type": "wait_expired", "sequence": 3, "firing": 2}
    due = redis.zscore(keys.timers(), timer.member)
    assert time.time() + 115 < due <= time.time() + 120
    assert ScheduledJobRegistry(queue=queues.queue(queues.HOUSEKEEPING, redis)).count == 0


def test_due_timers_fire_into_the_outbox_once_however_often_they_were_scheduled(runtime, redis):
    for _ in range(2):
        outbox.schedule_timer(runtime, THREAD, 4, "queue_status", 0, firing=1)
    outbox.schedule_timer(runtime, THREAD, 4, "queue_status", 60, firing=2)
    time.sleep(0.01)

    assert fire_due_timers(runtime) == 2, "both members came due and fired"
    items = outbox_items(redis)
    assert [(i["source"], i["type"], i["firing"]) for i in items] == [("timer", "queue_status", 1)], "kept once"
    assert [t.item["firing"] for t in runtime.timers.pending()] == [2], "the later firing waits"
    assert fire_due_timers(runtime) == 0


def test_an_unreadable_timer_is_dropped_with_an_error_and_the_others_fire(runtime, redis, caplog):
    redis.zadd(keys.timers(), {b"not json": time.time() - 1})
    outbox.schedule_timer(runtime, THREAD, 5, "unavailable_expired", 0)
    time.sleep(0.01)

    assert fire_due_timers(runtime) == 1
    assert [i["type"] for i in outbox_items(redis)] == ["unavailable_expired"]
    assert redis.zcard(keys.timers()) == 0
    assert "unreadable timer dropped" in caplog.text


def test_a_timer_an_earlier_version_scheduled_as_an_rq_job_still_fires(runtime, redis):
    """Upgrading keeps the timers already scheduled: RQ's scheduler moves the due job, a worker runs
    `fire_timer` by its path (queues.TIMER_JOB), and the item reaches the outbox once."""
    install(runtime)
    housekeeping = queues.queue(queues.HOUSEKEEPING, redis)
    item = {"source": "timer", "type": "unavailable_expired", "sequence": 6}
    for _ in range(2):  # as the old schedule_timer queued them, twice
        housekeeping.enqueue_at(datetime.now(UTC) - timedelta(seconds=1), queues.TIMER_JOB, THREAD, item, result_ttl=0)
    scheduler = RQScheduler([housekeeping], connection=redis, serializer=JSONSerializer)
    scheduler.acquire_locks()  # as a worker started with the scheduler does
    scheduler.enqueue_scheduled_jobs()
    scheduler.release_locks()
    SimpleWorker([housekeeping], connection=redis, serializer=JSONSerializer).work(burst=True)

    assert [(i["source"], i["type"], i["sequence"]) for i in outbox_items(redis)] == [
        ("timer", "unavailable_expired", 6)
    ]
    assert housekeeping.count == 0 and housekeeping.failed_job_registry.count == 0
