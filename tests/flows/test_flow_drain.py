"""A flow inside the drain, against the ECE simulator on loopback: the questions go to the outbox
once, nothing reaches ECE until the flow ends, and then the conversation starts there with every
message of the customer and the answers as custom attributes."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.channels.base import thread_id_for
from connector.relay.drain import _handle_inbound, drain_thread
from connector.settings import Settings
from connector.store import keys, threads
from connector.store.boxes import Box, Boxes
from connector.store.effects import Effects
from connector.store.tallies import Tally
from tests.flows.drain import route_whatsapp_to_ece, settings_with_flows, whatsapp_says
from tests.helpers import WHATSAPP_ASSET, whatsapp_headers, whatsapp_payload

FLOW = {
    "name": "intake",
    "steps": [
        {
            "name": "order",
            "type": "ask",
            "question": "ask_order_number",
            "retry": "ask_order_number_retry",
            "answer": "regex",
            "pattern": "[A-Z]{2}[0-9]{6}",
            "attribute": "order_number",
            "attempts": 2,
        },
        {
            "name": "topic",
            "type": "ask",
            "question": "ask_topic",
            "answer": "choices",
            "choices": ["Quote", "Order status"],
            "attribute": "topic",
        },
    ],
}


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    strict = {**FLOW, "name": "strict", "on_fail": "close", "closing": "flow_closing"}
    return settings_with_flows(redis_url, tmp_path, [FLOW, strict])


def route_through(runtime, base_url: str, flow: str) -> None:
    support = {"name": "Support", "id": "1001"}
    route_whatsapp_to_ece(runtime, base_url, rule="wa-flow", entry_points=[support], flow=flow)


CUSTOMER = "15551239999"
THREAD = thread_id_for("whatsapp", WHATSAPP_ASSET, CUSTOMER)


def say(client, wamid: str, text: str) -> None:
    whatsapp_says(client, CUSTOMER, THREAD, wamid, text)


def questions(redis) -> list[str]:
    """The flow's messages the outbox side handled (sent, or refused by the provider: the test's
    WhatsApp is outside its window), in order."""
    return [e["message"] for e in threads.timeline(redis, THREAD) if e.get("kind") == "system"]


def test_a_flow_asks_validates_and_then_starts_ece_with_the_answers(client, runtime, redis, ece_simulator):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "intake")

    say(client, "wamid.F1", "hello, where is my order?")
    assert questions(redis) == ["ask_order_number"]
    thread = threads.load(redis, THREAD)
    assert thread.state.value == "new" and thread.flow and not simulator.model.conversations, "nothing at ECE yet"

    say(client, "wamid.F2", "I do not know it")
    say(client, "wamid.F3", "AB123456")
    say(client, "wamid.F4", "2")  # the choice by its number
    assert questions(redis)[:3] == ["ask_order_number", "ask_order_number_retry", "ask_topic"]
    thread = threads.load(redis, THREAD)
    assert thread.flow is None and thread.attributes == {"order_number": "AB123456", "topic": "Order status"}
    (conversation,) = simulator.model.conversations.values()
    custom = {a["name"]: a["value"] for a in conversation.custom_attributes}
    assert custom["order_number"] == "AB123456" and custom["topic"] == "Order status"
    received = [str(r) for r in conversation.received]
    for text in ("hello, where is my order?", "I do not know it", "AB123456", "2"):
        assert any(text in r for r in received), f"{text!r} reached the agent"
    flows = [e["flow"] for e in threads.timeline(redis, THREAD) if "flow" in e]
    assert flows[0] == {"flow": "intake", "asked": "order"}
    assert flows[1] == {"flow": "intake", "invalid": "order", "retry": "order"}
    assert flows[-1] == {"flow": "intake", "answered": "topic", "outcome": "routed"}


def test_attempts_exhausted_with_close_ends_the_conversation(client, runtime, redis, ece_simulator):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "strict")
    for n, text in enumerate(("hi", "no", "still no")):
        say(client, f"wamid.C{n}", text)
    assert questions(redis) == ["ask_order_number", "ask_order_number_retry", "flow_closing"]
    assert threads.load(redis, THREAD).state.value == "closed"
    assert not simulator.model.conversations


def test_a_repeated_item_asks_nothing_twice_and_keeps_the_answer(client, runtime, redis, ece_simulator):
    """A worker dies after the question went to the outbox but before the commit: the item is
    handled again by the next holder, and the question is not asked a second time."""
    _simulator, base_url = ece_simulator
    route_through(runtime, base_url, "intake")
    say(client, "wamid.R1", "hello")
    body = whatsapp_payload([(CUSTOMER, "wamid.R2", "AB123456")])
    client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))
    held = Boxes(redis).acquire(THREAD, 30)
    assert held is not None and held.heads[Box.IN] is not None
    _handle_inbound(runtime, held.heads[Box.IN], Effects(redis, Box.IN, THREAD), Tally())  # then "killed"
    redis.delete(keys.lease(THREAD))
    drain_thread(THREAD)
    assert questions(redis) == ["ask_order_number", "ask_topic"], "each asked once"
    assert threads.load(redis, THREAD).attributes == {"order_number": "AB123456"}
