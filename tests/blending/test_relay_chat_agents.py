"""The relay tells blending of an agent's chats as the contact center names the agent: ECE's
`sender.user` id and name, and the type of the integration the chat belongs to, on the chat-events
stream (relay/to_customer.py → blending/chat_events.py), so the listener can map ECE's agents to
Finesse logins (`finesse.ece_agent_field`, `finesse.ece_agents`)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import responses

from connector.backends.ece.events import agent_event
from connector.blending.chat_events import ChatAgent, ChatEventConsumer
from connector.relay.drain import drain_thread
from connector.store import keys, threads
from connector.store.boxes import Box

DELIVERY_URL = "http://127.0.0.1:9/inapp"  # the test-inapp asset of tests/config/channels.yaml
THREAD = "t-blend-1"
CONVERSATION = "conv-9"


def as_type(runtime, integration_type: str) -> None:
    """The test configuration with its integration (TestRouter) of `integration_type`."""
    config = runtime.config
    runtime._config = replace(
        config, integrations=tuple(replace(i, type=integration_type) for i in config.integrations)
    )


def open_thread(redis) -> None:
    thread = threads.load(redis, THREAD)
    thread.channel, thread.asset, thread.customer = "inapp", "test-inapp", "user-7"
    thread.integration, thread.entry_point, thread.remote_id = "TestRouter", "Support", CONVERSATION
    threads.save(redis, thread)


def relay(runtime, event_id: str, kind: str, **fields: object) -> None:
    callback = {"id": event_id, "conversation": {"id": CONVERSATION}, "type": {"value": kind}, **fields}
    item = agent_event(callback).to_item("TestRouter")
    assert runtime.boxes.append(Box.OUT, THREAD, json.dumps(item), keys.dedupe("t", "out", event_id), 60) >= 0
    drain_thread(THREAD, runtime)


def entries(redis) -> list[tuple[str, ChatAgent, str]]:
    consumer = ChatEventConsumer(redis, consumer="test")
    found = consumer.read() or consumer.read(block_ms=100)
    return [(e.kind, e.agent, e.fields["chat"]) for e in found]


def sender(user_id: str, name: str) -> dict:
    return {"sender": {"type": "user", "user": {"id": user_id, "name": name}}}


@pytest.mark.parametrize("integration_type", ["ece", "hybrid"])
@responses.activate
def test_assigned_transfer_and_complete_name_the_agent_by_id_and_name_and_the_backend(
    runtime, redis, integration_type
) -> None:
    responses.post(DELIVERY_URL, json={"ok": True})
    as_type(runtime, integration_type)
    open_thread(redis)
    relay(runtime, "1", "assigned", **sender("e-17", "Ada"))
    relay(runtime, "2", "assigned", **sender("e-18", "Bob"))  # another agent took it over
    relay(runtime, "3", "complete")
    ada, bob = ChatAgent("e-17", "Ada", integration_type), ChatAgent("e-18", "Bob", integration_type)
    assert entries(redis) == [
        ("assigned", ada, CONVERSATION),
        ("ended", ada, CONVERSATION),
        ("assigned", bob, CONVERSATION),
        ("ended", bob, CONVERSATION),
    ]


@responses.activate
def test_the_same_agent_assigned_again_after_a_transfer_to_them_ends_nothing(runtime, redis) -> None:
    """A transfer to a named agent knows their name only; their `assigned` is the same agent."""
    responses.post(DELIVERY_URL, json={"ok": True})
    as_type(runtime, "ece")
    open_thread(redis)
    relay(runtime, "1", "assigned", **sender("e-17", "Ada"))
    relay(runtime, "2", "transfer", transfer={"type": "agent", "name": "Bob"})
    relay(runtime, "3", "assigned", **sender("e-18", "Bob"))
    assert [(kind, agent.name) for kind, agent, _ in entries(redis)] == [
        ("assigned", "Ada"),
        ("ended", "Ada"),
        ("assigned", "Bob"),
    ]
