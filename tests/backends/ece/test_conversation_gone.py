"""ECE ended the conversation before its `complete` reached the connector, and the customer wrote
again: the message starts the next conversation, and blending hears at once that the agent's chat
is over (the late `complete` belongs to an earlier conversation by then and changes no state)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from connector.backends.ece.backend import EceBackend
from connector.channels.base import EventKind, InboundEvent, thread_id_for
from connector.conversations import State
from connector.runtime import Runtime
from connector.store import keys
from connector.store.boxes import Box
from connector.store.effects import Effects
from connector.store.threads import Thread
from tests.backends.ece.test_client import CONV, CONVERSATIONS, with_availability, with_config, with_token
from tests.backends.ece.test_start_lookup import CUSTOMER, integration

ENDED = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def test_a_message_to_a_conversation_ece_ended_starts_the_next_and_ends_the_agents_chat(
    runtime: Runtime, mocked: responses.RequestsMock
) -> None:
    ece_integration = integration()
    thread_id = thread_id_for("whatsapp", "test-whatsapp", CUSTOMER)
    thread = Thread(
        id=thread_id,
        channel="whatsapp",
        asset="test-whatsapp",
        customer=CUSTOMER,
        state=State.ASSIGNED,
        sequence=1,
        integration=ece_integration.name,
        entry_point="Support",
        remote_id=ENDED,
        agent_id="1001",
        agent_name="Alice",
    )
    with_token(mocked)
    mocked.post(f"{CONVERSATIONS}/{ENDED}/messages", status=404, json={"code": "404-101"})
    with_availability(mocked)
    with_config(mocked)
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": CONV}})
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=201, json={"id": "m1"})
    event = InboundEvent("whatsapp", "test-whatsapp", CUSTOMER, EventKind.MESSAGE, "wamid.L2", 1_790_000_000, "Hi?")
    effects = Effects(runtime.redis, Box.IN, thread_id)

    EceBackend().deliver(runtime, ece_integration, thread, event, start=False, effects=effects)

    assert (thread.remote_id, thread.sequence, thread.agent_id) == (CONV, 2, None)
    entries = runtime.redis.xrange(keys.chat_events())
    ended = [fields for _id, fields in entries if fields.get(b"kind") == b"ended"]
    assert [(f[b"chat"], f[b"agent_id"], f[b"agent_name"], f[b"backend"]) for f in ended] == [
        (ENDED.encode(), b"1001", b"Alice", b"ece")
    ]
