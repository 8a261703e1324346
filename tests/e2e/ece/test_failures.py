"""What goes wrong between the connector and ECE or a provider, end to end: no agents, a disabled
entry point, a stale lastModified, an expired token, ECE down, duplicate and out-of-order
callbacks, a closed messaging window, provider errors, and templates an operator got wrong."""

from __future__ import annotations

import json
import time

import pytest

from connector.channels.base import thread_id_for
from connector.conversations import State
from connector.store import dead_letters, keys, threads
from tests.e2e.stack import ASSETS, CUSTOMERS, INTEGRATION, Stack, settle
from tests.helpers import wait_for

WA, WA_CUSTOMER = ASSETS["whatsapp"], CUSTOMERS["whatsapp"]


def thread_of(stack: Stack, channel: str = "whatsapp") -> threads.Thread:
    thread_id = thread_id_for(channel, ASSETS[channel], CUSTOMERS[channel])
    return threads.load(stack.runtime.redis, thread_id)


def start_chat(stack: Stack, text: str = "Hi there") -> str:
    stack.customer.send_text(WA, WA_CUSTOMER, text)
    conversation = stack.wait_conversation()
    stack.wait_received(conversation, 1)
    return conversation.id


def test_no_agents_sends_the_message_then_discards_until_the_interval_ends(stack: Stack) -> None:
    stack.ece.model.set_entry_point("1001", agents_available=False)
    stack.customer.send_text(WA, WA_CUSTOMER, "Anyone there?")
    stack.wait_text("whatsapp", "no agents available")
    stack.customer.send_text(WA, WA_CUSTOMER, "Hello??")
    wait_for(lambda: thread_of(stack).last_message_id is not None and len(stack.sent("whatsapp")) >= 1)
    settle(1.0)
    assert stack.conversations() == [], "no chat is started while no agent can take it"
    assert sum("no agents" in (s.get("text") or "") for s in stack.sent("whatsapp")) == 1, "said once"
    notes = [e.get("note") or "" for e in threads.timeline(stack.runtime.redis, thread_of(stack).id)]
    assert any(n.startswith("discarded") for n in notes)

    # After the interval (4 s) the scheduled timer closes the chat; the next message tries again.
    wait_for(lambda: thread_of(stack).state is State.CLOSED, timeout=15, what="the unavailable interval to end")
    stack.ece.model.set_entry_point("1001", agents_available=True)
    stack.customer.send_text(WA, WA_CUSTOMER, "Back again")
    conversation = stack.wait_conversation()
    assert [r.content for r in stack.wait_received(conversation, 1)] == ["Back again"]


def test_no_agents_with_the_close_policy_closes_the_chat_after_the_interval(stack: Stack) -> None:
    sms, customer = ASSETS["sms"], CUSTOMERS["sms"]
    stack.ece.model.set_entry_point("1002", capacity=0)  # queue full
    stack.customer.send_text(sms, customer, "SALES I want a quote")
    stack.wait_text("sms", "no agents available")
    wait_for(lambda: thread_of(stack, "sms").state is State.UNAVAILABLE)
    wait_for(lambda: thread_of(stack, "sms").state is State.CLOSED, timeout=15, what="the chat to close")
    assert stack.conversations() == []


def test_with_the_close_policy_a_message_during_the_interval_starts_the_chat_once_agents_return(
    stack: Stack,
) -> None:
    sms, customer = ASSETS["sms"], CUSTOMERS["sms"]
    stack.ece.model.set_entry_point("1002", agents_available=False)
    stack.customer.send_text(sms, customer, "SALES I want a quote")
    stack.wait_text("sms", "no agents available")
    stack.ece.model.set_entry_point("1002", agents_available=True)
    stack.customer.send_text(sms, customer, "Are you back?")
    conversation = stack.wait_conversation()
    assert conversation.entry_point_id == "1002"
    assert [r.content for r in stack.wait_received(conversation, 1)] == ["Are you back?"]


def test_a_disabled_entry_point_answers_with_its_message(stack: Stack) -> None:
    stack.ece.model.set_entry_point("1001", active=False)
    stack.customer.send_text(WA, WA_CUSTOMER, "Hello")
    stack.wait_text("whatsapp", "not available")
    settle()
    assert stack.conversations() == []
    assert thread_of(stack).state is State.CLOSED


def test_a_stale_last_modified_is_refetched_and_the_start_retried(stack: Stack) -> None:
    first = start_chat(stack)
    cached = json.loads(stack.runtime.redis.get(keys.ece_entry_point_config("E2E", "1001")))
    stack.ece.model.bump_last_modified("1001")
    stack.ece.model.assign(first, "1001", "Alice")
    stack.ece.model.complete(first)
    stack.wait_text("whatsapp", "closed")
    stack.customer.send_text(WA, WA_CUSTOMER, "New question")
    second = stack.wait_conversation(2)
    assert [r.content for r in stack.wait_received(second, 1)] == ["New question"]
    fresh = json.loads(stack.runtime.redis.get(keys.ece_entry_point_config("E2E", "1001")))
    assert fresh != cached, "the configuration was fetched again after ECE's 409"


def test_an_expired_token_is_renewed_and_the_message_delivered(stack: Stack) -> None:
    conversation_id = start_chat(stack)
    stack.ece.model.token_expire_all()
    stack.customer.send_text(WA, WA_CUSTOMER, "Still there?")
    received = stack.wait_received(stack.ece.model.conversation(conversation_id), 2)
    assert [r.content for r in received] == ["Hi there", "Still there?"]


@pytest.mark.long
def test_ece_down_for_30_seconds_then_every_message_arrives_in_order_once(stack: Stack) -> None:
    conversation_id = start_chat(stack, "m0")
    stack.ece.model.set_down("503")
    sent = ["m0"]
    started = time.monotonic()
    for index in range(1, 4):  # 503s for the first half
        stack.customer.send_text(WA, WA_CUSTOMER, f"m{index}")
        sent.append(f"m{index}")
        time.sleep(5)
    stack.ece_server.stop()  # then refused connections
    stack.ece.model.set_down(None)
    for index in range(4, 7):
        stack.customer.send_text(WA, WA_CUSTOMER, f"m{index}")
        sent.append(f"m{index}")
        time.sleep(5)
    time.sleep(max(0.0, 30 - (time.monotonic() - started)))
    assert len(stack.ece.model.conversation(conversation_id).received) == 1, "nothing got through while down"
    stack.ece_server.start()
    received = stack.wait_received(stack.ece.model.conversation(conversation_id), len(sent), timeout=30)
    assert [r.content for r in received] == sent
    settle(1.0)
    assert len(stack.ece.model.conversation(conversation_id).received) == len(sent), "none twice"
    retries = [e for e in threads.timeline(stack.runtime.redis, thread_of(stack).id) if e.get("kind") == "retry"]
    assert retries, "the outage shows on the conversation's timeline"


def test_duplicate_and_out_of_order_callbacks_reach_the_customer_once_in_order(stack: Stack) -> None:
    conversation_id = start_chat(stack)
    stack.ece.model.assign(conversation_id, "1001", "Alice")
    stack.wait_text("whatsapp", "Alice")
    emitter = stack.ece.emitter
    emitter.pause()
    for word in ("first", "second", "third"):
        stack.ece.model.say(conversation_id, f"agent {word}")
    emitter.duplicate_next(3)
    emitter.reverse_next_batch()
    emitter.resume()
    stack.wait_text("whatsapp", "agent first")
    stack.wait_text("whatsapp", "agent third")
    settle(1.0)
    texts = [s["text"] for s in stack.sent("whatsapp") if (s.get("text") or "").startswith("agent ")]
    assert texts == ["agent first", "agent second", "agent third"]
    assert any(len(d.events) > 1 for d in emitter.delivered), "the events did come in one reversed batch"


def test_outside_the_window_nothing_is_sent_and_the_agent_is_told(stack: Stack) -> None:
    conversation_id = start_chat(stack)
    stack.ece.model.assign(conversation_id, "1001", "Alice")
    stack.wait_text("whatsapp", "Alice")
    # The customer last wrote 25 hours ago (as the thread and WhatsApp both remember it).
    day_ago = time.time() - 25 * 3600
    stack.runtime.redis.hset(keys.thread(thread_of(stack).id), "last_inbound_at", repr(day_ago))
    stack.providers.store.set_last_inbound("whatsapp", WA, WA_CUSTOMER, day_ago)
    stack.ece.model.say(conversation_id, "Are you still there?")
    received = stack.wait_received(stack.ece.model.conversation(conversation_id), 2)
    assert "window is closed" in received[-1].content
    assert not [s for s in stack.sent("whatsapp") if "still there" in (s.get("text") or "")]
    letters = dead_letters.listing(stack.runtime.redis)
    assert letters and "window" in letters[0].reason


def test_provider_errors_are_retried_and_permanent_ones_dead_lettered(stack: Stack) -> None:
    conversation_id = start_chat(stack)
    stack.wait_text("whatsapp", "Thank you for contacting us")
    stack.providers.fail_next("whatsapp", 2, 503)
    stack.ece.model.assign(conversation_id, "1001", "Alice")
    stack.wait_text("whatsapp", "Alice")
    stack.providers.fail_next("whatsapp", 1, 429, error_code=130429, retry_after=1)
    stack.ece.model.say(conversation_id, "after a rate limit")
    stack.wait_text("whatsapp", "after a rate limit")
    stack.providers.fail_next("whatsapp", 1, 400, error_code=131026)
    stack.ece.model.say(conversation_id, "undeliverable")
    stack.ece.model.say(conversation_id, "and then this one")
    stack.wait_text("whatsapp", "and then this one")
    assert sum("after a rate limit" in (s.get("text") or "") for s in stack.sent("whatsapp")) == 1
    letters = dead_letters.listing(stack.runtime.redis)
    assert len(letters) == 1 and "131026" in letters[0].reason


def test_typing_is_throttled_to_one_start_per_ten_seconds(stack: Stack) -> None:
    conversation_id = start_chat(stack)
    stack.ece.model.assign(conversation_id, "1001", "Alice")
    for _ in range(3):
        stack.ece.model.typing(conversation_id, True)
    stack.ece.model.say(conversation_id, "done typing")
    stack.wait_text("whatsapp", "done typing")
    assert len(stack.sent("whatsapp", "typing_on")) == 1


def test_queue_status_is_sent_when_the_customer_has_waited_long_enough(stack_factory) -> None:
    stack = stack_factory(support={"queue_status_after_seconds": 1})
    stack.ece.model.set_entry_point("1001", queue_depth=4, wait_seconds=180)
    start_chat(stack)
    message = stack.wait_text("whatsapp", "in the queue", timeout=15)
    # ECE's depth (4) is not this customer's place: they are the connector's only waiting one.
    assert "about number 1 in the queue" in message["text"], message["text"]
    assert "3 min" in message["text"] or "3 minutes" in message["text"]


def test_each_waiting_customer_is_told_their_own_place_and_told_again_only_when_it_improves(stack_factory) -> None:
    stack = stack_factory(support={"queue_status_after_seconds": 1, "queue_status_interval_seconds": 5})
    stack.ece.model.set_entry_point("1001", queue_depth=9, wait_seconds=120)
    customers = ["15550109001", "15550109002", "15550109003"]
    for index, customer in enumerate(customers, start=1):
        stack.customer.send_text(WA, customer, f"hello from {customer}")
        stack.wait_conversation(index)  # queued one after the other: the order is theirs

    def places(customer: str) -> list[str]:
        told = [s.get("text") or "" for s in stack.sent("whatsapp") if s.get("customer") == customer]
        return [t.split("about number ")[1].split(" ")[0] for t in told if "about number " in t]

    wait_for(lambda: all(places(c) for c in customers), timeout=15, what="a queue status for each customer")
    assert [places(c) for c in customers] == [["1"], ["2"], ["3"]]

    first = sorted(stack.conversations(), key=lambda c: c.started_at)[0]
    stack.ece.model.assign(first.id, "1001", "Alice")
    wait_for(lambda: places(customers[1]) == ["2", "1"], timeout=15, what="the second customer told they moved up")
    wait_for(lambda: places(customers[2]) == ["3", "2"], timeout=15, what="the third customer told they moved up")
    settle(6.0)  # one more check: nobody moved, so nobody is told anything
    assert [places(c) for c in customers] == [["1"], ["2", "1"], ["3", "2"]]


def test_broken_templates_fail_safely_and_an_empty_one_turns_the_message_off(stack_factory) -> None:
    stack = stack_factory(
        support={"messages": {"welcome": "", "agent_assigned": "{{ ''.__class__.__mro__ }} you got {{ agent.name }}"}}
    )
    conversation_id = start_chat(stack)
    stack.ece.model.assign(conversation_id, "1001", "Alice")
    assigned = stack.wait_text("whatsapp", "Alice")
    assert "class" not in assigned["text"] and "object" not in assigned["text"]
    assert assigned["text"] == "You are now chatting with Alice."
    assert not [s for s in stack.sent("whatsapp") if "Thank you for contacting us" in (s.get("text") or "")]


def test_after_an_outage_every_waiting_conversation_resumes_with_the_first_success(stack_factory) -> None:
    """Retries far apart (20 s base, as after a long outage): ECE refuses connections while six
    customers write, which opens the breaker; once ECE is back, the breaker's probe succeeds and
    all six chats start together, long before any conversation's own retry would come."""
    stack = stack_factory(worker_env={"CONNECTOR_RETRY_BASE_SECONDS": "20", "CONNECTOR_RETRY_MAX_SECONDS": "60"})
    stack.ece_server.stop()
    customers = [f"1555010{index:04d}" for index in range(6)]
    for customer in customers:
        stack.customer.send_text(WA, customer, f"hello from {customer}")
    parked = keys.parked("ece:" + INTEGRATION)
    wait_for(lambda: stack.runtime.redis.zcard(parked) == len(customers), timeout=15, what="six conversations waiting")
    assert stack.runtime.redis.hget(keys.breaker("ece:" + INTEGRATION), "open_until"), "the breaker is open"
    assert not stack.conversations(), "nothing got through while down"

    stack.ece_server.start()
    back = time.monotonic()
    wait_for(lambda: len(stack.conversations()) == len(customers), timeout=15, what="six chats on ECE")
    assert time.monotonic() - back < 8, "resumed with the probe, not with each conversation's own 10-20 s retry"
    for conversation in stack.conversations():
        stack.wait_received(conversation, 1)
    assert not stack.runtime.redis.exists(parked), "none is left waiting"
