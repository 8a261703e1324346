"""A script queued on a transaction by `scripts.queue` runs in it with no SCRIPT EXISTS round trip
first, and also when Redis has forgotten its scripts (a restart empties the script cache)."""

from __future__ import annotations

import redis as redis_lib

from connector.store import scripts

SWAP = "local old = redis.call('GET', KEYS[1]) redis.call('SET', KEYS[1], ARGV[1]) return old"


def script_commands(redis: redis_lib.Redis) -> int:
    """SCRIPT EXISTS / LOAD calls so far (the server's own count)."""
    stats = redis.info("commandstats")
    return sum(v.get("calls", 0) for k, v in stats.items() if k.startswith("cmdstat_script"))


def test_a_queued_script_runs_inside_the_transaction_without_asking_redis_first(redis: redis_lib.Redis) -> None:
    swap = redis.register_script(SWAP)
    redis.set("scripts:k", "first")
    before = script_commands(redis)
    with redis.pipeline(transaction=True) as pipe:
        scripts.queue(pipe, swap, ["scripts:k"], ["second"])
        pipe.get("scripts:k")
        assert pipe.execute() == [b"first", b"second"]
    assert script_commands(redis) == before, "no SCRIPT EXISTS before the transaction"


def test_a_queued_script_runs_after_redis_forgot_every_script(redis: redis_lib.Redis) -> None:
    swap = redis.register_script(SWAP)
    swap(keys=["scripts:k2"], args=["first"])  # known to Redis by its SHA-1 now
    redis.script_flush()
    with redis.pipeline(transaction=True) as pipe:
        scripts.queue(pipe, swap, ["scripts:k2"], ["second"])
        assert pipe.execute() == [b"first"]
    assert redis.get("scripts:k2") == b"second"
