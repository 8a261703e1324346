"""Messages per minute and channel (store/tallies.py, `keys.traffic`): counted in the intake's and the
commit's own scripts, customer messages only on the way in, every part sent on the way out, in a
HASH per minute that expires."""

from __future__ import annotations

import time

from connector.channels.base import EventKind, InboundEvent
from connector.store import keys, tallies
from connector.store.boxes import Box, Boxes
from connector.store.tallies import Counter, Tally, Traffic


def event(kind: EventKind, provider_id: str, channel: str = "sms") -> InboundEvent:
    return InboundEvent(channel, f"test-{channel}", "+15550002222", kind, provider_id, time.time(), text="hi")


def this_minute(redis) -> dict[str, int]:
    raw = redis.hgetall(keys.traffic(tallies.minute_of(time.time())))
    return {k.decode(): int(float(v)) for k, v in raw.items()}


def test_the_intake_counts_customer_messages_once_each_and_not_typing_or_receipts(redis):
    boxes = Boxes(redis)
    boxes.accept(
        [
            event(EventKind.MESSAGE, "m1"),
            event(EventKind.POSTBACK, "m2"),
            event(EventKind.TYPING_START, "t1"),
            event(EventKind.RECEIPT, "r1"),
            event(EventKind.MESSAGE, "w1", channel="whatsapp"),
        ],
        3600,
    )
    boxes.accept([event(EventKind.MESSAGE, "m1")], 3600)  # the provider's retry: a duplicate
    assert this_minute(redis) == {"in|sms": 2, "in|whatsapp": 1}
    ttl = redis.ttl(keys.traffic(tallies.minute_of(time.time())))
    assert 0 < ttl <= tallies.TRAFFIC_TTL_SECONDS, "a minute's counts expire after the window"


def test_the_commit_counts_what_was_sent_with_the_item(redis):
    boxes = Boxes(redis)
    boxes.append(Box.OUT, "t1", "reply", keys.dedupe("t", "t1", "reply"), 60)
    held = boxes.acquire("t1", 30)
    assert held is not None
    tally = Tally()
    tally.count(Counter.MESSAGES_OUT, channel="sms", integration="ECE")
    tally.count(Counter.MESSAGES_OUT, channel="sms", integration="ECE")  # a long text sent in two parts
    tally.count(Counter.ERRORS, kind="outage", box="out")
    boxes.commit("t1", held.token, b"reply", {"kind": "x"}, None, box=Box.OUT, tally=tally)
    assert this_minute(redis) == {"out|sms": 2}
    stored = {k.decode(): float(v) for k, v in redis.hgetall(keys.tallies()).items()}
    assert stored["connector_messages_out|channel=sms,integration=ECE"] == 2, "the counter and the minute agree"


def test_a_commit_with_nothing_sent_leaves_the_minutes_alone(redis):
    boxes = Boxes(redis)
    boxes.append(Box.IN, "t1", "typing", keys.dedupe("t", "t1", "typing"), 60)
    held = boxes.acquire("t1", 30)
    assert held is not None
    boxes.commit("t1", held.token, b"typing", {"kind": "x"}, {"state": "new"}, tally=Tally())
    assert this_minute(redis) == {}
    assert redis.hget(keys.thread("t1"), "state") == b"new", "the thread's fields still follow the pairs"


def test_read_traffic_gives_each_minute_its_counts_and_skips_odd_fields():
    found = tallies.read_traffic([100, 101], [{b"in|sms": b"3", b"out|sms": b"2.0", b"junk": b"1", b"in|": b"4"}, {}])
    assert [f.minute for f in found] == [100, 101]
    assert found[0].counts == {(Traffic.IN, "sms"): 3, (Traffic.OUT, "sms"): 2}
    assert found[1].counts == {}
