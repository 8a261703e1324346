"""A slow ECE must not throttle delivery: the drain's calls in flight grow with ECE's latency
(connector/relay/drain.py, DrainLoops) while each conversation's messages reach ECE once, in order;
an integration's `max_in_flight` bounds them. One real worker process, the ECE simulator answering
every call after a delay, with enough server threads to hold what the connector sends."""

from __future__ import annotations

import time

from connector.backends.in_flight import published
from tests.e2e.stack import ASSETS, Stack
from tests.helpers import wait_for

WA = ASSETS["whatsapp"]
CUSTOMERS = 24
MESSAGES = 3
DELAY_SECONDS = 0.4
SLOW = {"CONNECTOR_DRAIN_THREADS": "2", "CONNECTOR_DRAIN_THREADS_MAX": "64"}
"""Two loops to start with, as a quiet worker runs; the slow calls must grow them."""


def customer(index: int) -> str:
    return f"1555888{index:04d}"


def send_all(stack: Stack) -> None:
    """Every customer's first message, then every second one, and so on: a burst of new chats."""
    for message in range(MESSAGES):
        for index in range(CUSTOMERS):
            stack.customer.send_text(WA, customer(index), f"c{index} m{message}")


def delivered(stack: Stack) -> dict[str, list[str]]:
    """Each conversation's texts as ECE received them, in order, keyed by its customer's tag."""
    found: dict[str, list[str]] = {}
    for conversation in stack.conversations():
        texts = [r.content or "" for r in list(conversation.received) if r.kind == "message"]
        if texts:
            found.setdefault(texts[0].split()[0], []).extend(texts)
    return found


def all_delivered(stack: Stack) -> bool:
    return sum(len(texts) for texts in delivered(stack).values()) >= CUSTOMERS * MESSAGES


def assert_each_conversation_in_order_once(stack: Stack) -> None:
    got = delivered(stack)
    assert len(stack.conversations()) == CUSTOMERS, "one ECE conversation per customer"
    assert got == {f"c{i}": [f"c{i} m{m}" for m in range(MESSAGES)] for i in range(CUSTOMERS)}


def test_calls_in_flight_grow_with_a_slow_ece_and_each_conversation_keeps_its_order(stack_factory) -> None:
    stack = stack_factory(worker_env=SLOW, ece_threads=96)
    stack.ece.model.set_answer_delay(DELAY_SECONDS)
    began = time.monotonic()
    send_all(stack)
    seen: list[int] = []  # what the worker published of its calls in flight, as the operator sees it

    def done() -> bool:
        seen.append(sum(published(stack.runtime.redis, time.time()).values()))
        return all_delivered(stack)

    # Serially (2 loops), each conversation costs a start and 2 sends at 0.4 s: 24 x 1.2 s / 2 = 14 s.
    wait_for(done, timeout=30, what="every message on ECE")
    took = time.monotonic() - began
    assert_each_conversation_in_order_once(stack)
    peak = stack.ece.model.peak_in_flight
    assert peak >= 12, f"the loops grew with ECE's latency: at most {peak} calls were in flight at once"
    assert max(seen) >= 6, f"the worker's published calls in flight (/metrics, home page) peaked at {max(seen)}"
    assert took < 12, f"delivery followed the calls in flight, not two loops: it took {took:.1f} s"


def test_max_in_flight_bounds_the_calls_to_an_integration_and_loses_nothing(stack_factory) -> None:
    stack = stack_factory(worker_env=SLOW, ece_threads=96, integration={"max_in_flight": 4})
    stack.ece.model.set_answer_delay(DELAY_SECONDS / 4)
    send_all(stack)
    wait_for(lambda: all_delivered(stack), timeout=40, what="every message on ECE")
    assert_each_conversation_in_order_once(stack)
    assert stack.ece.model.peak_in_flight <= 4, f"{stack.ece.model.peak_in_flight} calls at once (one worker)"
