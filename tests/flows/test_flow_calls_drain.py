"""The `verify` and `bot` steps inside the drain, on the real Redis, with the sandbox's identity
service and FAQ bot and the ECE simulator on loopback: each call's result moves the flow, a
retryable failure is retried in order and then gives up into the flow's on_fail (or the bot's
handover), and the transcript and summary reach the ECE agent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask

from connector.flows.service import idempotency_key
from connector.relay.drain import drain_thread
from connector.sandbox.http import LoopbackServer
from connector.sandbox.services import BOT_SECRET, IDENTITY_SECRET
from connector.sandbox.services.bot import HOURS, SandboxBot
from connector.sandbox.services.identity import IdentityService
from connector.settings import Settings
from connector.store import dead_letters, keys, threads
from tests.flows.drain import settings_with_flows, whatsapp_says
from tests.flows.test_flow_drain import CUSTOMER, THREAD, route_through

ORDER = {
    "name": "order",
    "type": "ask",
    "question": "ask_order_number",
    "answer": "regex",
    "pattern": "[A-Za-z]{2}[0-9]{6}",
    "attribute": "order_number",
}


class Services:
    def __init__(self) -> None:
        self.identity, self.bot = IdentityService(), SandboxBot()
        app = Flask("services")
        app.register_blueprint(self.identity.blueprint(), url_prefix="/identity")
        app.register_blueprint(self.bot.blueprint(), url_prefix="/bot")
        self.server = LoopbackServer(app, threads=4).start()
        self.url = self.server.url


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    found = Services()
    try:
        yield found
    finally:
        found.server.stop()


@pytest.fixture(autouse=True)
def _reset(services: Services) -> Iterator[None]:
    yield
    services.identity.faults.reset()
    services.identity.replays.reset()
    services.bot.faults.reset()
    services.bot.forget()


def flows(url: str) -> list[dict[str, object]]:
    verify = {
        "name": "check",
        "type": "verify",
        "url": f"{url}/identity/verify",
        "secret": IDENTITY_SECRET,
        "timeout": 0.5,
    }
    bot = {"name": "faq", "type": "bot", "url": f"{url}/bot/turn", "secret": BOT_SECRET, "timeout": 0.5, "tries": 2}
    return [
        {"name": "verified", "steps": [ORDER, verify]},
        {"name": "strict", "steps": [ORDER, {**verify, "failed": "verify_failed"}], "on_fail": "close"},
        {"name": "faq", "steps": [bot]},
        {"name": "full", "steps": [ORDER, verify, bot]},
    ]


@pytest.fixture
def settings(redis_url: str, tmp_path: Path, services: Services) -> Settings:
    return settings_with_flows(redis_url, tmp_path, flows(services.url))


def say(client, wamid: str, text: str) -> None:
    whatsapp_says(client, CUSTOMER, THREAD, wamid, text)


def retry_now(redis) -> None:
    """The inbox head's retry time has come (the backoff is not what these tests wait for)."""
    redis.hdel(keys.retry_state(THREAD), "in_until")
    drain_thread(THREAD)


def flow_entries(redis) -> list[dict[str, object]]:
    return [e["flow"] for e in threads.timeline(redis, THREAD) if "flow" in e]


def sent(redis) -> list[str]:
    """What the outbox side handled for the customer: templates and bot replies, in order."""
    return [e["message"] for e in threads.timeline(redis, THREAD) if e.get("kind") == "system"]


def ece_conversation(simulator):
    (conversation,) = simulator.model.conversations.values()
    return conversation, {a["name"]: a["value"] for a in conversation.custom_attributes}


# -- verify ---------------------------------------------------------------------------------------


def test_verified_attributes_reach_ece(client, runtime, redis, ece_simulator, services):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "verified")
    say(client, "wamid.V1", "hi")
    say(client, "wamid.V2", "AB100001")
    thread = threads.load(redis, THREAD)
    assert thread.flow is None
    assert thread.attributes["verified"] == "true" and thread.attributes["customer_tier"] == "gold"
    _conversation, custom = ece_conversation(simulator)
    assert custom["customer_tier"] == "gold" and custom["order_number"] == "AB100001"
    assert flow_entries(redis)[-1] == {
        "flow": "verified",
        "answered": "order",
        "verified": "check",
        "outcome": "routed",
    }
    assert services.identity.faults.calls == 1


def test_refused_verification_closes_with_the_verify_failed_message(client, runtime, redis, ece_simulator):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "strict")
    say(client, "wamid.R1", "hi")
    say(client, "wamid.R2", "ZZ999999")  # valid shape, no such order
    assert threads.load(redis, THREAD).state.value == "closed"
    assert sent(redis) == ["ask_order_number", "verify_failed"], "the step's message once, not the closing too"
    last = flow_entries(redis)[-1]
    assert last["failed"] == "check" and last["outcome"] == "failed: closed" and "not verified" in str(last["reason"])
    assert not simulator.model.conversations


def test_a_4xx_fails_the_step_at_once_and_routes_anyway(client, runtime, redis, ece_simulator, services):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "verified")
    services.identity.faults.set(fail_next={"count": 1, "status": 403})
    say(client, "wamid.F1", "hi")
    say(client, "wamid.F2", "AB100001")
    last = flow_entries(redis)[-1]
    assert last["failed"] == "check" and last["outcome"] == "failed: routed" and "403" in str(last["reason"])
    _conversation, custom = ece_conversation(simulator)
    assert "verified" not in custom and custom["order_number"] == "AB100001"
    assert services.identity.faults.calls == 1, "a 4xx is not retried"


def test_a_5xx_is_retried_in_order_then_verifies(client, runtime, redis, ece_simulator, services):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "verified")
    say(client, "wamid.S1", "hi")
    services.identity.faults.set(fail_next={"count": 1, "status": 503})
    say(client, "wamid.S2", "AB100002")
    assert threads.load(redis, THREAD).flow is not None, "the answer waits in the inbox"
    assert any(e.get("kind") == "retry" for e in threads.timeline(redis, THREAD))
    say(client, "wamid.S3", "and another message")  # behind the retried one, in order
    assert not simulator.model.conversations
    retry_now(redis)
    thread = threads.load(redis, THREAD)
    assert thread.flow is None and thread.attributes["customer_tier"] == "silver"
    conversation, _custom = ece_conversation(simulator)
    received = [str(r) for r in conversation.received]
    assert [t for t in ("hi", "AB100002", "and another message") if any(t in r for r in received)] == [
        "hi",
        "AB100002",
        "and another message",
    ]
    assert services.identity.faults.calls == 2


def test_a_timeout_past_the_horizon_applies_on_fail(client, runtime, redis, ece_simulator, services, settings):
    simulator, base_url = ece_simulator
    runtime.settings = replace(settings, retry_horizon_seconds=0.0)
    route_through(runtime, base_url, "strict")
    say(client, "wamid.T1", "hi")
    services.identity.faults.set(delay_seconds=1)  # the step's timeout is 0.5 s
    say(client, "wamid.T2", "AB100001")
    thread = threads.load(redis, THREAD)
    assert thread.state.value == "closed" and thread.flow is None
    last = flow_entries(redis)[-1]
    assert last["failed"] == "check" and "no answer" in str(last["reason"])
    assert sent(redis) == ["ask_order_number", "verify_failed"]
    assert not [d for d in dead_letters.listing(redis) if d.box == "in"], "the answer is never dropped"
    assert not simulator.model.conversations


# -- bot ------------------------------------------------------------------------------------------


def test_bot_answers_then_hands_over_with_summary_and_transcript(client, runtime, redis, ece_simulator, services):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "faq")
    say(client, "wamid.B1", "when are you open?")
    assert threads.load(redis, THREAD).flow is not None and not simulator.model.conversations
    say(client, "wamid.B2", "I want a human please")  # the bot hands over ("human")
    thread = threads.load(redis, THREAD)
    assert thread.flow is None and thread.attributes["bot_handover"] == "bot"
    conversation, custom = ece_conversation(simulator)
    assert "opening hours" in custom["bot_summary"] and custom["bot_topics"] == "opening hours"
    received = "\n".join(str(r) for r in conversation.received)
    assert "Chatbot conversation before this chat" in received
    assert "Customer: when are you open?" in received and HOURS[:40] in received
    assert sent(redis)[:2] == ["bot_reply", "bot_reply"]
    assert flow_entries(redis)[-1]["handover"] == "bot"


def test_keyword_hands_over_without_asking_the_bot(client, runtime, redis, ece_simulator, services):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "faq")
    say(client, "wamid.K1", "returns?")
    say(client, "wamid.K2", " Agent ")
    assert services.bot.faults.calls == 1, "the keyword never reaches the bot"
    _conversation, custom = ece_conversation(simulator)
    assert custom["bot_handover"] == "keyword"
    assert flow_entries(redis)[-1] == {"flow": "faq", "outcome": "handed over", "handover": "keyword"}


def test_bot_down_hands_over_after_its_tries(client, runtime, redis, ece_simulator, services):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "faq")
    services.bot.faults.set(down=True)
    say(client, "wamid.D1", "hello")
    assert not simulator.model.conversations, "first failure: retried"
    retry_now(redis)  # second of tries: 2
    _conversation, custom = ece_conversation(simulator)
    assert custom["bot_handover"] == "bot_unavailable"
    assert services.bot.faults.calls == 2
    note = next(e["note"] for e in reversed(threads.timeline(redis, THREAD)) if "flow" in e)
    assert "handed over" in note and "503" in note


def test_bot_timeout_hands_over_after_its_tries(client, runtime, redis, ece_simulator, services):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "faq")
    services.bot.faults.set(delay_seconds=1)
    say(client, "wamid.D1", "hello")
    retry_now(redis)
    _conversation, custom = ece_conversation(simulator)
    assert custom["bot_handover"] == "bot_unavailable"
    note = next(e["note"] for e in reversed(threads.timeline(redis, THREAD)) if "flow" in e)
    assert "no answer within" in note


def test_a_numbered_answer_sends_the_buttons_payload(client, runtime, redis, ece_simulator, services):
    """WhatsApp shows no buttons here: the bot's buttons went as numbered text, and "1" is the first."""
    _simulator, base_url = ece_simulator
    route_through(runtime, base_url, "faq")
    say(client, "wamid.N1", "where is my order")  # → "Which order do you mean?" with two buttons
    say(client, "wamid.N2", "1")  # "My latest order" → payload order_latest
    state = threads.load(redis, THREAD)
    assert state.flow is not None and "AB100001" in state.flow and "has shipped" in state.flow


def test_ask_verify_bot_in_one_flow(client, runtime, redis, ece_simulator, services):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "full")
    say(client, "wamid.A1", "hi")
    say(client, "wamid.A2", "AB100003")  # verified, then the bot gets the answer as its first message
    assert "has shipped" in (threads.load(redis, THREAD).flow or "")
    say(client, "wamid.A3", "agent")
    _conversation, custom = ece_conversation(simulator)
    assert custom["customer_tier"] == "standard" and custom["bot_handover"] == "keyword"


# -- idempotency keys ----------------------------------------------------------------------------


def test_a_call_made_again_carries_the_same_key_and_every_other_call_another(
    client, runtime, redis, ece_simulator, services
):
    """verify fails once (503) and is made again when the item is retried: the same key, derived from
    the conversation, the customer message and the step. The bot's turn for the same message (another
    step) and for the next message (another item) get keys of their own."""
    _simulator, base_url = ece_simulator
    route_through(runtime, base_url, "full")
    say(client, "wamid.I1", "hi")
    services.identity.faults.set(fail_next={"count": 1, "status": 503})
    say(client, "wamid.I2", "AB100001")
    retry_now(redis)
    say(client, "wamid.I3", "when are you open?")

    conversation = threads.load(redis, THREAD).conversation_id
    verify_keys, bot_keys = services.identity.faults.keys(), services.bot.faults.keys()
    assert verify_keys == [idempotency_key(conversation, "wamid.I2", "check")] * 2, "the repeat carries the same key"
    assert bot_keys == [
        idempotency_key(conversation, "wamid.I2", "faq"),
        idempotency_key(conversation, "wamid.I3", "faq"),
    ]
    assert len({*verify_keys, *bot_keys}) == 3
    assert services.identity.replays.acted() == verify_keys[:1]


def test_idempotency_keys_differ_by_conversation_message_and_step():
    key = idempotency_key("conv-1", "wamid.A", "check")
    assert key == idempotency_key("conv-1", "wamid.A", "check") and len(key) == 32
    others = {idempotency_key("conv-2", "wamid.A", "check"), idempotency_key("conv-1", "wamid.B", "check")}
    others |= {idempotency_key("conv-1", "wamid.A", "faq"), idempotency_key("conv-1", "wamid.Acheck", "")}
    assert key not in others and len(others) == 4
