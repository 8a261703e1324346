"""A conversation flow on real processes: a worker killed with kill -9 during the flow neither asks a
question twice nor loses an answer, and the answers reach ECE as custom attributes. With `verify` and
`bot` steps (the sandbox identity service and FAQ bot on loopback), the worker is killed while a call
is open (the service's delay holds it), and the services' records say which calls were made again."""

from __future__ import annotations

from typing import Any

import pytest

from connector.sandbox.services import BOT_SECRET, IDENTITY_SECRET, Faults
from tests.e2e.stack import ASSETS, SANDBOX, Stack
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

CUSTOMER = "+15557654321"
# A worker killed between taking a conversation off the ready list and taking its lease leaves the
# conversation's wake-up flag, which the sweeper trusts for CONNECTOR_WAKE_TTL_SECONDS (30) before it
# wakes the conversation again: short here, so recovery fits the tests' waits.
FAST_LEASE = {
    "CONNECTOR_LEASE_SECONDS": "2",
    "CONNECTOR_SWEEP_INTERVAL_SECONDS": "0.5",
    "CONNECTOR_WAKE_TTL_SECONDS": "2",
}
ORDER = {
    "name": "order",
    "type": "ask",
    "question": "ask_order_number",
    "retry": "ask_order_number_retry",
    "answer": "regex",
    "pattern": "[A-Za-z]{2}[0-9]{6}",
    "attribute": "order_number",
}
FLOW = {
    "name": "intake",
    "steps": [
        ORDER,
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
    stack: Stack = stack_factory(flows=[FLOW], sales_flow="intake", worker_env=FAST_LEASE)
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


# -- verify and bot: the calls out --------------------------------------------------------------
#
# The guarantee, per inbox item (one customer message) and step: a call whose answer the drain has
# recorded (an effect of the item, written before anything else happens) is not made again when a
# kill makes the next worker repeat the item; a call still open when the worker dies was never
# answered to the connector, so the next worker makes it again, with the same body. So a service
# gets one call per customer message and step, and one more for each kill inside an open call;
# what it answered is acted on once (each bot reply sent once, the verified attributes set once).

CHECK = {
    "name": "check",
    "type": "verify",
    "url": f"{SANDBOX}/identity/verify",
    "secret": IDENTITY_SECRET,
    "timeout": 10,
    "failed": "verify_failed",
}
FAQ = {
    "name": "faq",
    "type": "bot",
    "url": f"{SANDBOX}/bot/turn",
    "secret": BOT_SECRET,
    "timeout": 10,
    "tries": 2,
    "keyword": "agent",
}
SELF_SERVICE = {"name": "self-service", "on_fail": "route", "steps": [ORDER, CHECK, FAQ]}
SHIPPED = "Order AB100001 for Ana Lima has shipped"
OPENING = "We are open Monday to Friday"


def said(calls: list[Any]) -> list[str]:
    """What each bot call carried: the customer's text (or button payload)."""
    return [str((c.get("message") or {}).get("payload") or (c.get("message") or {}).get("text")) for c in calls]


def kill_inside(stack: Stack, faults: Faults, calls_before: int, what: str) -> None:
    """The service holds the worker's call (its delay): kill the worker while the call is open, make
    the service answer at once again, start a new worker."""
    wait_for(lambda: faults.calls > calls_before, timeout=15, what=f"the {what} call to be open")
    stack.workers[0].kill()
    faults.set(delay_seconds=0)
    stack.workers.pop(0)
    stack.add_worker()


def sms_sent(stack: Stack, needle: str) -> int:
    return sum(needle in (s.get("text") or "") for s in stack.sent("sms"))


def test_kill_9_inside_the_bot_call_repeats_only_the_open_call(stack_factory) -> None:
    """The customer's order number is verified (answer recorded), then the bot's first turn is open
    when the worker dies: the identity service is not called again, the bot is called once more
    with the same message, and each of its replies reaches the customer once."""
    stack: Stack = stack_factory(flows=[SELF_SERVICE], sales_flow="self-service", worker_env=FAST_LEASE)
    identity, faq = stack.sandbox.identity.faults, stack.sandbox.bot.faults
    sms = ASSETS["sms"]
    stack.customer.send_text(sms, CUSTOMER, "SALES where is my parcel?")
    stack.wait_text("sms", "what is your order number")

    faq.set(delay_seconds=4)  # the bot's first turn stays open until the worker is dead
    stack.customer.send_text(sms, CUSTOMER, "AB100001")
    kill_inside(stack, faq, 0, "bot")
    stack.wait_text("sms", SHIPPED, timeout=20)

    stack.customer.send_text(sms, CUSTOMER, "When are you open?")
    stack.wait_text("sms", OPENING)
    stack.customer.send_text(sms, CUSTOMER, "Can I talk to a person?")  # the bot hands over
    conversation = stack.wait_conversation(timeout=15)
    received = [r.content or "" for r in stack.wait_received(conversation, 3)]

    assert [c["answers"]["order_number"] for c in identity.bodies()] == ["AB100001"], (
        "the verify call was answered and recorded before the kill: not made again"
    )
    assert said(faq.bodies()) == ["AB100001", "AB100001", "When are you open?", "Can I talk to a person?"], (
        "the open call is made again after the kill, with the same message; every other message once"
    )
    bot_keys = faq.keys()
    assert bot_keys[0] == bot_keys[1] and len(set(bot_keys)) == 3, "the repeat carries the first call's key"
    assert sms_sent(stack, "what is your order number") == 1, "the question was asked once"
    assert sms_sent(stack, SHIPPED) == 1, "the bot's reply to the repeated turn reached the customer once"
    assert sms_sent(stack, OPENING) == 1
    assert received[:2] == ["SALES where is my parcel?", "AB100001"], "the messages before the bot, in order"
    assert received[2].startswith("[connector] Chatbot conversation before this chat"), received[2]
    assert "When are you open?" in received[2] and OPENING in received[2], "the bot part reaches the agent"
    assert len(received) == 3, received
    custom = {a["name"]: a["value"] for a in conversation.custom_attributes}
    assert custom["order_number"] == "AB100001" and custom["customer_tier"] == "gold"
    assert custom["verified"] == "true" and custom["bot_handover"] == "bot"


def test_kill_9_inside_the_verify_call_verifies_once_and_asks_nothing_twice(stack_factory) -> None:
    """The identity service's call is open when the worker dies: the next worker calls it again with
    the same answers, the customer is verified once and hears each question once."""
    stack: Stack = stack_factory(flows=[SELF_SERVICE], sales_flow="self-service", worker_env=FAST_LEASE)
    identity, faq = stack.sandbox.identity.faults, stack.sandbox.bot.faults
    sms = ASSETS["sms"]
    stack.customer.send_text(sms, CUSTOMER, "SALES hello")
    stack.wait_text("sms", "what is your order number")
    stack.customer.send_text(sms, CUSTOMER, "no idea")  # invalid: the retry, recorded before the kill
    stack.wait_text("sms", "does not look like an order number")

    identity.set(delay_seconds=4)
    stack.customer.send_text(sms, CUSTOMER, "AB100001")
    kill_inside(stack, identity, 0, "verify")
    stack.wait_text("sms", SHIPPED, timeout=20)
    stack.customer.send_text(sms, CUSTOMER, "agent")  # the keyword: handed over without a call
    conversation = stack.wait_conversation(timeout=15)
    received = [r.content or "" for r in stack.wait_received(conversation, 4)]

    calls = identity.bodies()
    assert [c["answers"] for c in calls] == [{"order_number": "AB100001"}] * 2, (
        "the call open at the kill is made again, with the same answers"
    )
    assert calls[0]["conversation_id"] == calls[1]["conversation_id"]
    assert len(set(identity.keys())) == 1, "one verification by its key: a service keeping keys acts once"
    assert said(faq.bodies()) == ["AB100001"], "the bot's first turn once, after the repeated verify"
    assert sms_sent(stack, "what is your order number") == 1, "the question once"
    assert sms_sent(stack, "does not look like an order number") == 1, "the retry once"
    assert sms_sent(stack, SHIPPED) == 1
    assert received[:3] == ["SALES hello", "no idea", "AB100001"], "every message before the bot, once, in order"
    assert received[3].startswith("[connector] Chatbot conversation before this chat")
    custom = {a["name"]: a["value"] for a in conversation.custom_attributes}
    assert (custom["verified"], custom["customer_tier"], custom["bot_handover"]) == ("true", "gold", "keyword")
