"""Effects of a head item: read once per handling (or not at all when the drain knows there are
none), recorded at once, and known to the drain from the lease's acquire and each commit."""

from __future__ import annotations

import redis as redis_lib

from connector.store import keys
from connector.store.boxes import Box, Boxes
from connector.store.effects import Effects

THREAD = "t-effects"


def reads(redis: redis_lib.Redis) -> int:
    """Reads of any hash so far (the server's own count, so no client path can hide one)."""
    stats = redis.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("hget", "hgetall", "hmget"))


def test_the_first_check_reads_the_record_whole_and_the_later_checks_use_it(redis: redis_lib.Redis) -> None:
    redis.hset(keys.effects("out", THREAD), mapping={"send:1": "SM1", "send:2:wait": "1"})
    effects = Effects(redis, Box.OUT, THREAD)
    before = reads(redis)
    assert effects.get("send:1") == "SM1"
    assert effects.get("send:2:wait") == "1"
    assert effects.get("send:3") is None
    assert reads(redis) - before == 1


def test_a_record_known_empty_is_never_read(redis: redis_lib.Redis) -> None:
    effects = Effects(redis, Box.OUT, THREAD, recorded={})
    before = reads(redis)
    assert effects.get("send:1") is None
    effects.record("send:1", "SM1")
    assert effects.get("send:1") == "SM1", "what this handling records, it sees"
    assert effects.once("send:1", lambda: "SM-again") == "SM1", "done once: not done again"
    assert reads(redis) == before
    assert redis.hgetall(keys.effects("out", THREAD)) == {b"send:1": b"SM1"}, "recorded in Redis at once"


def test_a_record_queued_on_a_transaction_is_read_again_at_the_next_check(redis: redis_lib.Redis) -> None:
    effects = Effects(redis, Box.OUT, THREAD, recorded={})
    pipe = redis.pipeline(transaction=True)
    effects.queue_record(pipe, "file:1", "F1")
    pipe.execute()
    assert effects.get("file:1") == "F1"


def test_an_attempt_keeps_the_first_marker_even_with_a_stale_copy(redis: redis_lib.Redis) -> None:
    redis.hset(keys.effects("in", THREAD), "start:attempt", "ref-first")
    effects = Effects(redis, Box.IN, THREAD, recorded={})  # a copy that misses it
    assert effects.attempt("start", "ref-second") == "ref-first"
    assert effects.attempted("start") == "ref-first"


def test_the_acquire_says_which_heads_have_no_effects_and_a_commit_clears_its_box(redis: redis_lib.Redis) -> None:
    boxes = Boxes(redis)
    for box in Box:
        assert boxes.append(box, THREAD, f'{{"item": "{box.value}"}}', f"dedupe-{box.value}", 60) >= 0
    redis.hset(keys.effects("in", THREAD), "start:1", "chat-1")

    held = boxes.acquire(THREAD, 30)
    assert held is not None
    assert held.clean == {Box.OUT}, "the inbox head is a repeat that recorded an effect"
    head = held.heads[Box.IN]
    assert head is not None
    boxes.commit(THREAD, held.token, head, None, box=Box.IN)
    assert not redis.exists(keys.effects("in", THREAD)), "the commit forgets the item's effects"
    boxes.release(THREAD, held.token)

    again = boxes.acquire(THREAD, 30)
    assert again is not None
    assert again.clean == {Box.IN, Box.OUT}
