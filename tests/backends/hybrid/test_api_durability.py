"""An agent's message through the agent API waits for CONNECTOR_DURABILITY like a webhook does."""

from __future__ import annotations

import json

import responses

from connector.backends.hybrid.state import HybridState
from connector.store.boxes import Box
from connector.store.durability import Durability, Mode
from tests.backends.hybrid.agent_api_helpers import DELIVERY, bearer, chat_of, configure_desk, customer_says, login


def test_replicated_answers_an_agents_send_503_without_a_replica_and_keeps_the_message(client, runtime):
    configure_desk(runtime)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(DELIVERY, json={"ok": True})
        zoe = bearer(login(client.application.test_client())["token"])
        assert client.put("/agent/api/me/state", json={"state": "READY"}, headers=zoe).status_code == 200
        thread_id = customer_says(runtime, client, "cust-durable", "Hello")
        chat_id = chat_of(runtime, thread_id)
        assert HybridState(runtime.redis).chat(chat_id).agent == "local:zoe"
        assert client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe).status_code == 200
        before = runtime.redis.llen(Box.OUT.key(thread_id))

        # The suite's Redis has no replica: with `replicated`, no send can be confirmed.
        runtime.durability = Durability(Mode.REPLICATED, replica_wait_ms=50)
        sent = client.post(f"/agent/api/chats/{chat_id}/messages", json={"text": "One moment"}, headers=zoe)

    assert sent.status_code == 503
    assert sent.headers["Retry-After"] == "1"
    assert sent.get_json()["error"] == "unavailable"
    items = [json.loads(i) for i in runtime.redis.lrange(Box.OUT.key(thread_id), before, -1)]
    assert [i["event"].get("text") for i in items] == ["One moment"], "stored anyway: delivered unless Redis dies"
