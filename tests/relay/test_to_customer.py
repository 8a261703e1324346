"""The outbox side of the drain (relay/to_customer.py): neutral agent events to the customer's channel.

The in-app channel stands in for every channel here: its delivery URL is mocked with `responses`,
the rest (Redis, the drain, the lease and commit) is real."""

from __future__ import annotations

import json

import responses

from connector.backends.ece.events import agent_event
from connector.backends.events import AgentEvent, AgentEventKind
from connector.relay.drain import drain_thread
from connector.store import keys, threads
from connector.store.boxes import Box

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
def test_an_earlier_conversations_text_is_delivered_but_its_state_changes_are_not(runtime, redis):
    responses.post(DELIVERY_URL, json={"ok": True})
    open_thread(redis, remote_id="conv-2")
    late_text = agent_event(ece_event("80", "text/plain", conversation="conv-1", content="One more thing"))
    late_close = agent_event(ece_event("81", "complete", conversation="conv-1"))
    queue(runtime, late_text.to_item("TestRouter"), "80")
    queue(runtime, late_close.to_item("TestRouter"), "81")
    drain_thread(THREAD, runtime)
    assert [d["text"] for d in delivered()] == ["One more thing"]
    assert threads.load(redis, THREAD).state.value != "closed", "the current conversation stays open"
    notes = [e.get("note") for e in threads.timeline(redis, THREAD)]
    assert notes == [
        "event of an earlier conversation: content delivered, state unchanged",
        "complete event of an earlier conversation ignored",
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
