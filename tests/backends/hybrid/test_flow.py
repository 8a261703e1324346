"""A chat's way through Hybrid Chat, in process: customer → queue → offer → accept → messages both
ways → close. Real Redis, the real intake, drain and router; the customer's app (in-app channel)
is mocked with `responses`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from connector.backends.hybrid import stream
from connector.backends.hybrid.agents import settings_for
from connector.backends.hybrid.desk import Desk, DeskError
from connector.backends.hybrid.router import expire_offers
from connector.backends.hybrid.state import HybridState
from connector.channels.base import thread_id_for
from connector.relay.drain import drain_thread
from connector.sandbox.signing import inapp_headers
from connector.store import keys, threads

ASSET = "app-hybrid"
SECRET = "hybrid-inapp-secret-0123456789"
DELIVERY = "https://app.hybrid.example.com/deliver"


DESK = {
    "name": "Desk",
    "type": "hybrid",
    "entry_points": [
        {"name": "Support", "skills": ["english"], "offer_timeout_seconds": 5},
        {"name": "Billing", "skills": ["billing"], "priority": 2},
    ],
}


@pytest.fixture
def helpdesk(runtime) -> Iterator[responses.RequestsMock]:
    yield from provisioned(runtime, DESK)


def provisioned(runtime, integration: dict[str, Any]) -> Iterator[responses.RequestsMock]:
    """A fixture's body: `integration` (a Hybrid Chat one), the in-app asset and the rule that sends
    it to the integration's Support queue, with the customer's app mocked while the test runs."""
    store = runtime.overrides
    store.save("integrations", integration, runtime.provisioned, create=True)
    store.save(
        "assets",
        {"name": ASSET, "channel": "inapp", "app_id": "hybrid", "secret": SECRET, "delivery_url": DELIVERY},
        runtime.provisioned,
        create=True,
    )
    store.save(
        "rules",
        {
            "name": "hybrid",
            "channel": "inapp",
            "event": "incoming_message",
            "asset": ASSET,
            "action": {"forward_to": integration["name"], "entry_point": "Support"},
        },
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(DELIVERY, json={"ok": True})
        yield mock


def desk(runtime, agent_id: str, skills: tuple[str, ...] = ("english",), max_chats: int = 2) -> Desk:
    settings = settings_for(runtime.config, agent_id, agent_id)
    settings = type(settings)(agent_id, agent_id, agent_id.title(), skills, max_chats, local=True)
    return Desk(runtime, settings)


def customer_says(client, customer: str, message_id: str, text: str) -> str:
    body = json.dumps(
        {"message_id": message_id, "customer": {"id": customer}, "type": "text", "text": text, "sent_at": time.time()}
    ).encode()
    headers = {"Content-Type": "application/json", **inapp_headers(SECRET, body)}
    assert client.post(f"/webhooks/inapp/{ASSET}", data=body, headers=headers).status_code == 200
    return thread_id_for("inapp", ASSET, customer)


def delivered(mock: responses.RequestsMock) -> list[dict]:
    return [json.loads(c.request.body) for c in mock.calls if c.request.url == DELIVERY]


def events(redis, agent: str) -> list[dict]:
    found, _ = stream.read(redis, agent, "0-0", 0)
    return [event for _id, event in found]


def test_a_customer_is_offered_to_a_ready_agent_who_accepts_and_they_talk(client, redis, runtime, helpdesk):
    alice = desk(runtime, "alice")
    alice.set_state(True)
    thread_id = customer_says(client, "cust-1", "m-1", "Hello, my router is broken")
    drain_thread(thread_id, runtime)

    thread = threads.load(redis, thread_id)
    chat_id = thread.remote_id
    assert thread.state.value == "queued" and chat_id == thread.conversation_id
    offered = [e for e in events(redis, "alice") if e["type"] == "chat_offered"]
    assert [e["chat_id"] for e in offered] == [chat_id]

    alice.accept(chat_id)
    drain_thread(thread_id, runtime)
    assert threads.load(redis, thread_id).state.value == "assigned"
    texts = [d.get("text") for d in delivered(helpdesk)]
    assert any("Alice" in (t or "") for t in texts), texts  # agent_assigned names the agent

    alice.send_text(chat_id, "Let me check that for you")
    drain_thread(thread_id, runtime)
    assert delivered(helpdesk)[-1]["text"] == "Let me check that for you"

    customer_says(client, "cust-1", "m-2", "Thanks!")
    drain_thread(thread_id, runtime)
    said = [e for e in events(redis, "alice") if e["type"] == "customer_message"]
    assert [e["text"] for e in said] == ["Thanks!"]
    transcript = alice.chat(chat_id)["transcript"]
    assert [(t["from"], t.get("text")) for t in transcript] == [
        ("customer", "Hello, my router is broken"),
        ("agent", "Let me check that for you"),
        ("customer", "Thanks!"),
    ]

    alice.close(chat_id, wrap_up="solved")
    drain_thread(thread_id, runtime)
    assert threads.load(redis, thread_id).state.value == "closed"
    assert HybridState(redis).agent_chats("alice") == []


def test_an_offer_that_rings_out_goes_to_the_next_agent_and_the_first_goes_not_ready(client, redis, runtime, helpdesk):
    alice, bob = desk(runtime, "alice"), desk(runtime, "bob")
    alice.set_state(True)
    time.sleep(0.01)
    bob.set_state(True)
    thread_id = customer_says(client, "cust-2", "m-1", "Hi")
    drain_thread(thread_id, runtime)
    chat = HybridState(redis).chat(threads.load(redis, thread_id).remote_id)
    first = chat.agent
    assert first in ("alice", "bob")
    assert expire_offers(redis, runtime.config, now=time.time() + 6) == [chat.chat_id]
    assert HybridState(redis).agent(first)["state"] == "NOT_READY"
    assert HybridState(redis).agent(first)["reason"] == "RONA"
    from connector.backends.hybrid.router import run_passes

    redis.set(keys.hybrid_route_wanted(), "1")
    run_passes(redis, runtime.config)
    second = HybridState(redis).chat(chat.chat_id).agent
    assert second not in (None, first)
    with pytest.raises(DeskError) as late:
        desk(runtime, first).accept(chat.chat_id)
    assert late.value.status == 409


def test_a_rejected_offer_goes_to_the_next_agent_at_once_and_not_back(client, redis, runtime, helpdesk):
    """The one who rejected is passed over while anyone else can take it; alone, they get it again
    only after the queue's offer timeout."""
    alice, bob = desk(runtime, "alice"), desk(runtime, "bob")
    alice.set_state(True)
    thread_id = customer_says(client, "cust-3", "m-1", "Hi")
    drain_thread(thread_id, runtime)
    chat_id = threads.load(redis, thread_id).remote_id
    assert HybridState(redis).chat(chat_id).agent == "alice"

    alice.reject(chat_id)
    assert HybridState(redis).chat(chat_id).state == "queued", "alone and just rejected: it waits"
    bob.set_state(True)
    assert HybridState(redis).chat(chat_id).agent == "bob", "the next agent gets it at once"
    assert [e["reason"] for e in events(redis, "alice") if e["type"] == "offer_withdrawn"] == ["rejected"]
