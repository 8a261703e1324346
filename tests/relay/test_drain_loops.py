"""A dispatch job's loops at its deadline: the job hands over at once, and a loop still waiting on a
slow call finishes its item in the background, once, and hands the conversation back in order.
Real Redis, the ECE simulator on loopback answering after a delay."""

from __future__ import annotations

import dataclasses
import time

import pytest

from connector.backends.in_flight import IN_FLIGHT
from connector.channels.base import thread_id_for
from connector.relay.drain import DrainLoops, drain_thread
from connector.store import keys, threads
from tests.conftest import ECE_CLIENT
from tests.helpers import WHATSAPP_ASSET, route_whatsapp_to_ece, wait_for, whatsapp_headers, whatsapp_payload

DELAY_SECONDS = 0.6
CUSTOMER = "15551239001"
THREAD = thread_id_for("whatsapp", WHATSAPP_ASSET, CUSTOMER)


@pytest.fixture
def slow_ece(runtime, ece_simulator):
    simulator, url = ece_simulator
    route_whatsapp_to_ece(runtime, url, client=ECE_CLIENT, name="SlowECE")
    simulator.model.set_answer_delay(DELAY_SECONDS)
    return simulator


def say(client, message_id: str, text: str) -> None:
    body = whatsapp_payload([(CUSTOMER, message_id, text)])
    assert (
        client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body)).status_code
        == 200
    )


def texts_on_ece(simulator) -> list[str]:
    """The customer's texts ECE received (the connector's own notes to the agent left out)."""
    received = [r for c in list(simulator.model.conversations.values()) for r in list(c.received)]
    return [
        r.content or "" for r in received if r.kind == "message" and not (r.content or "").startswith("[connector]")
    ]


def test_the_job_hands_over_at_its_deadline_while_a_slow_call_finishes_in_the_background(
    client, runtime, redis, slow_ece
) -> None:
    say(client, "wamid.L1", "first")
    say(client, "wamid.L2", "second")
    loops = DrainLoops(runtime, slot=None, deadline=time.monotonic() + 0.2)

    began = time.monotonic()
    loops.run()
    took = time.monotonic() - began

    assert took < DELAY_SECONDS, f"the job waited {took:.2f} s for a call instead of handing over"
    assert DrainLoops.carried == 1, "the next job starts with the loop that was still busy"
    assert sum(IN_FLIGHT.held().values()) >= 1, "its call is still in flight after the job ended"
    # The busy loop finishes the item it is on, then hands the conversation back (not drained on).
    wait_for(lambda: sum(IN_FLIGHT.held().values()) == 0 and not redis.exists(keys.lease(THREAD)), timeout=10)
    assert redis.llen(keys.inbox(THREAD)) >= 1, "the second message waits for the next holder"

    drain_thread(THREAD, runtime)
    assert texts_on_ece(slow_ece) == ["first", "second"], "each once, in order"
    assert threads.load(redis, THREAD).remote_id


def test_loops_grow_with_the_conversations_waiting_not_past_them(client, runtime, redis, slow_ece, monkeypatch) -> None:
    """Three conversations wait and ECE is slow: the job grows to a loop each, and not towards its
    limit of 64 for work that is not there (such a loop only polls the ready list until its linger
    ends; growth that doubled while every loop was busy started 36 to 39 here). A conversation its
    loop holds can be put on the ready list once more by its own next item (its welcome): a loop may
    start for that, finds the lease taken and ends, so at most two per conversation."""
    one_to_64 = dataclasses.replace(runtime.settings, drain_threads=1, drain_threads_max=64)
    monkeypatch.setattr(runtime, "settings", one_to_64)
    monkeypatch.setattr(DrainLoops, "carried", 0)
    customers = ["15551239101", "15551239102", "15551239103"]
    for n, customer in enumerate(customers):
        body = whatsapp_payload([(customer, f"wamid.G{n}", f"hello {n}")])
        response = client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))
        assert response.status_code == 200
    loops = DrainLoops(runtime, slot=None, deadline=time.monotonic() + 20)

    loops.run()

    assert sorted(texts_on_ece(slow_ece)) == ["hello 0", "hello 1", "hello 2"]
    assert len(customers) <= loops.started <= 2 * len(customers), f"{loops.started} loops for 3 conversations"
