"""What goes wrong in Hybrid Chat, end to end over HTTP with a real worker: an offer that rings out
(RONA), a rejected offer, a customer who leaves while queued, a disabled queue, no agent READY, a
customer who waits too long (also after a transfer to another queue), a customer who goes silent
after the accept, and the customer's exact place in the queue. Plus the agent's event stream over
Server-Sent Events resuming with Last-Event-ID."""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.hybrid.conftest import SSE_SECONDS
from tests.e2e.hybrid.helpers import (
    CUSTOMER_INACTIVE,
    DISABLED,
    NO_AGENTS,
    WELCOME,
    assigned,
    router,
    texts,
    thread_of,
)
from tests.e2e.stack import ASSETS, CUSTOMERS, HYBRID, settle
from tests.helpers import wait_for

APP, APP_CUSTOMER = ASSETS["inapp"], CUSTOMERS["inapp"]
WA, WA_CUSTOMER = ASSETS["whatsapp"], CUSTOMERS["whatsapp"]
OFFER_SECONDS = 5  # the queues' offer_timeout_seconds (tests/e2e/stack.py), the least allowed
SILENCE_SECONDS = 5  # the least inactivity_timeout_seconds allowed


def first_offer(*agents):
    """(the agent offered a new chat, the event) among `agents`, whoever the router chose."""
    found: list = []

    def look() -> bool:
        for agent in agents:
            if not agent.sse:
                agent.poll(0)
            offers = agent.of_type("chat_offered")
            if offers:
                found[:] = [agent, offers[0]]
                return True
        time.sleep(0.05)
        return False

    wait_for(look, timeout=15, what="an offer to one of the agents")
    return found[0], found[1]


def test_an_offer_that_rings_out_goes_to_the_next_agent_and_the_first_goes_not_ready_rona(hybrid_stack, agent_api):
    stack = hybrid_stack()
    uma, vic = agent_api(stack, "uma"), agent_api(stack, "vic")
    uma.ready()
    vic.ready()
    stack.customer.send_text(APP, APP_CUSTOMER, "Is anybody there?")
    first, offer = first_offer(uma, vic)
    second = vic if first is uma else uma
    chat_id = offer["chat_id"]

    # Nobody answers: after the queue's offer timeout the offer is withdrawn, the first agent is
    # NOT_READY with reason RONA, and the second agent is offered the chat.
    withdrawn = first.wait_event("offer_withdrawn", chat_id, timeout=OFFER_SECONDS + 10)
    assert withdrawn["reason"] == "timeout"
    assert withdrawn["at"] >= offer["chat"]["offer_expires_at"], "not before the offer timeout"
    assert offer["chat"]["offer_expires_at"] - offer["at"] == pytest.approx(OFFER_SECONDS, abs=0.5)
    first.wait_event("state_changed", chat_state="NOT_READY", reason="RONA")
    me = first.me()
    assert (me["chat_state"], me["reason"], me["chats"]) == ("NOT_READY", "RONA", [])
    again = second.wait_event("chat_offered", chat_id)
    assert again["chat"]["queue"] == "Support"

    late = first.call("POST", f"/agent/api/chats/{chat_id}/accept", expect=409).json()
    assert late["error"] == "offer_gone"
    second.accept(chat_id)
    name = second.me()["name"]
    stack.wait_text("inapp", assigned(name))
    assert texts(stack, "inapp") == [WELCOME, assigned(name)], "the ringing out is not the customer's business"


def test_a_rejected_offer_goes_to_the_next_agent_at_once(hybrid_stack, agent_api):
    stack = hybrid_stack()
    uma, vic = agent_api(stack, "uma"), agent_api(stack, "vic")
    uma.ready()
    vic.ready()
    stack.customer.send_text(WA, WA_CUSTOMER, "Hello")
    first, offer = first_offer(uma, vic)
    second = vic if first is uma else uma
    chat_id = offer["chat_id"]

    rejected_at = time.monotonic()
    assert first.reject(chat_id) == {"chat_id": chat_id, "status": "rejected"}
    second.wait_event("chat_offered", chat_id, timeout=OFFER_SECONDS)
    assert time.monotonic() - rejected_at < OFFER_SECONDS - 2, "at once, not after the offer timeout"
    assert first.wait_event("offer_withdrawn", chat_id)["reason"] == "rejected"
    assert first.me()["chat_state"] == "READY", "a rejection is no RONA: the agent stays READY"
    assert first.call("POST", f"/agent/api/chats/{chat_id}/accept", expect=409).json()["error"] == "offer_gone"
    second.accept(chat_id)
    stack.wait_text("whatsapp", assigned(second.me()["name"]))


def test_a_customer_who_leaves_while_queued_leaves_the_queue(hybrid_stack, agent_api):
    stack = hybrid_stack()
    uma = agent_api(stack, "uma")  # one chat at most
    uma.ready()
    stack.customer.send_text(WA, WA_CUSTOMER, "First customer")
    held = uma.wait_event("chat_offered")["chat_id"]
    uma.accept(held)

    # The in-app customer waits (Uma is READY but full), then closes the conversation.
    stack.customer.send_text(APP, APP_CUSTOMER, "Second customer")
    stack.wait_text("inapp", WELCOME)
    waiting = thread_of(stack, "inapp").remote_id
    assert waiting and router(stack).chat(waiting).state == "queued"
    assert router(stack).position(HYBRID, "Support", waiting) == 1
    stack.customer.send_close(APP, APP_CUSTOMER)
    wait_for(lambda: router(stack).chat(waiting).state == "closed", what="the chat to leave the queue")
    chat = router(stack).chat(waiting)
    assert chat.closed_by == "customer" and router(stack).depth(HYBRID, "Support") == 0

    # An agent who then goes READY is offered nothing, nor is Uma when her slot frees.
    vic = agent_api(stack, "vic")
    vic.ready()
    mark = uma.mark()
    uma.close(held, wrap_up="done")
    assert vic.quiet("chat_offered", 0, 1.5) == [] and uma.of_type("chat_offered", mark) == []
    assert texts(stack, "inapp") == [WELCOME], "nothing more is sent to a customer who left"


def test_a_disabled_queue_answers_entry_point_disabled(hybrid_stack, agent_api):
    stack = hybrid_stack(support={"enabled": False})
    zoe = agent_api(stack, "zoe")
    zoe.ready()
    stack.customer.send_text(WA, WA_CUSTOMER, "Hello")
    stack.wait_text("whatsapp", DISABLED)
    wait_for(lambda: thread_of(stack, "whatsapp").state.value == "closed", what="the conversation closed")
    assert zoe.quiet("chat_offered", 0, 1.0) == []
    assert texts(stack, "whatsapp") == [DISABLED]
    assert router(stack).depth(HYBRID, "Support") == 0


def test_no_agent_ready_with_the_skills_answers_no_agents_and_runs_the_unavailable_policy(hybrid_stack, agent_api):
    stack = hybrid_stack(support={"unavailable": {"action": "discard", "after_seconds": 3}})
    yan = agent_api(stack, "yan")  # READY, but for Billing only
    yan.ready()
    zoe = agent_api(stack, "zoe")  # logged in, NOT_READY
    stack.customer.send_text(WA, WA_CUSTOMER, "Anyone there?")
    stack.wait_text("whatsapp", NO_AGENTS)
    assert thread_of(stack, "whatsapp").state.value == "unavailable"
    started = time.monotonic()

    # The discard policy: while it runs, the customer's messages start nothing, even with Zoe READY.
    zoe.ready()
    stack.customer.send_text(WA, WA_CUSTOMER, "Hello??")
    wait_for(lambda: len(stack.customer.history(WA, WA_CUSTOMER)) == 2)
    assert zoe.quiet("chat_offered", 0, 1.0) == [] and yan.of_type("chat_offered") == []
    assert texts(stack, "whatsapp") == [NO_AGENTS], "told once"

    # After the interval the next message starts a chat, offered to Zoe.
    wait_for(lambda: thread_of(stack, "whatsapp").state.value == "closed", timeout=10, what="the interval to end")
    assert time.monotonic() - started >= 2
    stack.customer.send_text(WA, WA_CUSTOMER, "Back again")
    offer = zoe.wait_event("chat_offered")
    stack.wait_text("whatsapp", WELCOME)
    transcript = zoe.call("GET", f"/agent/api/chats/{offer['chat_id']}").json()["transcript"]
    assert [t.get("text") for t in transcript] == ["Back again"], "discarded messages are not passed on"


def test_a_customer_who_waits_past_max_wait_hears_no_agents(hybrid_stack, agent_api):
    stack = hybrid_stack(support={"max_wait_seconds": 3})
    uma = agent_api(stack, "uma")  # one chat at most
    uma.ready()
    stack.customer.send_text(APP, APP_CUSTOMER, "First customer")
    held = uma.wait_event("chat_offered")["chat_id"]
    uma.accept(held)
    stack.wait_text("inapp", assigned("Uma"))

    stack.customer.send_text(WA, WA_CUSTOMER, "Second customer")
    stack.wait_text("whatsapp", WELCOME)
    queued_at = time.monotonic()
    waiting = thread_of(stack, "whatsapp").remote_id
    stack.wait_text("whatsapp", NO_AGENTS, timeout=15)
    assert time.monotonic() - queued_at >= 2, "not before max_wait_seconds"
    chat = router(stack).chat(waiting)
    assert (chat.state, chat.closed_by) == ("closed", "system")
    assert thread_of(stack, "whatsapp").state.value == "unavailable", "then the unavailable policy"
    assert texts(stack, "whatsapp") == [WELCOME, NO_AGENTS]

    # The chat Uma holds is not touched by its own wait timer; freeing her slot offers nothing.
    mark = uma.mark()
    settle(0.5)
    assert router(stack).chat(held).state == "active"
    uma.close(held)
    assert uma.quiet("chat_offered", mark, 1.0) == []
    assert NO_AGENTS not in texts(stack, "inapp")


def test_queue_status_tells_each_customer_their_exact_place(hybrid_stack, agent_api):
    stack = hybrid_stack(support={"queue_status_after_seconds": 1, "queue_status_interval_seconds": 5})
    uma = agent_api(stack, "uma")  # one chat at most: the others wait
    uma.ready()
    stack.customer.send_text(APP, APP_CUSTOMER, "First customer")
    held = uma.wait_event("chat_offered")["chat_id"]
    uma.accept(held)

    stack.customer.send_text(WA, WA_CUSTOMER, "Second customer")
    stack.wait_text("whatsapp", WELCOME)
    sms, sms_customer = ASSETS["sms"], CUSTOMERS["sms"]
    stack.customer.send_text(sms, sms_customer, "Third customer")
    stack.wait_text("sms", WELCOME)
    status = re.compile(
        r"^Thank you for waiting\. You are number (\d) in the queue\. The estimated wait is about \d+ minutes?\.$"
    )

    def places(channel: str) -> list[int]:
        return [int(m[1]) for t in texts(stack, channel) if (m := status.match(t))]

    wait_for(lambda: places("whatsapp") == [1], timeout=10, what="the second customer told: number 1")
    wait_for(lambda: places("sms") == [2], timeout=10, what="the third customer told: number 2")
    assert [t for t in texts(stack, "whatsapp") if not status.match(t)] == [WELCOME]

    # The first chat ends: the second customer goes to Uma, and the third, now first, is told so
    # at the next check (their place improved); the second hears nothing more about the queue.
    uma.close(held)
    second = uma.wait_event("chat_offered", where=lambda e: e["chat_id"] != held)
    assert second["chat"]["channel"] == "whatsapp"
    uma.accept(second["chat_id"])  # (an offer left ringing would return it to the head of the queue)
    wait_for(lambda: places("sms") == [2, 1], timeout=10, what="the third customer told: number 1")
    assert places("whatsapp") == [1]


def test_the_event_stream_resumes_with_last_event_id_and_misses_nothing(hybrid_stack, agent_api):
    """Over SSE: a first `id:` line with no data, then each event with its cursor; the server ends a
    response after its lifetime and the client reconnects with Last-Event-ID (as an EventSource does),
    receiving what happened in between, once."""
    stack = hybrid_stack()
    zoe = agent_api(stack, "zoe", auth="cookie", sse=True)
    assert zoe.sse_first_ids and zoe.sse_connections == 1
    zoe.ready()
    stack.customer.send_text(APP, APP_CUSTOMER, "Hello over SSE")
    chat_id = zoe.wait_event("chat_offered")["chat_id"]
    zoe.accept(chat_id)
    wait_for(lambda: zoe.sse_connections >= 2, timeout=SSE_SECONDS + 5, what="the stream to end and resume")
    for index in range(3):
        stack.customer.send_text(APP, APP_CUSTOMER, f"message {index}")
    wait_for(lambda: len(zoe.of_type("customer_message")) == 3, what="three messages")
    wait_for(lambda: zoe.sse_connections >= 3, timeout=SSE_SECONDS + 5, what="another resume")
    stack.customer.send_text(APP, APP_CUSTOMER, "after the resume")
    zoe.wait_event("customer_message", chat_id, text="after the resume")
    said = [e["text"] for e in zoe.of_type("customer_message")]
    assert said == ["message 0", "message 1", "message 2", "after the resume"], "in order, each once"
    ids = [e["id"] for e in zoe.events]
    assert len(ids) == len(set(ids)) and not zoe.sse_errors


def test_a_chat_transferred_to_a_queue_waits_there_by_that_queues_max_wait(hybrid_stack, agent_api):
    """Zoe transfers the chat to Billing soon after the customer started; nobody is READY there yet.
    Billing's max wait (60 s) counts from the transfer: Support's (4 s, from the start) is over."""
    stack = hybrid_stack(support={"max_wait_seconds": 4})
    zoe, yan = agent_api(stack, "zoe"), agent_api(stack, "yan")
    zoe.ready()
    stack.customer.send_text(WA, WA_CUSTOMER, "Hello")
    started = time.monotonic()
    chat_id = zoe.wait_event("chat_offered")["chat_id"]
    zoe.accept(chat_id)
    zoe.transfer(chat_id, queue="Billing")
    stack.wait_text("whatsapp", "You have been transferred to the Billing queue.")
    assert time.monotonic() - started < 3
    time.sleep(max(0.0, 4 + 2 - (time.monotonic() - started)))
    assert NO_AGENTS not in texts(stack, "whatsapp"), "turned away by Support's timer, seconds into Billing"
    assert router(stack).chat(chat_id).state == "queued", "still waiting in Billing"
    yan.ready()
    yan.wait_event("chat_offered", chat_id)


def test_a_chat_transferred_to_a_queue_after_the_first_wait_is_over_still_has_a_max_wait(hybrid_stack, agent_api):
    """Zoe holds the chat past Support's max wait (3 s), then transfers it to Billing (max wait 3 s),
    where nobody is READY: after Billing's max wait the customer hears no_agents, not silence."""
    stack = hybrid_stack(support={"max_wait_seconds": 3}, billing={"max_wait_seconds": 3})
    zoe = agent_api(stack, "zoe")
    zoe.ready()
    stack.customer.send_text(WA, WA_CUSTOMER, "Hello")
    chat_id = zoe.wait_event("chat_offered")["chat_id"]
    zoe.accept(chat_id)
    stack.wait_text("whatsapp", assigned("Zoe"))
    time.sleep(3.5)  # Support's wait timer fires while Zoe holds the chat: nothing to do
    zoe.transfer(chat_id, queue="Billing")
    stack.wait_text("whatsapp", "You have been transferred to the Billing queue.")
    stack.wait_text("whatsapp", NO_AGENTS, timeout=7)
    assert router(stack).chat(chat_id).state == "closed"


def test_a_customer_who_says_nothing_after_the_accept_is_told_and_the_agents_slot_is_freed(hybrid_stack, agent_api):
    stack = hybrid_stack(support={"inactivity_timeout_seconds": SILENCE_SECONDS})
    uma = agent_api(stack, "uma")  # one chat at most
    uma.ready()
    stack.customer.send_text(APP, APP_CUSTOMER, "Hello, anyone?")
    chat_id = uma.wait_event("chat_offered")["chat_id"]
    uma.accept(chat_id)
    stack.wait_text("inapp", assigned("Uma"))
    uma.say(chat_id, "Hi, how can I help?")  # the agent's words do not keep the chat open

    closed = uma.wait_event("chat_closed", chat_id, timeout=SILENCE_SECONDS + 10)
    assert closed["by"] == "inactivity"
    chat = router(stack).chat(chat_id)
    assert closed["at"] - chat.accepted_at >= SILENCE_SECONDS, "not before the customer's silence"
    assert (chat.state, chat.closed_by, chat.wrap_up) == ("closed", "system", "customer inactive")
    assert uma.me()["chats"] == [], "the slot is free"
    stack.wait_text("inapp", CUSTOMER_INACTIVE)
    assert texts(stack, "inapp") == [WELCOME, assigned("Uma"), "Hi, how can I help?", CUSTOMER_INACTIVE]
    wait_for(lambda: thread_of(stack, "inapp").state.value == "closed", what="the conversation closed")
    assert uma.of_type("chat_closed") == [closed], "once"
