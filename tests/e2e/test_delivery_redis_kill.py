"""Redis SIGKILLed mid-drain (no clean shutdown) and restarted from its AOF, on the ECE and provider
simulators: with `appendfsync always`, every message acknowledged before the kill reaches ECE or the
customer, in order per conversation, once (but for the documented crash window of the calls in
flight, tests/e2e/delivery.py).

This test's own redis-server (the session's is shared and must not be killed), switched to
`appendfsync always` with CONFIG SET after each start: what CONNECTOR_DURABILITY=always makes the
embedded Redis run (connector/store/durability.py), applied here without depending on how it is
started.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from connector.embedded_redis import EmbeddedRedis
from tests.e2e.delivery import (
    FAST_LEASE,
    check,
    check_boxes_empty,
    check_conversations_and_notices,
    delivered,
    leases_held,
    open_chats,
    send_both_ways,
    wait_all_delivered,
    wait_mid_drain,
)
from tests.helpers import wait_for

PER_CHANNEL = 3
PER_SIDE = 8
ANSWER_SECONDS = 0.03
DOWN_SECONDS = 1.0


def fsync_always(server: EmbeddedRedis) -> EmbeddedRedis:
    client = redis_lib.Redis.from_url(server.url)
    client.config_set("appendfsync", "always")
    assert client.config_get("appendfsync") == {"appendfsync": "always"}
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    client.close()
    return server


@pytest.fixture
def redis_server() -> Iterator[EmbeddedRedis]:
    folder = Path(tempfile.mkdtemp(prefix="cc-kill-", dir="/tmp"))  # short: unix socket path limit
    server = fsync_always(EmbeddedRedis(folder).start())
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """This module's Redis, for the stack, its workers and the `redis` fixture alike."""
    return redis_server.url


def test_redis_sigkilled_mid_drain_and_restarted_from_its_aof_loses_nothing(
    stack_factory, redis, redis_server: EmbeddedRedis
) -> None:
    stack = stack_factory(worker_env=FAST_LEASE, ece_threads=32, sandbox_threads=32)
    traffic = open_chats(stack, PER_CHANNEL)
    stack.ece.model.set_answer_delay(ANSWER_SECONDS)
    stack.providers.set_delay(None, ANSWER_SECONDS)

    send_both_ways(stack, traffic, PER_SIDE)  # every item acknowledged before the kill
    done_before = wait_mid_drain(stack, traffic)
    assert leases_held(redis), "mid-drain: a worker holds conversations"
    redis_server.kill()  # SIGKILL: only what the AOF holds survives
    killed_at = time.time()
    time.sleep(DOWN_SECONDS)  # the worker meets a dead Redis mid-drain
    fsync_always(redis_server.start())  # the same folder: the AOF is replayed
    back_at = time.time()

    # A worker whose Redis stays gone past its connection retries exits; the supervisor
    # (connector/supervisor.py) starts another. These tests have no supervisor: do as it does.
    def restart_dead_workers() -> bool:
        if all(worker.process.poll() is not None for worker in stack.workers):
            stack.add_worker()
        return delivered(stack) >= traffic.total

    wait_for(restart_dead_workers, timeout=30, what=f"all {traffic.total} items delivered")
    wait_all_delivered(stack, traffic)

    duplicates = check(stack, traffic, killed_at, back_at)
    check_conversations_and_notices(stack, traffic)
    wait_for(lambda: not leases_held(redis), timeout=10, what="every lease given back")
    check_boxes_empty(redis)
    print(f"{done_before} of {traffic.total} delivered before the kill; allowed repeats: {duplicates or 'none'}")
