"""A worker killed (SIGKILL) INSIDE a call to ECE or to a provider: the far side received the
request and completes it, the worker never hears the answer, the next lease holder repeats the
item. What the customer and the agent then see, call by call (docs/architecture.md, "Idempotent
effects"):

- ECE start: the repeat finds the conversation by its client reference and adopts it: one
  conversation, the customer's message in it once. Without the lookup (an ECE that does not serve
  it) a second conversation is started, and the warning says so.
- Twilio SMS send: no idempotency field exists, so the customer gets the agent's message twice.
- In-app send: the app dedupes on the connector's `message_id`, so the customer sees it once.

Real web app, real worker processes, the ECE and provider simulators on loopback; the simulators'
test-only holds (connector/sandbox/holds.py) keep the request received but unanswered while the
worker is killed, then let it complete as the real service would.
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.sandbox.providers.hold import HeldSend, send_holds
from tests.e2e.stack import ASSETS, CUSTOMERS, Stack, settle
from tests.helpers import wait_for

# The dead worker's lease lapses in 2 s and a sweep finds the thread within 0.5 s more.
FAST_LEASE = {
    "CONNECTOR_LEASE_SECONDS": "2",
    "CONNECTOR_SWEEP_INTERVAL_SECONDS": "0.5",
    "CONNECTOR_WAKE_TTL_SECONDS": "2",
}
FIRST = "Hello, my order is late"
WELCOME = "Thank you for contacting us"
AGENT_SAYS = "Your parcel ships today."


@pytest.fixture
def crash_stack(stack_factory: Any) -> Stack:
    return stack_factory(worker_env=FAST_LEASE)


def texts(stack: Stack, channel: str, needle: str) -> list[dict[str, Any]]:
    return [s for s in stack.sent(channel) if needle in (s.get("text") or "")]


def customer_messages_in_ece(stack: Stack) -> list[tuple[str, str | None]]:
    with stack.ece.model.lock:
        return [(c.id, r.content) for c in stack.ece.model.conversations.values() for r in c.received]


def kill_inside(stack: Stack, hold: Any, what: str) -> None:
    """The far side holds the worker's request: kill the worker, then let the request complete."""
    assert hold.wait_held(20), f"{what} reached the simulator"
    stack.workers[0].kill()
    hold.release()


# -- ECE start ------------------------------------------------------------------------------------


def test_worker_killed_inside_the_ece_start_leaves_one_conversation_with_the_message_once(
    crash_stack: Stack,
) -> None:
    stack, sms, customer = crash_stack, ASSETS["sms"], CUSTOMERS["sms"]
    hold = stack.ece.model.holds.hold_next("start")
    stack.customer.send_text(sms, customer, FIRST)
    kill_inside(stack, hold, "the start")
    stack.wait_conversation(1)  # ECE completed the start the dead worker asked for

    stack.add_worker()
    wait_for(lambda: customer_messages_in_ece(stack), timeout=30, what="the message to reach ECE")
    stack.wait_text("sms", WELCOME, timeout=15)
    settle(1.5)  # a second start or a second copy, if any, would land now

    conversations = stack.conversations()
    assert len(conversations) == 1, (
        f"one ECE conversation for the customer, not {len(conversations)}: the repeat must adopt the "
        "conversation the interrupted start created"
    )
    assert [(r.kind, r.content) for r in conversations[0].received] == [("message", FIRST)], "the message once"
    assert (conversations[0].reference or "").startswith("cc-"), "the start carried its client reference"
    assert len(texts(stack, "sms", WELCOME)) == 1, "the customer is welcomed once"


def test_without_the_lookup_the_repeat_starts_a_second_conversation_and_says_so(crash_stack: Stack) -> None:
    """The remaining window where ECE does not serve the lookup (answers 405): what it costs."""
    stack, sms, customer = crash_stack, ASSETS["sms"], CUSTOMERS["sms"]
    stack.ece.model.lookup_served = False
    hold = stack.ece.model.holds.hold_next("start")
    stack.customer.send_text(sms, customer, FIRST)
    kill_inside(stack, hold, "the start")
    stack.wait_conversation(1)

    stack.add_worker()
    stack.wait_conversation(2, timeout=30)
    wait_for(lambda: customer_messages_in_ece(stack), timeout=15, what="the message to reach ECE")
    settle(1.0)

    first, second = sorted(stack.conversations(), key=lambda c: c.started_at)
    assert first.received == [], "the interrupted start's conversation stays empty: an agent may pick it up"
    assert [r.content for r in second.received] == [FIRST]
    assert len(stack.conversations()) == 2
    assert len(texts(stack, "sms", WELCOME)) == 1, "the customer still sees one welcome"


# -- provider sends -------------------------------------------------------------------------------


def agent_chat(stack: Stack, channel: str) -> str:
    """A customer on `channel` chatting with Alice; returns the ECE conversation id."""
    stack.customer.send_text(ASSETS[channel], CUSTOMERS[channel], FIRST)
    conversation = stack.wait_conversation()
    stack.wait_received(conversation, 1)
    stack.wait_text(channel, WELCOME)
    stack.ece.model.assign(conversation.id, "1001", "Alice")
    stack.wait_text(channel, "You are now chatting with Alice")
    return conversation.id


def agent_message_killed_inside_the_send(stack: Stack, channel: str) -> None:
    conversation_id = agent_chat(stack, channel)
    hold = send_holds(stack.providers.state).hold_next(
        channel, lambda send: isinstance(send, HeldSend) and AGENT_SAYS in (send.text or "")
    )
    stack.ece.model.say(conversation_id, AGENT_SAYS)
    kill_inside(stack, hold, f"the {channel} send")
    stack.wait_text(channel, AGENT_SAYS)  # the provider completed the send the dead worker made
    stack.add_worker()


def test_worker_killed_inside_an_sms_send_the_customer_gets_the_message_twice(crash_stack: Stack) -> None:
    """Twilio's Messages API has no idempotency field: the remaining window, documented."""
    stack = crash_stack
    agent_message_killed_inside_the_send(stack, "sms")
    stack.wait_sent("sms", lambda sent: len(texts(stack, "sms", AGENT_SAYS)) >= 2, "the repeat", timeout=30)
    settle(1.0)
    copies = texts(stack, "sms", AGENT_SAYS)
    assert len(copies) == 2, "twice, exactly: once by the killed worker, once by the repeat"
    assert copies[0]["provider_id"] != copies[1]["provider_id"], "two Twilio messages"


def test_worker_killed_inside_an_inapp_send_the_customer_sees_the_message_once(crash_stack: Stack) -> None:
    """The in-app app dedupes on the connector's message_id (Apple likewise on its `id`)."""
    stack = crash_stack
    agent_message_killed_inside_the_send(stack, "inapp")
    stack.wait_sent(
        "inapp",
        lambda sent: any(s["duplicate"] >= 1 for s in sent if AGENT_SAYS in (s.get("text") or "")),
        "the repeat to reach the app",
        timeout=30,
    )
    settle(1.0)
    (shown,) = texts(stack, "inapp", AGENT_SAYS)
    assert shown["duplicate"] == 1, "the repeat came, with the same message_id, and the app dropped it"
