"""The drain job in-process: rules applied, routing and customer details recorded, in order."""

from __future__ import annotations

import json

import pytest

from connector.channels.base import thread_id_for
from connector.relay.drain import drain_thread
from connector.store import keys, threads
from connector.store.boxes import LEASE_LOST, Box, Boxes
from connector.store.dispatch import Dispatch
from tests.helpers import WHATSAPP_ASSET, route_whatsapp_to_an_unreachable_ece, whatsapp_headers, whatsapp_payload


def post_whatsapp(client, messages):
    body = whatsapp_payload(messages)
    response = client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))
    assert response.status_code == 200, response.get_json()


def test_first_message_is_routed_and_customer_details_recorded(client, redis):
    post_whatsapp(client, [("15551230001", "wamid.A1", "hello")])
    thread_id = thread_id_for("whatsapp", WHATSAPP_ASSET, "15551230001")

    assert (
        drain_thread(thread_id) == 2
    )  # the message, and the no_agents it brought: no agent is READY for TestRouter's queue

    thread = threads.load(redis, thread_id)
    assert thread.state.value == "unavailable"
    assert (thread.integration, thread.entry_point, thread.rule) == ("TestRouter", "Support", "whatsapp")
    assert thread.details == {"wa_id": "15551230001", "profile_name": "Customer 15551230001"}
    assert thread.sequence == 1
    entry = threads.timeline(redis, thread_id)[0]
    assert entry["provider_id"] == "wamid.A1"
    assert entry["routing"]["entry_point"] == "Support"
    assert redis.llen(keys.inbox(thread_id)) == 0


def test_items_are_handled_in_arrival_order_across_requests(client, redis):
    for index in range(5):
        post_whatsapp(client, [("15551230002", f"wamid.B{index}", f"message {index}")])
    thread_id = thread_id_for("whatsapp", WHATSAPP_ASSET, "15551230002")

    assert (
        drain_thread(thread_id) == 6
    )  # the message, and the no_agents it brought: no agent is READY for TestRouter's queue

    handled = [e["provider_id"] for e in threads.timeline(redis, thread_id) if e.get("direction") == "in"]
    assert handled == [f"wamid.B{i}" for i in range(5)]
    assert threads.load(redis, thread_id).sequence == 1, "one open conversation receives them all"


def test_a_drain_finds_the_lease_taken_and_leaves_the_items(client, redis):
    post_whatsapp(client, [("15551230003", "wamid.C1", "hi")])
    thread_id = thread_id_for("whatsapp", WHATSAPP_ASSET, "15551230003")
    boxes = Boxes(redis)
    held = boxes.acquire(thread_id, 30)
    assert held
    token, head = held.token, held.heads[Box.IN]
    assert head is not None and b"wamid.C1" in head

    assert drain_thread(thread_id) == 0
    assert redis.llen(keys.inbox(thread_id)) == 1

    assert boxes.release(thread_id, token) == 1
    assert (
        drain_thread(thread_id) == 2
    )  # the message, and the no_agents it brought: no agent is READY for TestRouter's queue


def test_commit_refuses_a_holder_whose_lease_was_taken_over(client, redis):
    post_whatsapp(client, [("15551230004", "wamid.D1", "hi")])
    thread_id = thread_id_for("whatsapp", WHATSAPP_ASSET, "15551230004")
    boxes = Boxes(redis)
    first = boxes.acquire(thread_id, 30)
    stale, item = first.token, first.heads[Box.IN]
    redis.delete(keys.lease(thread_id))  # the lease lapsed ...
    fresh = boxes.acquire(thread_id, 30).token  # ... and another worker took the thread

    assert isinstance(item, bytes)
    assert boxes.commit(thread_id, stale, item, {"kind": "x"}) is LEASE_LOST
    assert redis.llen(keys.inbox(thread_id)) == 1
    assert boxes.commit(thread_id, fresh, item, {"kind": "x"}, {"state": "new"}) is None, "committed; now empty"
    assert redis.llen(keys.inbox(thread_id)) == 0
    assert redis.hget(keys.thread(thread_id), "state") == b"new", "the thread is written with the pop"


def test_unmatched_message_is_recorded_as_unrouted(runtime, client, redis, tmp_path):
    from dataclasses import replace

    runtime._config = replace(runtime.config, rules=())
    post_whatsapp(client, [("15551230005", "wamid.E1", "hello")])
    thread_id = thread_id_for("whatsapp", WHATSAPP_ASSET, "15551230005")

    drain_thread(thread_id)

    thread = threads.load(redis, thread_id)
    assert thread.state.value == "unrouted"
    assert thread.integration is None
    record = json.loads(redis.lindex(keys.unrouted(), 0))
    assert record["thread"] == thread_id


def test_default_rule_catches_what_no_rule_matches(runtime, client, redis):
    from dataclasses import replace

    from connector.config.model import DefaultRule, RuleAction

    runtime._config = replace(
        runtime.config, rules=(), default_rule=DefaultRule(action=RuleAction("TestRouter", "Sales"), name="fallback")
    )
    post_whatsapp(client, [("15551230006", "wamid.F1", "hello")])
    thread_id = thread_id_for("whatsapp", WHATSAPP_ASSET, "15551230006")

    drain_thread(thread_id)

    thread = threads.load(redis, thread_id)
    assert (thread.state.value, thread.entry_point, thread.rule) == ("unavailable", "Sales", "fallback")


def test_metrics_show_the_backlog(client, redis):
    post_whatsapp(client, [("15551230007", "wamid.G1", "a"), ("15551230008", "wamid.G2", "b")])
    text = client.get("/metrics").get_data(as_text=True)
    assert "connector_inbox_items 2" in text
    assert "connector_inbox_conversations 2" in text
    assert 'connector_queue_jobs{queue="inbound"} 2' in text, "a dispatcher slot each, up to the cap"

    drain_thread(thread_id_for("whatsapp", WHATSAPP_ASSET, "15551230007"))
    assert "connector_inbox_items 1" in client.get("/metrics").get_data(as_text=True)


def test_dispatcher_slots_are_capped_and_a_silent_one_is_reaped(client, redis):
    dispatch = Dispatch(redis, wake_ttl_seconds=30, dispatchers=2)
    post_whatsapp(client, [("15551230009", "wamid.H1", "a"), ("15551230010", "wamid.H2", "b")])
    assert redis.zcard(keys.dispatchers()) == 2, "each arrival claimed a slot, up to the cap"
    post_whatsapp(client, [("15551230011", "wamid.H3", "c")])
    assert redis.zcard(keys.dispatchers()) == 2 and dispatch.claim() is None, "the cap holds"

    dead = redis.zrange(keys.dispatchers(), 0, 0)[0]
    redis.zadd(keys.dispatchers(), {dead: 0})  # its job was killed: no heartbeat since
    slot = dispatch.claim()
    assert slot is not None and redis.zscore(keys.dispatchers(), dead) is None, "the silent slot is reaped"
    dispatch.retire(slot)
    assert redis.zcard(keys.dispatchers()) == 1


def test_an_item_for_a_box_backing_off_wakes_no_drain_until_its_retry_time(redis):
    """During an outage the head waits for its retry; a drain woken per new message would only find
    it waiting. The item is still kept, in order, and the other box still wakes."""
    import time

    boxes = Boxes(redis, wake_ttl_seconds=30, dispatchers=2)
    redis.hset(keys.retry_state("t1"), mapping={"in_until": time.time() + 60})

    assert boxes.append(Box.IN, "t1", "second", "dedupe-2", 60) == 0
    assert redis.lrange(keys.inbox("t1"), 0, -1) == [b"second"], "kept"
    assert redis.llen(keys.ready()) == 0 and not redis.exists(keys.wake("t1")), "no wake-up"
    assert not boxes.stranded("t1"), "nor does the sweeper wake it before its time"

    assert boxes.append(Box.OUT, "t1", "agent says hi", "dedupe-3", 60) > 0, "the outbox is not backing off"
    assert redis.lrange(keys.ready(), 0, -1) == [b"t1"]

    redis.delete(keys.ready(), keys.wake("t1"))
    redis.hset(keys.retry_state("t1"), mapping={"in_until": time.time() - 1})
    assert boxes.stranded("t1"), "once its time has come the sweeper wakes it"
    boxes.append(Box.IN, "t1", "third", "dedupe-4", 60)
    assert redis.lrange(keys.ready(), 0, -1) == [b"t1"], "and so does the next message"


def test_deferred_retries_wake_their_thread_when_due_each_box_on_its_own_time(redis):
    """Retries wait in a zset, not as RQ jobs: a poll moves the due ones to the ready list once,
    and a box due later keeps its own wake-up."""
    import time

    dispatch = Dispatch(redis, wake_ttl_seconds=30, dispatchers=1)
    now = time.time()
    dispatch.defer("t1", Box.IN, now - 1)
    dispatch.defer("t1", Box.OUT, now + 60)
    dispatch.defer("t2", Box.IN, now - 1)
    dispatch.defer("t3", Box.IN, now + 60)

    moved, slot = dispatch.promote_due()
    assert moved == 2 and slot is not None, "two came due; one dispatch job is to be queued"
    assert sorted(redis.lrange(keys.ready(), 0, -1)) == [b"t1", b"t2"]
    assert redis.zrange(keys.deferred(), 0, -1) == [b"t1:out", b"t3:in"], "the later ones wait on"

    assert dispatch.promote_due() == (0, None), "nothing is due twice"
    redis.zadd(keys.deferred(), {"t1:out": now - 1})
    assert dispatch.promote_due() == (1, None), "the cap of one dispatcher holds"
    assert sorted(redis.lrange(keys.ready(), 0, -1)) == [b"t1", b"t2"], "t1 is ready already: not listed twice"

    dispatch.defer("t3", Box.IN, now - 5)
    assert redis.zscore(keys.deferred(), "t3:in") == now - 5, "a later failure replaces the box's time"


def test_a_retryable_failure_defers_the_head_and_the_poll_drains_it_again(runtime, settings, client, redis):
    """Nothing listens at this ECE's address, so the first message's start fails: the head stays in
    place, waits in the deferred zset (no RQ job), and the poll puts its thread back on the ready list."""
    import dataclasses
    import time

    from rq.registry import ScheduledJobRegistry

    from connector import queues
    from connector.relay import drain
    from connector.relay.sweeper import promote_due
    from connector.runtime import Runtime

    route_whatsapp_to_an_unreachable_ece(runtime)
    fast = Runtime(dataclasses.replace(settings, retry_base_seconds=0.5, retry_max_seconds=0.5))

    post_whatsapp(client, [("15551230077", "wamid.R1", "hello")])
    thread_id = redis.lrange(keys.ready(), 0, -1)[0].decode()
    redis.delete(keys.ready(), keys.wake(thread_id))
    drain.drain_thread(thread_id, fast)
    assert redis.llen(keys.inbox(thread_id)) == 1, "kept, in place"
    assert redis.zscore(keys.deferred(), f"{thread_id}:in") is not None, "its retry is deferred"
    scheduled = ScheduledJobRegistry(queue=queues.queue(queues.HOUSEKEEPING, redis))
    assert scheduled.count == 0, "and no RQ job is scheduled for it"

    time.sleep(0.6)  # the retry time has come (a busy machine must not make the drain retry first)
    assert promote_due(redis, fast.dispatch) == 1
    assert redis.lrange(keys.ready(), 0, -1) == [thread_id.encode()], "back on the ready list"
    retries = [e for e in threads.timeline(redis, thread_id) if e.get("kind") == "retry"]
    assert len(retries) == 1 and "127.0.0.1:9" in retries[0]["error"]


def test_the_sweeper_checks_thousands_of_threads_in_batches_and_finds_exactly_the_stranded(redis):
    """Held, queued, backing off or empty threads are left alone, across batch boundaries."""
    import time

    from connector.relay.sweeper import sweep
    from connector.store.boxes import SWEEP_BATCH

    boxes = Boxes(redis, wake_ttl_seconds=30, dispatchers=2)
    count = 2 * SWEEP_BATCH + 200
    pipe = redis.pipeline(transaction=False)
    for index in range(count):
        thread_id = f"t{index:05d}"
        pipe.rpush(keys.inbox(thread_id), "item")
        pipe.sadd(keys.active_inboxes(), thread_id)
        match index % 5:
            case 0:
                pipe.set(keys.lease(thread_id), "someone")  # a drain holds it
            case 1:
                pipe.set(keys.wake(thread_id), "1")  # its wake-up is queued
            case 2:
                pipe.hset(keys.retry_state(thread_id), "in_until", time.time() + 60)  # backing off
            case 3:
                pipe.delete(keys.inbox(thread_id))  # nothing left
    pipe.execute()

    expected = [f"t{index:05d}" for index in range(count) if index % 5 == 4]
    assert boxes.stranded_among(boxes.active()) == expected
    assert sorted(sweep(redis, 1.0, boxes, Dispatch(redis, wake_ttl_seconds=30, dispatchers=2))) == expected
    assert sorted(m.decode() for m in redis.lrange(keys.ready(), 0, -1)) == expected, "each woken once"


def test_an_arrival_while_the_lease_is_held_queues_no_wake_up_and_the_release_counts_it(client, redis):
    thread_id = thread_id_for("whatsapp", WHATSAPP_ASSET, "15551230011")
    boxes = Boxes(redis)
    post_whatsapp(client, [("15551230011", "wamid.H1", "first")])
    assert redis.exists(keys.wake(thread_id)) and redis.lrange(keys.ready(), 0, -1) == [thread_id.encode()]
    redis.delete(keys.wake(thread_id), keys.ready())

    held = boxes.acquire(thread_id, 30)
    assert held is not None
    post_whatsapp(client, [("15551230011", "wamid.H2", "second")])
    assert not redis.exists(keys.wake(thread_id)), "the holder will see it: no other drain is sent"
    assert redis.llen(keys.ready()) == 0
    assert boxes.release(thread_id, held.token) == 2, "both items are due at the holder's release"


def test_a_drain_handles_what_arrived_during_its_hold_before_it_lets_go(client, redis, monkeypatch):
    import connector.relay.drain as drain

    thread_id = thread_id_for("whatsapp", WHATSAPP_ASSET, "15551230012")
    post_whatsapp(client, [("15551230012", "wamid.I1", "first")])
    redis.delete(keys.wake(thread_id), keys.ready())
    real = drain._handle_one
    arrived: list[str] = []

    def arrival_during_the_hold(*args, **kwargs):
        if not arrived:
            arrived.append("wamid.I2")
            post_whatsapp(client, [("15551230012", "wamid.I2", "second")])  # another webhook, meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(drain, "_handle_one", arrival_during_the_hold)
    assert drain_thread(thread_id) >= 2
    handled = [e["provider_id"] for e in threads.timeline(redis, thread_id) if e.get("direction") == "in"]
    assert handled == ["wamid.I1", "wamid.I2"]
    assert redis.llen(keys.inbox(thread_id)) == 0 and redis.llen(keys.ready()) == 0


def test_a_drain_that_fails_puts_the_thread_back_for_what_arrived_during_its_hold(client, redis, monkeypatch):
    import connector.relay.drain as drain

    thread_id = thread_id_for("whatsapp", WHATSAPP_ASSET, "15551230013")
    post_whatsapp(client, [("15551230013", "wamid.J1", "first")])
    redis.delete(keys.wake(thread_id), keys.ready())

    def arrival_then_a_fault(*args, **kwargs):
        post_whatsapp(client, [("15551230013", "wamid.J2", "second")])
        raise RuntimeError("an unexpected fault while handling")

    monkeypatch.setattr(drain, "_handle_one", arrival_then_a_fault)
    with pytest.raises(RuntimeError, match="unexpected fault"):
        drain_thread(thread_id)
    assert not redis.exists(keys.lease(thread_id)), "the lease is given back"
    assert redis.lrange(keys.ready(), 0, -1) == [thread_id.encode()], "back on the ready list"
    assert redis.llen(keys.inbox(thread_id)) == 2, "nothing lost"
