"""A flow in front of Hybrid Chat, in process: the `ask` answer, the identity service's attributes,
and the bot's summary and transcript reach the chat details the agent reads (the desk, and
`GET /agent/api/chats/<id>` over HTTP). The customer's app, the identity service and the FAQ bot
are the sandbox's, served on loopback; the router, the drain and the agent API are the real ones."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from connector.backends.hybrid.state import HybridState
from connector.channels.base import thread_id_for
from connector.relay.drain import drain_thread
from connector.sandbox.http import LoopbackServer
from connector.sandbox.providers import ProviderSimulators
from connector.sandbox.services import BOT_SECRET, IDENTITY_SECRET
from connector.sandbox.services.bot import HOURS, SandboxBot
from connector.sandbox.services.identity import IdentityService
from connector.sandbox.signing import inapp_headers
from connector.store import threads
from tests.backends.hybrid.agent_api_helpers import ZOE, ZOE_PASSWORD, bearer, login, with_local_agents
from tests.flows.test_flow_calls_drain import ORDER

ASSET = "app-flow-hybrid"
SECRET = "flow-hybrid-inapp-secret-0123456789"
CUSTOMER = "cust-flow-1"
THREAD = thread_id_for("inapp", ASSET, CUSTOMER)


@dataclass
class Loopback:
    """The customer's app (the in-app provider simulator), the identity service and the bot."""

    server: LoopbackServer
    providers: ProviderSimulators
    bot: SandboxBot
    identity: IdentityService

    def texts(self) -> list[str]:
        return [str(s["text"]) for s in self.providers.store.sent("inapp", CUSTOMER) if s.get("text")]


@pytest.fixture
def loopback(runtime) -> Iterator[Loopback]:
    server = LoopbackServer(None, threads=4).start()
    try:
        url = server.url
        with_local_agents(runtime)
        configure(runtime, url)
        providers = ProviderSimulators(runtime.config.assets, url)
        bot, identity = SandboxBot(), IdentityService()
        app = Flask("flow-hybrid-loopback")
        for prefix, blueprint in providers.blueprints():
            app.register_blueprint(blueprint, url_prefix=prefix)
        app.register_blueprint(identity.blueprint(), url_prefix="/identity")
        app.register_blueprint(bot.blueprint(), url_prefix="/bot")
        server.app = app
        yield Loopback(server, providers, bot, identity)
    finally:
        server.stop()


def configure(runtime, url: str) -> None:
    verify = {"name": "check", "type": "verify", "url": f"{url}/identity/verify", "secret": IDENTITY_SECRET}
    bot = {"name": "faq", "type": "bot", "url": f"{url}/bot/turn", "secret": BOT_SECRET, "timeout": 2}
    store = runtime.overrides
    store.save("flows", {"name": "desk-intake", "steps": [ORDER, verify, bot]}, runtime.provisioned, create=True)
    store.save(
        "integrations",
        {"name": "Desk", "type": "hybrid", "entry_points": [{"name": "Support", "skills": ["english"]}]},
        runtime.provisioned,
        create=True,
    )
    store.save(
        "assets",
        {
            "name": ASSET,
            "channel": "inapp",
            "app_id": "flow-hybrid",
            "secret": SECRET,
            "delivery_url": f"{url}/inapp/deliver",
        },
        runtime.provisioned,
        create=True,
    )
    store.save(
        "rules",
        {
            "name": "flow-hybrid",
            "channel": "inapp",
            "event": "incoming_message",
            "asset": ASSET,
            "action": {"forward_to": "Desk", "entry_point": "Support", "flow": "desk-intake"},
        },
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()


def say(client, runtime, message_id: str, text: str) -> None:
    body = json.dumps(
        {"message_id": message_id, "customer": {"id": CUSTOMER}, "type": "text", "text": text, "sent_at": time.time()}
    ).encode()
    headers = {"Content-Type": "application/json", **inapp_headers(SECRET, body)}
    assert client.post(f"/webhooks/inapp/{ASSET}", data=body, headers=headers).status_code == 200
    drain_thread(THREAD, runtime)


def through_the_flow(client, runtime, loopback: Loopback) -> str:
    """Zoe READY; the customer answers the order number (verified: gold; the bot's first turn, which
    tells the order's status), asks the bot about the opening hours, then asks it for a human: the
    bot hands over with its summary. The chat's id."""
    zoe = login(client.application.test_client())["token"]
    assert client.put("/agent/api/me/state", json={"state": "READY"}, headers=bearer(zoe)).status_code == 200
    say(client, runtime, "m-1", "Hello")
    say(client, runtime, "m-2", "AB100001")
    say(client, runtime, "m-3", "when are you open?")
    assert threads.load(runtime.redis, THREAD).remote_id is None, "nothing reaches Hybrid Chat during the flow"
    say(client, runtime, "m-4", "I want a human please")
    thread = threads.load(runtime.redis, THREAD)
    assert thread.flow is None and thread.remote_id
    assert HOURS in loopback.texts(), "the bot's answer reached the customer's app"
    return str(thread.remote_id)


def test_answers_verified_attributes_summary_and_transcript_reach_the_chat_details(client, runtime, loopback):
    chat_id = through_the_flow(client, runtime, loopback)
    chat = HybridState(runtime.redis).chat(chat_id)
    assert chat is not None and chat.agent == f"local:{ZOE}", "offered to the READY agent"
    attributes: dict[str, Any] = chat.attributes or {}
    assert attributes["order_number"] == "AB100001"
    assert (attributes["verified"], attributes["customer_tier"]) == ("true", "gold")
    # The bot's first turn is the answer that ended the step before it (the order number).
    assert attributes["bot_handover"] == "bot" and attributes["bot_topics"] == "order status, opening hours"
    assert "order status, opening hours" in attributes["bot_summary"]

    zoe = bearer(login(client.application.test_client(), ZOE, ZOE_PASSWORD)["token"])
    assert client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe).status_code == 200
    details = client.get(f"/agent/api/chats/{chat_id}", headers=zoe).get_json()
    assert details["attributes"] == attributes, "the agent API shows the same details"
    said = [(t["from"], t.get("text")) for t in details["transcript"]]
    assert said[:2] == [("customer", "Hello"), ("customer", "AB100001")], "the messages before the bot step"
    (note,) = [text for who, text in said if who == "system"]
    assert note.startswith("[connector] Chatbot conversation before this chat (handover: the bot handed over).")
    assert f"Summary: {attributes['bot_summary']}" in note
    assert "Customer: AB100001" in note and "Customer: when are you open?" in note and HOURS[:40] in note
    assert not [text for who, text in said if who == "customer" and "[connector]" in str(text)]
