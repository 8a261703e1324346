"""The Redis lease (connector/blending/lease.py) on a real Redis: one holder at a time, renewals,
loss on expiry or on an unreachable Redis, and release only by the holder."""

from __future__ import annotations

import threading
import time

import redis as redis_lib

from connector.blending.lease import HOLD_FRACTION, Lease
from connector.store import keys
from tests.helpers import wait_for

KEY = keys.listener_lease()


def lease(redis, ttl: float = 5.0, owner: str = "listener:host-a:1") -> Lease:
    return Lease(redis, KEY, ttl, owner=owner)


def test_the_first_acquires_and_a_second_cannot_while_it_holds(redis):
    first, second = lease(redis), lease(redis, owner="listener:host-b:2")
    assert first.acquire() and first.held()
    assert redis.get(KEY) == first.token.encode()
    assert 4000 < redis.pttl(KEY) <= 5000, "SET NX PX: the key lapses by itself"
    assert first.token.startswith("listener:host-a:1:"), "the holder is readable in redis-cli"

    assert not second.acquire() and not second.held()
    assert second.holder() == first.token
    assert redis.get(KEY) == first.token.encode(), "a refused acquire leaves the holder's key alone"
    assert first.acquire(), "acquiring again what one holds is a renewal"


def test_two_processes_on_the_same_host_are_different_holders(redis):
    assert lease(redis).acquire()
    assert not lease(redis).acquire(), "same owner name, new token: a restarted process waits like any standby"


def test_renew_extends_the_expiry(redis):
    holder = lease(redis, ttl=1.0)
    assert holder.acquire()
    time.sleep(0.6)
    assert redis.pttl(KEY) < 500
    assert holder.renew()
    assert redis.pttl(KEY) > 900
    assert holder.held()


def test_a_lapsed_lease_is_lost_and_another_takes_it(redis):
    holder, standby = lease(redis, ttl=0.3), lease(redis, ttl=0.3, owner="listener:host-b:2")
    assert holder.acquire()
    time.sleep(0.4)
    assert redis.get(KEY) is None, "expired"
    assert standby.acquire()
    assert not holder.renew(), "the renewal checks the token: it cannot extend its successor's lease"
    assert not holder.held()
    assert redis.get(KEY) == standby.token.encode()


def test_held_runs_out_before_the_key_can_expire(redis):
    holder = lease(redis, ttl=0.6)
    assert holder.acquire()
    time.sleep(0.6 * HOLD_FRACTION + 0.05)
    assert not holder.held(), "without a renewal the holder stops acting before a standby can take over"
    assert redis.get(KEY) == holder.token.encode(), "while the key itself still stands"


def test_release_only_by_its_holder(redis):
    holder, other = lease(redis), lease(redis, owner="listener:host-b:2")
    assert holder.acquire()
    other.release()
    assert redis.get(KEY) == holder.token.encode(), "another process's release deletes nothing"
    holder.release()
    assert redis.get(KEY) is None
    assert not holder.held()
    assert other.acquire(), "a released lease is free at once, not after the TTL"


def test_keep_renews_across_several_ttls_until_release(redis):
    holder = lease(redis, ttl=0.5)
    lost = threading.Event()
    assert holder.acquire()
    thread = holder.keep(on_lost=lost.set)
    time.sleep(1.6)
    assert holder.held() and not lost.is_set()
    assert redis.get(KEY) == holder.token.encode()
    holder.release()
    thread.join(2)
    assert not thread.is_alive()
    assert not lost.is_set(), "a release is not a loss"
    assert redis.get(KEY) is None


def test_a_new_term_ends_the_previous_renewal_thread(redis):
    holder = lease(redis, ttl=0.5)
    assert holder.acquire()
    first = holder.keep(on_lost=lambda: None)
    second = holder.keep(on_lost=lambda: None)
    first.join(1)
    assert not first.is_alive() and second.is_alive()
    holder.release()
    second.join(1)
    assert not second.is_alive()


def test_keep_reports_a_lease_taken_by_another(redis):
    holder = lease(redis, ttl=0.5)
    lost = threading.Event()
    assert holder.acquire()
    holder.keep(on_lost=lost.set)
    redis.set(KEY, "listener:host-b:2:intruder", px=5000)  # e.g. it lapsed during a long pause and was taken
    wait_for(lost.is_set, timeout=2, what="the loss to be reported")
    assert not holder.held()
    assert redis.get(KEY) == b"listener:host-b:2:intruder", "the loser does not touch its successor's key"


def test_a_holder_whose_redis_stops_answering_stops_holding_before_the_key_lapses(redis, redis_url):
    client = redis_lib.Redis.from_url(redis_url, socket_timeout=0.2)
    holder = Lease(client, KEY, 0.6, owner="listener:host-a:1")
    lost = threading.Event()
    assert holder.acquire()
    acquired = time.monotonic()
    holder.keep(on_lost=lost.set)
    redis.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # every client's commands wait: an unreachable Redis
    try:
        wait_for(lambda: not holder.held(), timeout=2, interval=0.01, what="the holder to stop holding")
        assert time.monotonic() - acquired < 0.6, "held() ends within the TTL, before a standby could take over"
        wait_for(lost.is_set, timeout=2, what="the renewal thread to report the loss")
    finally:
        redis.execute_command("CLIENT", "UNPAUSE")
        client.close()
