"""Calls in flight per integration: the gate that bounds them in a process, and the counts every
process publishes so the operator sees all workers' calls together (real Redis)."""

from __future__ import annotations

import threading

import pytest

from connector.backends.in_flight import FIELD_SEPARATOR, FORGET_SECONDS, InFlight, NoTurn, published
from connector.config.model import Integration
from connector.store import keys

ECE = Integration(name="ECE", type="ece", base_url="https://ece.example.com", max_in_flight=2)


def test_the_gate_holds_max_in_flight_calls_and_counts_them() -> None:
    gate = InFlight()
    with gate.call(ECE), gate.call(ECE):
        assert gate.held() == {"ECE": 2}
        with pytest.raises(NoTurn, match="2 calls to ECE already in flight"), gate.call(ECE, wait_seconds=0.01):
            pass
    assert gate.held() == {"ECE": 0}, "a refused call holds nothing and the others gave theirs back"


def test_a_call_waits_for_a_turn_that_frees() -> None:
    gate = InFlight()
    first = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate.call(ECE), gate.call(ECE):
            first.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert first.wait(5)
    threading.Timer(0.05, release.set).start()
    with gate.call(ECE, wait_seconds=5):
        assert gate.held()["ECE"] >= 1
    holder.join(5)


def test_published_counts_sum_the_fresh_processes_and_forget_the_gone(redis) -> None:
    gate = InFlight()
    with gate.call(ECE):
        gate.publish(redis, "worker:a:1", force=True)
    other = InFlight()
    with other.call(ECE), other.call(ECE):
        other.publish(redis, "worker:b:2", force=True)
    now = _now(redis)
    # what each process last said: a 1 (published while its call was held), b 2
    assert published(redis, now=now + 1) == {"ECE": 3}
    assert published(redis, now=now + 10) == {}, "counts older than FRESH_SECONDS are not counted"
    assert redis.hlen(keys.in_flight()) == 2, "but kept a while"
    assert published(redis, now=now + FORGET_SECONDS + 1) == {}
    assert redis.hlen(keys.in_flight()) == 0, "a process gone this long is forgotten"


def test_publish_is_throttled_unless_forced(redis) -> None:
    gate = InFlight()
    with gate.call(ECE):
        gate.publish(redis, "worker:a:1")
    with gate.call(ECE), gate.call(ECE):
        gate.publish(redis, "worker:a:1")  # within PUBLISH_SECONDS of the last: not written
        assert _stored_count(redis, "ECE", "worker:a:1") == 1
        gate.publish(redis, "worker:a:1", force=True)
        assert _stored_count(redis, "ECE", "worker:a:1") == 2


def test_an_unreadable_entry_is_dropped_not_fatal(redis) -> None:
    redis.hset(keys.in_flight(), mapping={f"ECE{FIELD_SEPARATOR}worker:x": "garbage"})
    assert published(redis, now=_now(redis)) == {}
    assert redis.hlen(keys.in_flight()) == 0


def _now(redis) -> float:
    seconds, micros = redis.time()
    return seconds + micros / 1e6


def _stored_count(redis, integration: str, process: str) -> int:
    value = redis.hget(keys.in_flight(), f"{integration}{FIELD_SEPARATOR}{process}")
    return int(value.decode().split(FIELD_SEPARATOR)[0])
