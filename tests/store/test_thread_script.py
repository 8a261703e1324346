"""The intake's fast path: a Lua script on the calling thread's own connection, on a real Redis."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
import redis as redis_lib

from connector.embedded_redis import EmbeddedRedis
from connector.store.thread_script import ThreadScript

# Idempotent per key, like the boxes' append: a repeat answers what the first call stored.
STORE_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 1 end
return redis.call('GET', KEYS[1])
"""
COUNTER = "return redis.call('INCR', KEYS[1])"


def connected_clients(redis: redis_lib.Redis) -> int:
    return int(redis.info("clients")["connected_clients"])


def test_answers_like_the_client_and_raises_its_errors(redis):
    script = ThreadScript(redis, STORE_ONCE)
    assert script(keys=["k"], args=["first"]) == 1
    assert script(keys=["k"], args=["second"]) == b"first"
    with pytest.raises(redis_lib.ResponseError, match="boom"):
        ThreadScript(redis, "return redis.error_reply('boom')")(keys=[], args=[])


def test_a_thread_keeps_one_connection(redis):
    before = connected_clients(redis)
    script = ThreadScript(redis, COUNTER)
    for _ in range(20):
        script(keys=["n"], args=[])
    assert connected_clients(redis) == before + 1


def test_threads_never_read_each_others_replies(redis):
    script = ThreadScript(redis, COUNTER)
    answers: list[list[int]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def count(mine: list[int]) -> None:
        start.wait()
        mine.extend(script(keys=["n"], args=[]) for _ in range(300))

    workers = [threading.Thread(target=count, args=(mine,)) for mine in answers]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    everything = [n for mine in answers for n in mine]
    assert sorted(everything) == list(range(1, 1201)), "each increment answered once, to its caller"
    assert all(mine == sorted(mine) for mine in answers)


def test_a_forked_child_opens_its_own_connection(redis):
    script = ThreadScript(redis, COUNTER)
    script(keys=["n"], args=[])
    before = connected_clients(redis)
    called, release = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count once, report, wait until the parent has looked
        status = 1
        try:
            status = 0 if script(keys=["n"], args=[]) == 2 else 1
        finally:
            os.write(called[1], bytes([status]))
            os.read(release[0], 1)
            os._exit(status)
    try:
        assert os.read(called[0], 1) == b"\x00", "the child got its own answer"
        assert connected_clients(redis) == before + 1, "the child did not write on the parent's socket"
    finally:
        os.write(release[1], b"x")
        os.waitpid(pid, 0)
    assert script(keys=["n"], args=[]) == 3, "the parent's connection still answers in order"


@pytest.fixture
def own_server():
    folder = Path(tempfile.mkdtemp(prefix="cc-ts-", dir="/tmp"))  # short: unix socket path limit
    server = EmbeddedRedis(folder).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_redis_restart_is_survived_without_an_error(own_server):
    client = redis_lib.Redis.from_url(own_server.url, socket_timeout=5)
    script = ThreadScript(client, STORE_ONCE)
    assert script(keys=["k"], args=["before"]) == 1

    own_server.stop()  # the kept connection dies, and the server forgets its scripts
    own_server.start()

    assert script(keys=["k"], args=["after"]) == b"before", "reconnected, reloaded, and the AOF kept the key"
    assert script(keys=["j"], args=["after"]) == 1


def test_redis_down_raises_a_connection_error_and_recovers(own_server):
    client = redis_lib.Redis.from_url(own_server.url, socket_timeout=5)
    script = ThreadScript(client, COUNTER)
    assert script(keys=["n"], args=[]) == 1
    own_server.stop()
    with pytest.raises(redis_lib.ConnectionError):
        script(keys=["n"], args=[])
    with pytest.raises(redis_lib.ConnectionError):
        script(keys=["n"], args=[])
    own_server.start()
    assert script(keys=["n"], args=[]) == 2
