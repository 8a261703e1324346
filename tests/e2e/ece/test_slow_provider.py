"""A slow provider must not throttle delivery to the customers: while WhatsApp answers every send
late, the drain holds many conversations' sends in flight at once (connector/relay/drain.py,
DrainLoops), and each customer still gets the agent's messages once each, in order. One real worker
process; the provider simulator answers each send after a delay (`ProviderSimulators.set_delay`), on
a sandbox server with enough threads to hold what the connector sends."""

from __future__ import annotations

from tests.e2e.stack import ASSETS, Stack
from tests.helpers import wait_for

WA = ASSETS["whatsapp"]
CUSTOMERS = 24
MESSAGES = 3
DELAY_SECONDS = 0.4
SLOW = {"CONNECTOR_DRAIN_THREADS": "2", "CONNECTOR_DRAIN_THREADS_MAX": "64"}
"""Two loops to start with, as a quiet worker runs; the slow sends must grow them."""
OVERLAPPING = 12
"""Sends the provider must have held at once: half the conversations (two loops would hold 2)."""


def customer(index: int) -> str:
    return f"1555777{index:04d}"


def open_conversations(stack: Stack) -> dict[int, str]:
    """Each customer's first message → customer index → their ECE conversation, once all are welcomed."""
    for index in range(CUSTOMERS):
        stack.customer.send_text(WA, customer(index), f"hello {index}")
    wait_for(lambda: len(stack.conversations()) >= CUSTOMERS, timeout=30, what="every conversation on ECE")
    stack.wait_sent(
        "whatsapp", lambda sent: len({s["customer"] for s in sent}) >= CUSTOMERS, "every customer welcomed", timeout=20
    )
    by_address = {
        {a["name"]: a["value"] for a in c.customer_attributes}["address"]: c.id for c in stack.conversations()
    }
    return {index: by_address[customer(index)] for index in range(CUSTOMERS)}


def agent_texts(stack: Stack) -> dict[int, list[str]]:
    """The agent's messages each customer received, in the order the provider recorded them."""
    found: dict[int, list[str]] = {}
    for send in stack.sent("whatsapp", "text"):
        text = send.get("text") or ""
        if text.startswith("c") and " a" in text:
            found.setdefault(int(text[1:].split(" a")[0]), []).append(text)
    return found


def test_sends_overlap_with_a_slow_provider_and_each_customer_gets_the_agents_messages_once_in_order(
    stack_factory,
) -> None:
    stack = stack_factory(worker_env=SLOW, sandbox_threads=64)
    conversations = open_conversations(stack)
    stack.providers.set_delay("whatsapp", DELAY_SECONDS)
    stack.providers.latency.reset_peak()

    ece = stack.ece.model
    for conversation in conversations.values():
        ece.assign(conversation, "1001", "Alice")
    for message in range(MESSAGES):
        for index, conversation in conversations.items():
            ece.say(conversation, f"c{index} a{message}")

    # Serially (2 loops), each conversation costs 4 sends at 0.4 s: 24 x 1.6 s / 2 = 19 s.
    wait_for(
        lambda: sum(len(texts) for texts in agent_texts(stack).values()) >= CUSTOMERS * MESSAGES,
        timeout=30,
        what="every agent message at the provider",
    )
    assert agent_texts(stack) == {i: [f"c{i} a{m}" for m in range(MESSAGES)] for i in range(CUSTOMERS)}
    peak = stack.providers.latency.peak_in_flight
    assert peak >= OVERLAPPING, f"the drain's sends grew with the provider's latency: at most {peak} were in flight"
