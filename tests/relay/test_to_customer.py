"""The outbox side of the drain (relay/to_customer.py): neutral agent events to the customer's channel.

The in-app channel stands in for every channel here: its delivery URL is mocked with `responses`,
the rest (Redis, the drain, the lease and commit) is real."""

from __future__ import annotations

import json

import pytest
import responses

from connector.backends.ece.events import agent_event
from connector.backends.events import AgentEvent, AgentEventKind
from connector.errors import RetryableError
from connector.relay.drain import drain_thread
from connector.relay.to_customer import THREAD_PENDING_WAIT_SECONDS, handle_item
from connector.store import dead_letters, keys, threads
from connector.store.boxes import Box
from connector.store.effects import Effects

DELIVERY_URL = "http://127.0.0.1:9/inapp"  # the test-inapp asset of tests/config/channels.yaml
THREAD = "t-inapp-1"


def open_thread(redis, remote_id: str = "conv-2") -> None:
    thread = threads.load(redis, THREAD)
    thread.channel, thread.asset, thread.customer = "inapp", "test-inapp", "user-42"
    thread.integration, thread.entry_point, thread.remote_id = "TestRouter", "Support", remote_id
    threads.save(redis, thread)


def ece_event(event_id: str, kind: str, conversation: str = "conv-2", **fields) -> dict:
    return {"id": event_id, "conversation": {"id": conversation}, "type": {"value": kind}, **fields}


def queue(runtime, item: dict, key: str) -> None:
    assert runtime.boxes.append(Box.OUT, THREAD, json.dumps(item), keys.dedupe("test", "out", key), 60) >= 0


def delivered() -> list[dict]:
    return [json.loads(call.request.body) for call in responses.calls]


@responses.activate
def test_an_item_queued_by_an_earlier_version_in_ece_words_is_still_delivered(runtime, redis):
    """Items written before the outbox carried neutral events (`{"source": "ece", ...}`) must not be
    stranded by an upgrade: the backend turns them into neutral events when the relay meets them."""
    responses.post(DELIVERY_URL, json={"ok": True})
    open_thread(redis)
    legacy = {
        "source": "ece",
        "integration": "TestRouter",
        "conversation": "conv-2",
        "event": ece_event("71", "text/plain", content="Your order shipped"),
    }
    queue(runtime, legacy, "legacy")
    drain_thread(THREAD, runtime)
    assert [(d["type"], d["text"]) for d in delivered()] == [("text", "Your order shipped")]
    assert redis.llen(keys.outbox(THREAD)) == 0
    [entry] = threads.timeline(redis, THREAD)
    assert (entry["kind"], entry["event"]) == ("text", "ece:71")


@responses.activate
def test_an_earlier_conversations_text_and_close_are_told_but_its_state_changes_are_not(runtime, redis):
    """ECE ended conv-1 and the customer's next message started conv-2 before conv-1's `complete`
    came (the chaos soak: the customer never heard their chat had closed). The customer hears the
    late text and the close, in order; conv-2 stays open, with no close sent to the channel."""
    responses.post(DELIVERY_URL, json={"ok": True})
    open_thread(redis, remote_id="conv-2")
    late_text = agent_event(ece_event("80", "text/plain", conversation="conv-1", content="One more thing"))
    late_close = agent_event(ece_event("81", "complete", conversation="conv-1"))
    late_assign = agent_event(ece_event("82", "assign", conversation="conv-1", agent="Bob"))
    queue(runtime, late_text.to_item("TestRouter"), "80")
    queue(runtime, late_close.to_item("TestRouter"), "81")
    queue(runtime, late_assign.to_item("TestRouter"), "82")
    drain_thread(THREAD, runtime)
    assert [(d["type"], d.get("text")) for d in delivered()] == [
        ("text", "One more thing"),
        ("system", "The agent has marked your chat closed."),
    ]
    assert threads.load(redis, THREAD).state.value != "closed", "the current conversation stays open"
    notes = [e.get("note") for e in threads.timeline(redis, THREAD)]
    assert notes == [
        "event of an earlier conversation: content delivered, state unchanged",
        "closed by the agent: an earlier conversation, state unchanged",
        "assign event of an earlier conversation ignored",
    ]


@responses.activate
def test_a_close_for_the_customers_inactivity_says_so_instead_of_agent_closed(runtime, redis):
    """Hybrid Chat ends a chat whose customer went silent: the customer hears `customer_inactive`,
    not that the agent closed it, and the conversation ends as an agent's close ends it."""
    responses.post(DELIVERY_URL, json={"ok": True})
    open_thread(redis)
    inactive = AgentEvent(AgentEventKind.CLOSED, "conv-2", "inactive:conv-2", extra={"by": "inactivity"})
    queue(runtime, inactive.to_item("TestRouter"), "inactive")
    drain_thread(THREAD, runtime)
    assert [(d["type"], d.get("text")) for d in delivered()] == [
        ("system", "We closed this chat as we have not heard from you for a while. Write again any time."),
        ("close", None),
    ]
    assert threads.load(redis, THREAD).state.value == "closed"
    [entry] = threads.timeline(redis, THREAD)
    assert (entry["system"], entry["note"]) == (["customer_inactive"], "closed for the customer's inactivity")


def test_an_item_for_a_conversation_not_recorded_yet_waits_for_its_first_message(runtime, redis):
    """ECE's start answer (then the welcome and the agent's callbacks) can reach the outbox before the
    first customer message's commit writes the conversation's record; a worker killed in between
    leaves them there. While that message waits in the inbox, an outbox item waits too (retried),
    and is delivered once the record exists: never dropped."""
    event = agent_event(ece_event("90", "text/plain", content="Hello from Alice"))
    queue(runtime, event.to_item("TestRouter"), "90")
    assert runtime.boxes.append(Box.IN, THREAD, json.dumps({"first": "message"}), keys.dedupe("t", "in", "1"), 60) >= 0
    raw = runtime.boxes.head(THREAD, Box.OUT)
    with pytest.raises(RetryableError, match="not recorded yet") as caught:
        handle_item(runtime, THREAD, raw, Effects(redis, Box.OUT, THREAD))
    assert caught.value.wait == THREAD_PENDING_WAIT_SECONDS and not caught.value.outage, "no breaker counts it"
    assert redis.llen(keys.outbox(THREAD)) == 1, "the item stays at the head of the outbox"


@responses.activate
def test_an_item_for_a_conversation_that_nothing_will_record_is_a_dead_letter(runtime, redis):
    """No record and no customer message left to write one (its first message was itself a dead
    letter, say): the item goes to the dead letters with its reason, not silently away."""
    event = agent_event(ece_event("91", "text/plain", content="Anyone there?"))
    queue(runtime, event.to_item("TestRouter"), "91")
    drain_thread(THREAD, runtime)
    assert redis.llen(keys.outbox(THREAD)) == 0 and not responses.calls
    [letter] = dead_letters.listing(redis)
    assert (letter.thread, letter.box) == (THREAD, Box.OUT.value)
    assert "no such conversation" in letter.reason
