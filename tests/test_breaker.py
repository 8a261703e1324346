"""The circuit breaker of an outside service, on the real Redis: when it opens, how it probes, and
that closing it wakes every conversation it parked."""

from __future__ import annotations

import dataclasses
import time

import pytest

from connector.relay import drain
from connector.relay.breaker import FAILURE_THRESHOLD, FIRST_COOLDOWN_SECONDS, Breaker, Refused, park
from connector.runtime import Runtime
from connector.store import keys, threads
from tests.helpers import WHATSAPP_ASSET, route_whatsapp_to_an_unreachable_ece, whatsapp_headers, whatsapp_payload

SERVICE = "ece:Lab"


@pytest.fixture
def circuit(redis) -> Breaker:
    return Breaker(redis, SERVICE, longest_cooldown=10.0)


def fail(circuit: Breaker, times: int) -> None:
    for _ in range(times):
        assert circuit.admit() is None
        circuit.failed()


def cooldown_over(redis) -> None:
    redis.hset(keys.breaker(SERVICE), "open_until", time.time() - 0.01)


def test_it_opens_after_the_threshold_of_failures_in_a_row(circuit, redis):
    fail(circuit, FAILURE_THRESHOLD - 1)
    assert circuit.admit() is None, "still closed one failure short"
    circuit.failed()
    refused = circuit.admit()
    assert isinstance(refused, Refused)
    assert refused.until == pytest.approx(time.time() + FIRST_COOLDOWN_SECONDS, abs=0.5)


def test_a_success_between_failures_starts_the_count_again(circuit):
    fail(circuit, FAILURE_THRESHOLD - 1)
    circuit.succeeded()
    fail(circuit, FAILURE_THRESHOLD - 1)
    assert circuit.admit() is None


def test_late_failures_of_calls_started_before_it_opened_do_not_extend_it(circuit, redis):
    fail(circuit, FAILURE_THRESHOLD)
    until = circuit.admit().until
    circuit.failed()
    circuit.failed()
    assert circuit.admit().until == pytest.approx(until)


def test_after_the_cooldown_one_call_probes_and_a_failed_probe_doubles_the_wait(circuit, redis):
    fail(circuit, FAILURE_THRESHOLD)
    cooldown_over(redis)
    assert circuit.admit() is None, "this call probes"
    assert isinstance(circuit.admit(), Refused), "others wait for the probe"
    circuit.failed()
    assert circuit.admit().until == pytest.approx(time.time() + 2 * FIRST_COOLDOWN_SECONDS, abs=0.5)
    for _ in range(5):  # each failed probe doubles it, up to the longest cooldown
        cooldown_over(redis)
        assert circuit.admit() is None
        circuit.failed()
    assert circuit.admit().until == pytest.approx(time.time() + 10.0, abs=0.5)


def test_a_probe_that_never_reports_back_lets_another_call_probe_later(circuit, redis):
    fail(circuit, FAILURE_THRESHOLD)
    cooldown_over(redis)
    assert circuit.admit() is None  # this worker dies mid-call
    redis.pexpire(keys.breaker_probe(SERVICE), 1)
    time.sleep(0.01)
    assert circuit.admit() is None, "its probe lapsed: the next call probes"


def test_closing_wakes_every_parked_conversation_at_once(circuit, redis):
    fail(circuit, FAILURE_THRESHOLD)
    now = time.time()
    for thread_id in ("t1", "t2"):
        park(redis, SERVICE, thread_id, now)
        redis.hset(keys.retry_state(thread_id), mapping={"in": "{}", "in_until": now + 25})
    circuit.succeeded()
    assert circuit.admit() is None and not redis.exists(keys.breaker(SERVICE))
    assert not redis.exists(keys.parked(SERVICE))
    for thread_id in ("t1", "t2"):
        assert redis.zscore(keys.deferred(), f"{thread_id}:in") == pytest.approx(now, abs=1), "due now"
        assert redis.hget(keys.retry_state(thread_id), "in_until") is None, "its own wait is lifted"
        assert redis.hget(keys.retry_state(thread_id), "in") == b"{}", "its attempts are kept"


def test_a_success_with_nothing_counted_touches_nothing(circuit, redis, caplog):
    circuit.succeeded()
    assert not redis.exists(keys.breaker(SERVICE))
    assert "breaker closed" not in caplog.text


# -- in the drain ---------------------------------------------------------------------------------


def test_an_open_breaker_parks_conversations_without_calling_ece(runtime, settings, client, redis):
    """Nothing listens at this ECE's address. Five conversations fail and open the breaker; the
    sixth is parked without a connection attempt, and its timeline says why."""
    route_whatsapp_to_an_unreachable_ece(runtime)
    worker = Runtime(dataclasses.replace(settings, retry_base_seconds=60.0, retry_max_seconds=60.0))
    customers = [f"1555123{index:04d}" for index in range(FAILURE_THRESHOLD + 1)]
    for index, customer in enumerate(customers):
        body = whatsapp_payload([(customer, f"wamid.B{index}", "hello")])
        answer = client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))
        assert answer.status_code == 200
    ready = [raw.decode() for raw in redis.lrange(keys.ready(), 0, -1)]
    redis.delete(keys.ready(), *(keys.wake(t) for t in ready))

    for thread_id in ready[:FAILURE_THRESHOLD]:
        drain.drain_thread(thread_id, worker)
    assert int(redis.hget(keys.breaker("ece:DownECE"), "failures")) == FAILURE_THRESHOLD
    last = ready[FAILURE_THRESHOLD]
    drain.drain_thread(last, worker)

    failures = int(redis.hget(keys.breaker("ece:DownECE"), "failures"))
    assert failures == FAILURE_THRESHOLD, "the sixth never reached the network (a refused call counts a failure)"
    parked = {m.decode() for m in redis.zrange(keys.parked("ece:DownECE"), 0, -1)}
    assert parked == set(ready), "every conversation that met the outage waits for ECE, the sixth too"
    tripped = ready[FAILURE_THRESHOLD - 1]
    probe_at = float(redis.hget(keys.retry_state(tripped), "in_until"))
    assert probe_at == pytest.approx(time.time() + FIRST_COOLDOWN_SECONDS, abs=1.0), (
        "the conversation that opened the breaker probes when the cooldown ends, not after its 60 s backoff"
    )
    assert redis.llen(keys.inbox(last)) == 1, "its message waits, in place"
    note = [e for e in threads.timeline(redis, last) if e.get("kind") == "retry"][-1]["error"]
    assert "breaker open" in note and "ece:DownECE" in note
    exposition = client.get("/metrics").get_data(as_text=True)
    assert 'connector_breaker_open{integration="DownECE"} 1' in exposition
    assert f'connector_parked_conversations{{integration="DownECE"}} {len(ready)}' in exposition
    assert 'connector_breaker_open{integration="TestRouter"} 0' in exposition
