"""A conversation flow on real processes: a worker killed with kill -9 during the flow neither asks a
question twice nor loses an answer, and the answers reach ECE as custom attributes."""

from __future__ import annotations

import pytest

from tests.e2e.stack import ASSETS, Stack
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

CUSTOMER = "+15557654321"
FLOW = {
    "name": "intake",
    "steps": [
        {
            "name": "order",
            "type": "ask",
            "question": "ask_order_number",
            "retry": "ask_order_number_retry",
            "answer": "regex",
            "pattern": "[A-Za-z]{2}[0-9]{6}",
            "attribute": "order_number",
        },
        {
            "name": "topic",
            "type": "ask",
            "question": "ask_topic",
            "answer": "choices",
            "choices": ["Quote", "Order status", "Other"],
            "attribute": "topic",
        },
    ],
}


def test_kill_9_during_a_flow_repeats_no_question_and_loses_no_answer(stack_factory) -> None:
    stack: Stack = stack_factory(flows=[FLOW], sales_flow="intake", worker_env={"CONNECTOR_LEASE_SECONDS": "2"})
    sms = ASSETS["sms"]
    stack.customer.send_text(sms, CUSTOMER, "SALES I want a quote")
    stack.wait_text("sms", "what is your order number")
    assert stack.conversations() == [], "a customer in a flow costs ECE nothing"

    stack.customer.send_text(sms, CUSTOMER, "AB123456")
    stack.workers[0].kill()  # kill -9, whatever it was doing with the answer
    stack.add_worker()
    topic = stack.wait_text("sms", "What is your question about?", timeout=30)
    assert "1. Quote\n2. Order status\n3. Other" in topic["text"], "SMS has no buttons: numbered choices"

    stack.customer.send_text(sms, CUSTOMER, "2")
    conversation = stack.wait_conversation(timeout=30)
    custom = {a["name"]: a["value"] for a in conversation.custom_attributes}
    assert (custom["order_number"], custom["topic"]) == ("AB123456", "Order status")
    received = [r.content for r in stack.wait_received(conversation, 3)]
    assert received == ["SALES I want a quote", "AB123456", "2"], "every message, once, in order"
    texts = [s.get("text") or "" for s in stack.sent("sms")]
    assert sum("order number" in t for t in texts) == 1, "the question was asked once"
    assert sum("What is your question about?" in t for t in texts) == 1
    wait_for(lambda: any("Thank you" in (s.get("text") or "") for s in stack.sent("sms")), what="the welcome")
