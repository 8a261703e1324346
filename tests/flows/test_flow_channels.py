"""A flow's choices and a bot's buttons on each channel, proven by what the provider received: the
provider simulators (connector/sandbox/providers) record every send, and the customer emulator
posts each answer as that provider would. Messenger gets quick replies (Graph Send API
`quick_replies`, within its 13 replies of 20 characters); WhatsApp gets reply buttons (1-3 of 20
characters) or a list message (up to 10 rows of 24), validated by the simulator against WhatsApp's
limits; SMS, Apple and in-app have no buttons in the connector's send contract
(docs/protocols/channels.md), so the choices are numbered lines under the text, as they are on
Messenger and WhatsApp beyond their limits. On every channel the number and the text answer; on
Messenger and WhatsApp the tapped reply's payload too. Real Redis, the real webhooks, drain and
channels; the conversation then goes to the test configuration's Hybrid Chat router."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from connector.channels.base import thread_id_for
from connector.channels.sending import ChoiceForm
from connector.relay.drain import drain_thread
from connector.runtime import Runtime
from connector.sandbox.customer import CustomerEmulator
from connector.sandbox.http import LoopbackServer, serving
from connector.sandbox.providers import ProviderSimulators
from connector.sandbox.services import BOT_SECRET
from connector.sandbox.services.bot import HOURS, NOT_UNDERSTOOD, ORDER_QUESTION, SandboxBot
from connector.settings import Settings
from connector.store import threads
from tests.conftest import CONFIG_DIR, PUBLIC_BASE_URL, settings_for
from tests.sandbox.test_customer_emulator import ASSETS, CHANNELS, CUSTOMERS

NUMBERED = tuple(c for c in CHANNELS if c not in ("messenger", "whatsapp"))
"""Channels without reply buttons in the connector's send contract."""
TOPICS = ["Quote", "Order status", "Other"]
LONG = ["Quote", "Where is my order right now?", "Other"]  # 28 characters: over Messenger's 20, WhatsApp's 24
MANY = [f"Option {n}" for n in range(1, 15)]  # 14: over Messenger's 13 quick replies
FIVE = ["Quote", "Order status", "Returns", "Invoices", "Other"]  # over WhatsApp's 3 buttons: a list
ELEVEN = [f"Option {n}" for n in range(1, 12)]  # over WhatsApp's 10 list rows
SHIPPED = "Order AB100001 for"
"""The start of the bot's answer to the payload `order_latest` (its title alone would not give it)."""


def ask(name: str, choices: list[str]) -> dict[str, Any]:
    step = {"name": "topic", "type": "ask", "question": "ask_topic", "answer": "choices", "attribute": "topic"}
    return {"name": name, "steps": [{**step, "choices": choices}]}


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """The server of the provider simulators and the FAQ bot (its app is set once the assets exist)."""
    server = LoopbackServer(None, threads=4).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path, loopback: LoopbackServer) -> Settings:
    """tests/config/channels.yaml with every asset sending to the simulators, and the test flows."""
    folder = tmp_path / "config"
    folder.mkdir()
    config = yaml.safe_load((CONFIG_DIR / "channels.yaml").read_text())
    url = loopback.url
    where = {"sms": "/twilio", "messenger": "/graph", "whatsapp": "/graph", "apple": "/apple"}
    for asset in config["assets"]:
        if asset["channel"] == "inapp":
            asset["delivery_url"] = f"{url}/inapp/deliver"
        else:
            asset["api_base_url"] = url + where[asset["channel"]]
    bot = {"name": "faq", "type": "bot", "url": f"{url}/bot/turn", "secret": BOT_SECRET, "timeout": 2}
    config["flows"] = [
        ask("pick", TOPICS),
        ask("long", LONG),
        ask("many", MANY),
        ask("five", FIVE),
        ask("eleven", ELEVEN),
        {"name": "faq", "steps": [bot]},
    ]
    (folder / "channels.yaml").write_text(yaml.safe_dump(config))
    return settings_for(redis_url, folder, tmp_path)


@pytest.fixture
def providers(runtime: Runtime, loopback: LoopbackServer) -> ProviderSimulators:
    sims = ProviderSimulators(runtime.config.assets, loopback.url)
    app = Flask("flow-channels-loopback")
    for prefix, blueprint in sims.blueprints():
        app.register_blueprint(blueprint, url_prefix=prefix)
    app.register_blueprint(SandboxBot().blueprint(), url_prefix="/bot")
    loopback.app = app
    return sims


@pytest.fixture
def customer(app: Flask, runtime: Runtime, providers: ProviderSimulators) -> Iterator[CustomerEmulator]:
    with serving(app) as connector:
        yield CustomerEmulator(runtime.config, connector.url, PUBLIC_BASE_URL, providers)


def run_flow(runtime: Runtime, channel: str, flow: str) -> None:
    """A UI rule, evaluated first, that sends the channel's test asset through `flow`."""
    rule = next(r for r in runtime.config.rules if r.asset == ASSETS[channel])
    raw = {
        "name": f"flow-{channel}",
        "channel": channel,
        "event": rule.event,
        "asset": ASSETS[channel],
        "action": {"forward_to": "TestRouter", "entry_point": "Support", "flow": flow},
    }
    runtime.overrides.save("rules", raw, runtime.provisioned, create=True)
    runtime.config_changed()
    names = [raw["name"], *(r.name for r in runtime.config.rules if r.name != raw["name"])]
    runtime.overrides.set_rule_order(names, runtime.config)
    runtime.config_changed()


def says(customer: CustomerEmulator, runtime: Runtime, channel: str, text: str) -> None:
    customer.send_text(ASSETS[channel], CUSTOMERS[channel], text)
    drain(runtime, channel)


def drain(runtime: Runtime, channel: str) -> None:
    drain_thread(thread_id_for(channel, ASSETS[channel], CUSTOMERS[channel]), runtime)


def received(providers: ProviderSimulators, channel: str) -> list[dict[str, Any]]:
    """The customer's texts as the provider accepted them (typing and read receipts left out; Apple
    and in-app mark the connector's own texts `system`)."""
    kinds = ("text", "system", "interactive")
    return [s for s in providers.store.sent(channel, CUSTOMERS[channel]) if s["kind"] in kinds]


def quick_replies(send: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The Graph Send API's `message.quick_replies` of a Messenger send, as the simulator got it."""
    return (send.get("request") or {}).get("message", {}).get("quick_replies")


def interactive(send: dict[str, Any]) -> tuple[str | None, list[tuple[str, str]]]:
    """A WhatsApp send's interactive type (`button`, `list`, None for plain text) and its
    (id, title) choices, as the simulator recorded them after checking WhatsApp's limits."""
    return send.get("interactive"), [(c["id"], c["title"]) for c in send.get("choices") or []]


def topic(runtime: Runtime, channel: str) -> str | None:
    thread = threads.load(runtime.redis, thread_id_for(channel, ASSETS[channel], CUSTOMERS[channel]))
    return thread.attributes.get("topic")


def numbered(titles: list[str]) -> str:
    return "\n".join(f"{n}. {title}" for n, title in enumerate(titles, 1))


# -- an ask step's choices -----------------------------------------------------------------------------


def test_messenger_gets_the_choices_as_quick_replies_and_takes_the_payload(runtime, providers, customer):
    run_flow(runtime, "messenger", "pick")
    says(customer, runtime, "messenger", "hi")
    (question,) = received(providers, "messenger")
    assert question["text"] == "What is your question about?", "no numbered lines beside the buttons"
    assert quick_replies(question) == [{"content_type": "text", "title": t, "payload": t} for t in TOPICS]

    customer.send_quick_reply(ASSETS["messenger"], CUSTOMERS["messenger"], "Order status", "Order status")
    drain(runtime, "messenger")
    assert topic(runtime, "messenger") == "Order status"


@pytest.mark.parametrize("channel", NUMBERED)
def test_channels_without_buttons_get_numbered_lines_and_take_the_number(runtime, providers, customer, channel):
    run_flow(runtime, channel, "pick")
    says(customer, runtime, channel, "hi")
    (question,) = received(providers, channel)
    assert question["text"] == "What is your question about?\n" + numbered(TOPICS)
    assert quick_replies(question) is None

    says(customer, runtime, channel, " 2 ")
    assert topic(runtime, channel) == "Order status"


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_takes_the_choice_typed_in_any_case(runtime, providers, customer, channel):
    run_flow(runtime, channel, "pick")
    says(customer, runtime, channel, "hi")
    says(customer, runtime, channel, "order STATUS")
    assert topic(runtime, channel) == "Order status"


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_number_out_of_range_is_asked_again_with_the_choices(runtime, providers, customer, channel):
    run_flow(runtime, channel, "pick")
    says(customer, runtime, channel, "hi")
    says(customer, runtime, channel, "4")
    first, again = received(providers, channel)
    assert again["text"] == first["text"] and quick_replies(again) == quick_replies(first)
    assert topic(runtime, channel) is None
    says(customer, runtime, channel, "3")
    assert topic(runtime, channel) == "Other"


@pytest.mark.parametrize(("flow", "choices"), [("long", LONG), ("many", MANY)])
def test_messenger_beyond_its_limits_gets_numbered_lines(runtime, providers, customer, flow, choices):
    """A title over 20 characters or more than 13 choices would not fit quick replies."""
    run_flow(runtime, "messenger", flow)
    says(customer, runtime, "messenger", "hi")
    (question,) = received(providers, "messenger")
    assert question["text"] == "What is your question about?\n" + numbered(choices)
    assert quick_replies(question) is None
    says(customer, runtime, "messenger", str(len(choices) - 1))
    assert topic(runtime, "messenger") == choices[-2]


def test_whatsapp_gets_up_to_three_short_choices_as_reply_buttons_and_takes_the_button_reply(
    runtime, providers, customer
):
    run_flow(runtime, "whatsapp", "pick")
    says(customer, runtime, "whatsapp", "hi")
    (question,) = received(providers, "whatsapp")
    assert question["text"] == "What is your question about?", "the question is the body, without numbers"
    assert interactive(question) == ("button", [(t, t) for t in TOPICS])

    customer.send_postback(ASSETS["whatsapp"], CUSTOMERS["whatsapp"], "Order status", "Order status")
    drain(runtime, "whatsapp")
    assert topic(runtime, "whatsapp") == "Order status"


def test_whatsapp_gets_four_to_ten_choices_as_a_list_and_takes_the_list_reply(runtime, providers, customer):
    run_flow(runtime, "whatsapp", "five")
    says(customer, runtime, "whatsapp", "hi")
    (question,) = received(providers, "whatsapp")
    assert question["text"] == "What is your question about?"
    assert interactive(question) == ("list", [(t, t) for t in FIVE])
    assert question["request"]["interactive"]["action"]["button"] == "Choose"

    customer.send_list_reply(ASSETS["whatsapp"], CUSTOMERS["whatsapp"], "Invoices", "Invoices")
    drain(runtime, "whatsapp")
    assert topic(runtime, "whatsapp") == "Invoices"


@pytest.mark.parametrize(("flow", "choices"), [("long", LONG), ("eleven", ELEVEN)])
def test_whatsapp_beyond_its_limits_gets_numbered_lines(runtime, providers, customer, flow, choices):
    """A title over 24 characters fits neither buttons nor a list row; 11 choices are over 10 rows."""
    run_flow(runtime, "whatsapp", flow)
    says(customer, runtime, "whatsapp", "hi")
    (question,) = received(providers, "whatsapp")
    assert question["kind"] == "text"
    assert question["text"] == "What is your question about?\n" + numbered(choices)
    says(customer, runtime, "whatsapp", str(len(choices) - 1))
    assert topic(runtime, "whatsapp") == choices[-2]


def test_whatsapps_declared_limits_choose_the_form(runtime):
    """The channel's capabilities alone decide: body <= 1024, buttons 1-3 (title <= 20, id <= 256),
    list rows <= 10 (title <= 24, id <= 200), unique titles and ids; else numbered text (None)."""
    channel = runtime.channel("whatsapp", ASSETS["whatsapp"])
    three = [("A", "a"), ("B", "b"), ("C", "c")]
    assert channel.choice_form("x" * 1024, three) is ChoiceForm.BUTTONS
    assert channel.choice_form("x" * 1025, three) is None, "over the interactive body's 1024 characters"
    assert channel.choice_form("q", [*three, ("D", "d")]) is ChoiceForm.MENU
    assert channel.choice_form("q", [("x" * 21, "a")]) is ChoiceForm.MENU, "over a button's 20, within a row's 24"
    assert channel.choice_form("q", [("x" * 25, "a")]) is None
    assert channel.choice_form("q", [("A", "a" * 256)]) is ChoiceForm.BUTTONS
    assert channel.choice_form("q", [*three, ("D", "d" * 201)]) is None, "a row's id holds 200"
    assert channel.choice_form("q", [("A", "a"), ("A", "b")]) is None, "a duplicate title: which was meant?"
    assert channel.choice_form("q", [(f"T{n}", str(n)) for n in range(11)]) is None
    assert runtime.channel("sms", ASSETS["sms"]).choice_form("q", three) is None


# -- a bot's buttons -----------------------------------------------------------------------------------

TOPIC_TITLES = ["Opening hours", "Order status", "Returns", "Talk to an agent"]
ORDER_TITLES = ["My latest order", "Another order"]
TOPIC_PAYLOADS = ["hours", "order_status", "returns", "agent"]
ORDER_PAYLOADS = ["order_latest", "order_other"]


def test_messenger_gets_the_bots_buttons_as_quick_replies_and_their_payloads_reach_the_bot(
    runtime, providers, customer
):
    run_flow(runtime, "messenger", "faq")
    says(customer, runtime, "messenger", "hello")
    (greeting,) = received(providers, "messenger")
    assert greeting["text"] == "Hello! What can I help you with?"
    assert [(q["title"], q["payload"]) for q in quick_replies(greeting) or []] == list(
        zip(TOPIC_TITLES, ["hours", "order_status", "returns", "agent"], strict=True)
    )

    says(customer, runtime, "messenger", "2")  # typed: the number of the button Order status
    customer.send_quick_reply(ASSETS["messenger"], CUSTOMERS["messenger"], "order_latest", "My latest order")
    drain(runtime, "messenger")
    texts = [s["text"] for s in received(providers, "messenger")]
    assert texts[1] == ORDER_QUESTION, "the number sent the payload order_status"
    assert [q["payload"] for q in quick_replies(received(providers, "messenger")[1]) or []] == [
        "order_latest",
        "order_other",
    ]
    assert texts[2].startswith(SHIPPED), "the quick reply's payload reached the bot"


@pytest.mark.parametrize("channel", NUMBERED)
def test_channels_without_buttons_get_the_bots_buttons_numbered_and_the_number_or_title_answers(
    runtime, providers, customer, channel
):
    run_flow(runtime, channel, "faq")
    says(customer, runtime, channel, "hello")
    (greeting,) = received(providers, channel)
    assert greeting["text"] == "Hello! What can I help you with?\n" + numbered(TOPIC_TITLES)

    says(customer, runtime, channel, "2")  # Order status: its payload reaches the bot
    says(customer, runtime, channel, "my latest ORDER")  # a title, in any case: the payload order_latest
    says(customer, runtime, channel, "1")  # the last answer offered no buttons: "1" is text
    texts = [s["text"] for s in received(providers, channel)]
    assert texts[1] == ORDER_QUESTION + "\n" + numbered(ORDER_TITLES)
    assert texts[2].startswith(SHIPPED), "the title sent the button's payload, not its words"
    assert texts[3] == NOT_UNDERSTOOD + "\n" + numbered(TOPIC_TITLES)
    assert all(quick_replies(s) is None for s in received(providers, channel))


def test_whatsapp_gets_the_bots_buttons_as_a_list_or_reply_buttons_and_their_ids_reach_the_bot(
    runtime, providers, customer
):
    """The greeting's four topics are a list (over 3 buttons), the order question's two are reply
    buttons; the tapped row's and button's ids are the payloads the bot gets."""
    run_flow(runtime, "whatsapp", "faq")
    says(customer, runtime, "whatsapp", "hello")
    (greeting,) = received(providers, "whatsapp")
    assert greeting["text"] == "Hello! What can I help you with?"
    assert interactive(greeting) == ("list", list(zip(TOPIC_PAYLOADS, TOPIC_TITLES, strict=True)))

    customer.send_list_reply(ASSETS["whatsapp"], CUSTOMERS["whatsapp"], "order_status", "Order status")
    drain(runtime, "whatsapp")
    order = received(providers, "whatsapp")[1]
    assert order["text"] == ORDER_QUESTION, "the row's id order_status reached the bot"
    assert interactive(order) == ("button", list(zip(ORDER_PAYLOADS, ORDER_TITLES, strict=True)))

    customer.send_postback(ASSETS["whatsapp"], CUSTOMERS["whatsapp"], "order_latest", "My latest order")
    drain(runtime, "whatsapp")
    shipped = received(providers, "whatsapp")[2]
    assert shipped["text"].startswith(SHIPPED), "the button's id reached the bot"
    assert interactive(shipped) == (None, []), "a reply without buttons is plain text"


def test_whatsapp_takes_the_number_of_a_bot_button_too(runtime, providers, customer):
    run_flow(runtime, "whatsapp", "faq")
    says(customer, runtime, "whatsapp", "hello")
    says(customer, runtime, "whatsapp", "2")  # Order status, typed instead of tapped
    assert received(providers, "whatsapp")[1]["text"] == ORDER_QUESTION


def test_a_bot_answer_to_the_number_of_opening_hours(runtime, providers, customer):
    """The number picks the button's payload (`hours`), which the bot answers with the hours."""
    run_flow(runtime, "sms", "faq")
    says(customer, runtime, "sms", "hello")
    says(customer, runtime, "sms", "1")
    assert received(providers, "sms")[-1]["text"] == HOURS
