"""The conversations list and one conversation's story, read from what the intake and drain write."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime

import pytest

from connector.channels.base import thread_id_for
from connector.conversations import State
from connector.operations import conversations as view
from connector.relay.drain import drain_thread
from connector.store import dead_letters, keys, threads
from connector.store.boxes import Box, Boxes
from tests.helpers import WHATSAPP_ASSET, whatsapp_headers, whatsapp_payload


def seed(redis, count: int, **overrides) -> list[str]:
    """`count` threads written the way the drain's commit writes them (hash + activity score);
    thread i has activity 1000 + i, so the newest is the last one."""
    ids = []
    for i in range(count):
        fields = {
            "channel": "sms" if i % 2 else "whatsapp",
            "asset": "test-sms" if i % 2 else "test-whatsapp",
            "customer": f"+1555000{i:04d}",
            "state": State.ASSIGNED if i % 3 == 0 else State.CLOSED,
            "integration": "TestRouter",
            "entry_point": "Sales" if i % 5 == 0 else "Support",
            "agent_name": f"Agent {i % 7}" if i % 3 == 0 else None,
        }
        fields.update(overrides)
        thread = threads.Thread(id=f"t{i:05d}", **fields)
        threads.save(redis, thread)
        redis.zadd(keys.threads_by_activity(), {thread.id: 1000 + i})
        ids.append(thread.id)
    return ids


def test_the_list_is_newest_first_and_paged(redis):
    ids = seed(redis, 120)
    first = view.listing(redis, page=1, per_page=50)
    assert [row.id for row in first.items] == list(reversed(ids))[:50]
    assert first.has_next and first.total == 120
    last = view.listing(redis, page=3, per_page=50)
    assert [row.id for row in last.items] == list(reversed(ids))[100:]
    assert not last.has_next
    row = first.items[0]
    assert (row.channel, row.customer, row.state, row.last_activity) == ("sms", "+15550000119", State.CLOSED, 1119.0)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (view.Filters(channel="sms"), lambda i: i % 2 == 1),
        (view.Filters(state="assigned"), lambda i: i % 3 == 0),
        (view.Filters(state=view.ACTIVE), lambda i: i % 3 == 0),
        (view.Filters(state="closed", channel="whatsapp"), lambda i: i % 3 != 0 and i % 2 == 0),
        (view.Filters(entry_point="Sales"), lambda i: i % 5 == 0),
        (view.Filters(entry_point="TestRouter/Sales"), lambda i: i % 5 == 0),
        (view.Filters(entry_point="Other/Sales"), lambda i: False),
        (view.Filters(agent="agent 3"), lambda i: i % 3 == 0 and i % 7 == 3),
    ],
)
def test_filters_select_exactly_the_matching_conversations(redis, filters, expected):
    seed(redis, 300)
    wanted = [f"t{i:05d}" for i in reversed(range(300)) if expected(i)]
    got, page = [], 1
    while True:
        found = view.listing(redis, filters, page=page, per_page=40)
        got += [row.id for row in found.items]
        if not found.has_next:
            break
        page += 1
    assert got == wanted
    assert not found.truncated


def test_a_filtered_search_stops_at_its_limit_and_says_so(redis):
    seed(redis, 50, channel="whatsapp")
    found = view.listing(redis, view.Filters(channel="sms"), scan_limit=30)
    assert found.items == [] and found.scanned == 30 and found.truncated
    counted = view.listing(redis, view.Filters(channel="whatsapp"), per_page=10, scan_limit=30)
    assert (len(counted.items), counted.matched, counted.pages, counted.truncated) == (10, 30, 3, True)
    everything = view.listing(redis, view.Filters(channel="whatsapp"), per_page=10, scan_limit=50)
    assert (everything.matched, everything.scanned, everything.truncated) == (50, 50, False)
    # the dates narrow the window before the limit counts: the 5 of the next day fit in it whole
    for i in range(5):
        write_thread(redis, f"next-day-{i}", 86_400 + i, channel="whatsapp", customer=str(i))
    next_day = view.listing(redis, view.Filters(channel="whatsapp", since=date(1970, 1, 2)), scan_limit=30)
    assert (next_day.matched, next_day.scanned, next_day.truncated) == (5, 5, False)


def write_thread(redis, thread_id: str, activity: float, **fields) -> None:
    """One thread as the drain's commit writes it: its hash (threads.fields_of) and activity score."""
    threads.save(redis, threads.Thread(id=thread_id, **fields))
    redis.zadd(keys.threads_by_activity(), {thread_id: activity})


def test_search_finds_the_customer_by_id_name_or_first_message_in_any_case(redis):
    write_thread(redis, "wa", 3.0, channel="whatsapp", customer="15551230001", details={"profile_name": "Zoë Ortega"})
    write_thread(
        redis,
        "app",
        2.0,
        channel="inapp",
        customer="user-77",
        details={"name": "Ann Lee"},
        first_text="My ORDER 1234 is late",
    )
    write_thread(
        redis,
        "fb",
        1.0,
        channel="messenger",
        customer="6024417683491234",
        details={"first_name": "Li", "last_name": "Wu"},
    )

    def ids(search: str) -> list[str]:
        found = view.listing(redis, view.Filters(search=search))
        assert found.matched == len(found.items)
        return [row.id for row in found.items]

    assert ids("1234") == ["app", "fb"], "the first message's text, and a PSID"
    assert ids("ZOË") == ["wa"] and ids("ortega") == ["wa"], "a WhatsApp profile name, any case"
    assert ids("order 1234 is") == ["app"] and ids("ann") == ["app"]
    assert ids("li wu") == ["fb"], "Messenger's profile: first and last name"
    assert ids("15551230001") == ["wa"]
    assert ids("nobody") == []
    row = view.listing(redis, view.Filters(search="late")).items[0]
    assert (row.customer_name, row.first_text) == ("Ann Lee", "My ORDER 1234 is late")


def test_the_count_and_the_pages_follow_the_filters(redis):
    seed(redis, 300)
    found = view.listing(redis, view.Filters(state="assigned"), page=2, per_page=40)
    assert (found.matched, found.pages, found.page, found.has_next) == (100, 3, 2, True)
    assert found.total == 300 and found.scanned == 300
    unfiltered = view.listing(redis, per_page=40)
    assert (unfiltered.matched, unfiltered.pages) == (300, 8)
    nothing = view.listing(redis, view.Filters(agent="nobody"))
    assert (nothing.matched, nothing.pages, nothing.has_next, nothing.items) == (0, 1, False, [])


def test_dates_are_whole_utc_days_with_both_ends_included(redis):
    day = date(2026, 3, 10)
    start = view.day_start(day)
    assert start == datetime(2026, 3, 10, tzinfo=UTC).timestamp()
    for name, at in {
        "eve": start - 0.001,
        "first": start,
        "mid": start + 86_400,
        "last": start + 2 * 86_400 - 0.001,
        "next": start + 2 * 86_400,
    }.items():
        write_thread(redis, name, at, channel="sms", customer=name, state=State.CLOSED)

    def ids(**filters) -> list[str]:
        return [row.id for row in view.listing(redis, view.Filters(**filters)).items]

    assert ids(since=day, until=date(2026, 3, 11)) == ["last", "mid", "first"]
    assert ids(since=date(2026, 3, 11)) == ["next", "last", "mid"]
    assert ids(until=day) == ["first", "eve"]
    assert ids(since=day, until=day, state="closed") == ["first"], "the scanning path keeps the window"
    assert view.listing(redis, view.Filters(since=day, until=day)).matched == 1


def test_a_page_beyond_the_last_is_empty_or_with_clamp_the_last_one(redis):
    seed(redis, 30)
    beyond = view.listing(redis, page=9, per_page=20)
    assert (beyond.items, beyond.page, beyond.pages, beyond.has_next) == ([], 9, 2, False)
    clamped = view.listing(redis, page=9, per_page=20, clamp=True)
    assert (clamped.page, len(clamped.items)) == (2, 10)
    filtered = view.listing(redis, view.Filters(channel="sms"), page=9, per_page=10, clamp=True)
    assert (filtered.page, [row.id for row in filtered.items]) == (
        2,
        ["t00009", "t00007", "t00005", "t00003", "t00001"],
    )
    assert view.listing(redis, view.Filters(agent="nobody"), page=5, clamp=True).page == 1


@pytest.mark.parametrize(
    ("args", "expected", "problem"),
    [
        ({"state": "active", "q": " Ann "}, view.Filters(state="active", search="Ann"), None),
        ({"state": "bogus"}, view.Filters(), "Unknown state 'bogus'"),
        ({"channel": "fax", "agent": "zoe"}, view.Filters(agent="zoe"), "Unknown channel 'fax'"),
        ({"from": "2026-02-30"}, view.Filters(), "'2026-02-30' is not a date"),
        (
            {"from": "2026-03-01", "to": "2026-03-03"},
            view.Filters(since=date(2026, 3, 1), until=date(2026, 3, 3)),
            None,
        ),
        (
            {"from": "2026-03-03", "to": "2026-03-01"},
            view.Filters(since=date(2026, 3, 1), until=date(2026, 3, 3)),
            "the dates were swapped",
        ),
        ({"q": "x" * 500}, view.Filters(search="x" * view.TEXT_FILTER_LIMIT), None),
    ],
)
def test_query_strings_become_filters_and_what_is_not_understood_is_said(args, expected, problem):
    filters, problems = view.parse_filters(args, ("sms", "whatsapp"))
    assert filters == expected
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]
    again, _ = view.parse_filters(filters.query(), ("sms", "whatsapp"))
    assert again == filters, "the query string the links carry reads back as the same filters"


def test_the_drain_writes_what_search_reads_when_a_conversation_starts(client, redis):
    thread_id = post_whatsapp(client, "15551230009", "wamid.S1", "Refund for order 77, please")
    drain_thread(thread_id)
    post_whatsapp(client, "15551230009", "wamid.S2", "hello?")
    drain_thread(thread_id)
    stored = redis.hmget(keys.thread(thread_id), ["first_text", "customer_name"])
    assert stored == [b"Refund for order 77, please", b"Customer 15551230009"], "kept from the first message"
    assert [row.id for row in view.listing(redis, view.Filters(search="ORDER 77")).items] == [thread_id]
    assert [row.id for row in view.listing(redis, view.Filters(search="customer 1555123000")).items] == [thread_id]

    thread = threads.load(redis, thread_id)  # the agent ended it: the customer's next message starts another
    thread.state = State.CLOSED
    threads.save(redis, thread)
    post_whatsapp(client, "15551230009", "wamid.S3", "x" * 500)
    drain_thread(thread_id)
    thread = threads.load(redis, thread_id)
    assert thread.sequence == 2 and thread.first_text == "x" * threads.FIRST_TEXT_LIMIT
    assert view.listing(redis, view.Filters(search="order 77")).items == [], "the new conversation's text only"
    # the search fields live in the thread's own hash: they go when the thread does
    redis.delete(keys.thread(thread_id))
    assert view.listing(redis, view.Filters(search="xxx")).items == []


def post_whatsapp(client, wa_id: str, wamid: str, text: str) -> str:
    body = whatsapp_payload([(wa_id, wamid, text)])
    answer = client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))
    assert answer.status_code == 200
    return thread_id_for("whatsapp", WHATSAPP_ASSET, wa_id)


def test_a_conversation_shows_who_routing_and_its_timeline(client, redis):
    thread_id = post_whatsapp(client, "15551230001", "wamid.V1", "my order is late")
    drain_thread(thread_id)
    found = view.detail(redis, thread_id)
    assert found is not None
    assert (found.thread.channel, found.thread.customer, found.thread.entry_point) == (
        "whatsapp",
        "15551230001",
        "Support",
    )
    assert found.thread.details["profile_name"] == "Customer 15551230001"
    assert found.pending.stuck_reason is None and found.pending.inbox.length == 0
    step, told = view.steps(found.timeline)  # the message, and the no_agents it brought (no agent READY)
    assert (step.actor, step.label, step.text) == ("customer", "message", "my order is late")
    assert (told.actor, told.label) == ("system", "system message no_agents")
    assert any("rule whatsapp" in note and "TestRouter / Support" in note for note in step.notes)


def test_pending_items_and_a_retry_wait_say_where_it_is_stuck(client, redis):
    thread_id = post_whatsapp(client, "15551230002", "wamid.V2", "hello")
    until = time.time() + 60
    redis.hset(
        keys.retry_state(thread_id),
        mapping={"in": json.dumps({"digest": "x", "attempts": 3, "first_at": until - 90}), "in_until": until},
    )
    found = view.detail(redis, thread_id)
    assert found.pending.inbox.length == 1
    assert found.pending.inbox.items[0]["text"] == "hello"
    assert found.pending.inbox.retry == view.RetryWait(attempts=3, first_failure_at=until - 90, until=until)
    assert "retried" in found.pending.stuck_reason

    held = Boxes(redis).acquire(thread_id, 30)
    redis.hdel(keys.retry_state(thread_id), "in", "in_until")
    found = view.detail(redis, thread_id)
    assert found.pending.lease_ms and 0 < found.pending.lease_ms <= 30_000
    assert found.pending.stuck_reason == "a worker is handling it right now"
    Boxes(redis).release(thread_id, held.token)


def test_retries_and_dead_letters_are_steps_with_their_reason(redis):
    entries = [
        {"at": 1.0, "kind": "retry", "box": "out", "attempt": 2, "wait": 1.5, "error": "ECE answered 503"},
        {"at": 2.0, "kind": "dead_letter", "box": "in", "reason": "ECE refused start (400)", "id": "abc"},
        {"at": 3.0, "direction": "out", "kind": "assigned", "agent": "Alice", "system": ["agent_assigned"]},
        {
            "at": 4.0,
            "direction": "out",
            "kind": "text/plain",
            "text": "Hi",
            "errors": ["window closed"],
            "dead_letter": "d",
        },
        {"at": 5.0, "direction": "out", "kind": "system", "message": "welcome", "system": ["welcome"]},
    ]
    retry, dead, assigned, failed, system = view.steps(entries)
    assert retry.actor == "connector" and "attempt 2" in retry.label and retry.errors == ["ECE answered 503"]
    assert dead.dead_letter == "abc" and dead.errors == ["ECE refused start (400)"]
    assert assigned.label == "assigned to Alice" and "system message agent_assigned" in assigned.notes
    assert failed.errors == ["window closed"] and failed.dead_letter == "d" and failed.text == "Hi"
    assert system.actor == "system" and system.label == "system message welcome"


def test_an_unknown_thread_has_no_detail(redis):
    assert view.detail(redis, "no-such-thread") is None


def test_who_labels_threads_in_one_call_and_skips_missing_ones(redis):
    seed(redis, 3)
    letter = dead_letters.add(redis, "t00001", Box.IN, b"{}", "x")
    found = view.who(redis, [letter.thread, "t00002", "gone"])
    assert set(found) == {"t00001", "t00002"} and found["t00001"].channel == "sms"
