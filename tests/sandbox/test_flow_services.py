"""The sandbox's identity service and FAQ bot (connector/sandbox/services/), over real HTTP on loopback
as `make run` mounts them on the port-8100 app (connector/sandbox/server.py), called by the
connector's own clients (connector/flows/verify.py, bot.py): the two readings of the signed contract
agree, each answer is the documented one, and the control endpoint drives every failure path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import requests

from connector.config.loader import load_config
from connector.flows.bot import BotAnswer, BotReply, ask_bot, bot_turn
from connector.flows.service import ServiceRefused, ServiceTimeout, ServiceUnavailable
from connector.flows.verify import VerificationFailed, verify, verify_request
from connector.sandbox.http import LoopbackServer
from connector.sandbox.server import ChannelSandbox, channel_sandbox
from connector.sandbox.services import BOT_SECRET, IDENTITY_SECRET, Replays
from connector.sandbox.services.bot import HOURS, NOT_UNDERSTOOD, ORDER_QUESTION, RETURNS, TOPIC_BUTTONS
from tests.sandbox import CONFIG_DIR


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ChannelSandbox, str]]:
    server = LoopbackServer(threads=8).start()
    try:
        sandbox = channel_sandbox(load_config(CONFIG_DIR), server.url, "http://127.0.0.1:9", "http://127.0.0.1:9")
        server.app = sandbox.app
        yield sandbox, server.url
    finally:
        server.stop()


@pytest.fixture
def sandbox(served: tuple[ChannelSandbox, str]) -> Iterator[ChannelSandbox]:
    yield served[0]
    served[0].identity.faults.reset()
    served[0].identity.replays.reset()
    served[0].bot.faults.reset()
    served[0].bot.forget()


@pytest.fixture
def base_url(served: tuple[ChannelSandbox, str]) -> str:
    return served[1]


def answers(**given: str) -> dict[str, object]:
    return verify_request(conversation_id="c-1", channel="inapp", locale="en", customer_id="u-1", answers=given)


def turn(text: str | None = None, *, payload: str | None = None, conversation: str = "c-1") -> dict[str, object]:
    return bot_turn(
        conversation_id=conversation, channel="inapp", locale="en", customer_id="u-1", text=text, payload=payload
    )


# -- identity service --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [{"order_number": "AB100001"}, {"order_number": " ab100001 "}, {"email": "Ana@Example.com"}],
)
def test_a_known_order_or_email_is_verified_with_the_customer_tier(
    sandbox: ChannelSandbox, base_url: str, given: dict[str, str]
) -> None:
    assert verify(f"{base_url}/identity/verify", IDENTITY_SECRET, answers(**given), timeout=5) == {
        "verified": "true",
        "customer_tier": "gold",
        "customer_name": "Ana Lima",
        "order_number": "AB100001",
    }


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ({"order_number": "ZZ999999"}, "no customer with order ZZ999999"),
        ({"email": "nobody@example.com"}, "no customer with email nobody@example.com"),
        ({}, "no order number or email was given"),
    ],
)
def test_an_unknown_customer_is_refused_with_a_reason(
    sandbox: ChannelSandbox, base_url: str, given: dict[str, str], reason: str
) -> None:
    with pytest.raises(VerificationFailed) as failed:
        verify(f"{base_url}/identity/verify", IDENTITY_SECRET, answers(**given), timeout=5)
    assert failed.value.reason == reason


def test_a_call_signed_with_another_secret_is_refused_401(sandbox: ChannelSandbox, base_url: str) -> None:
    with pytest.raises(ServiceRefused) as refused:
        verify(f"{base_url}/identity/verify", "not-the-secret", answers(order_number="AB100001"), timeout=5)
    assert refused.value.status == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Connector-Timestamp": "1", "X-Connector-Signature": "sha256=00"},
        {"X-Connector-Timestamp": "{now}", "X-Connector-Signature": "sha256=00"},
    ],
)
@pytest.mark.parametrize("path", ["/identity/verify", "/bot/turn"])
def test_unsigned_stale_or_wrong_signatures_are_401(
    sandbox: ChannelSandbox, base_url: str, path: str, headers: dict[str, str]
) -> None:
    headers = {k: v.replace("{now}", str(int(time.time()))) for k, v in headers.items()}
    answer = requests.post(f"{base_url}{path}", json={"answers": {}, "message": {}}, headers=headers, timeout=5)
    assert answer.status_code == 401


def test_the_identity_service_down_is_503_and_up_again(sandbox: ChannelSandbox, base_url: str) -> None:
    url = f"{base_url}/identity/verify"
    assert requests.post(f"{base_url}/identity/control", json={"down": True}, timeout=5).json()["down"] is True
    with pytest.raises(ServiceUnavailable, match="identity service: HTTP 503") as error:
        verify(url, IDENTITY_SECRET, answers(order_number="AB100001"), timeout=5)
    assert error.value.outage
    requests.post(f"{base_url}/identity/control", json={"down": False}, timeout=5)
    assert verify(url, IDENTITY_SECRET, answers(order_number="AB100001"), timeout=5)["customer_tier"] == "gold"


def test_a_slow_identity_service_times_out(sandbox: ChannelSandbox, base_url: str) -> None:
    requests.post(f"{base_url}/identity/control", json={"delay_seconds": 1.0}, timeout=5)
    began = time.monotonic()
    with pytest.raises(ServiceTimeout, match=re.escape("identity service: no answer within 0.3 s")):
        verify(f"{base_url}/identity/verify", IDENTITY_SECRET, answers(order_number="AB100001"), timeout=0.3)
    assert time.monotonic() - began < 0.9


def test_injected_throttling_carries_its_retry_after(sandbox: ChannelSandbox, base_url: str) -> None:
    control = {"fail_next": {"count": 1, "status": 429, "retry_after": 4}}
    requests.post(f"{base_url}/identity/control", json=control, timeout=5)
    with pytest.raises(ServiceUnavailable) as error:
        verify(f"{base_url}/identity/verify", IDENTITY_SECRET, answers(order_number="AB100002"), timeout=5)
    assert (error.value.wait, error.value.outage) == (4.0, False)
    assert (
        verify(f"{base_url}/identity/verify", IDENTITY_SECRET, answers(order_number="AB100002"), timeout=5)[
            "customer_tier"
        ]
        == "silver"
    )
    assert requests.get(f"{base_url}/identity/control", timeout=5).json()["calls"] == 2


@pytest.mark.parametrize(
    "body",
    [
        {"delay_seconds": 61},
        {"delay_seconds": "slow"},
        {"fail_next": {"status": 200}},
        {"fail_next": {"status": 503, "count": -1}},
        ["down"],
    ],
)
def test_the_control_endpoint_refuses_bad_values(sandbox: ChannelSandbox, base_url: str, body: object) -> None:
    for path in ("/identity/control", "/bot/control"):
        assert requests.post(f"{base_url}{path}", json=body, timeout=5).status_code == 400


SHIPPED = "has shipped and arrives within 2 working days."


# -- FAQ bot -----------------------------------------------------------------------------------


def ask(base_url: str, message: dict[str, object], timeout: float = 5) -> BotAnswer:
    return ask_bot("connector", f"{base_url}/bot/turn", BOT_SECRET, message, timeout=timeout)


@pytest.mark.parametrize(
    ("said", "text"),
    [
        (turn("What are your opening hours?"), HOURS),
        (turn(payload="hours"), HOURS),
        (turn("Can I get a refund?"), RETURNS),
        (turn(payload="returns"), RETURNS),
        (turn("Where is order ab100002?"), f"Order AB100002 for Ben Weber {SHIPPED}"),
        (turn(payload="order_latest"), f"Order AB100001 for Ana Lima {SHIPPED}"),
        (turn("status of ZZ000000"), "I cannot find order ZZ000000."),
    ],
)
def test_the_bot_answers_its_faq(sandbox: ChannelSandbox, base_url: str, said: dict[str, object], text: str) -> None:
    answer = ask(base_url, said)
    assert answer.replies == (BotReply(text=text),)
    assert answer.handover is None


def test_order_status_offers_buttons(sandbox: ChannelSandbox, base_url: str) -> None:
    answer = ask(base_url, turn("where is my order"))
    assert answer.replies == (
        BotReply(text=ORDER_QUESTION, buttons=(("My latest order", "order_latest"), ("Another order", "order_other"))),
    )


def test_an_unknown_question_answers_i_did_not_get_that_with_the_topics(sandbox: ChannelSandbox, base_url: str) -> None:
    answer = ask(base_url, turn("blorp"))
    assert answer.replies == (
        BotReply(text=NOT_UNDERSTOOD, buttons=tuple((b["title"], b["payload"]) for b in TOPIC_BUTTONS)),
    )
    assert NOT_UNDERSTOOD.startswith("I did not get that")


@pytest.mark.parametrize(
    "said", [turn("I want a human please", conversation="c-9"), turn(payload="agent", conversation="c-9")]
)
def test_agent_or_human_hands_over_with_a_summary_of_the_conversation(
    sandbox: ChannelSandbox, base_url: str, said: dict[str, object]
) -> None:
    ask(base_url, turn("opening hours?", conversation="c-9"))
    ask(base_url, turn("where is my order", conversation="c-9"))
    ask(base_url, turn("what are your hours again", conversation="c-other"))
    answer = ask(base_url, said)
    assert answer.handover is not None
    assert answer.handover.entry_point is None
    assert answer.handover.summary is not None
    assert answer.handover.summary.startswith("The customer asked the bot about: opening hours, order status; then")
    assert answer.handover.attributes == {"bot_topics": "opening hours, order status"}
    assert answer.replies[0].text is not None and "agent" in answer.replies[0].text


def test_the_bot_down_slow_or_with_a_wrong_secret_fails_the_way_the_engine_hands_over_on(
    sandbox: ChannelSandbox, base_url: str
) -> None:
    requests.post(f"{base_url}/bot/control", json={"down": True}, timeout=5)
    with pytest.raises(ServiceUnavailable, match="bot: HTTP 503"):
        ask(base_url, turn("hi"))
    requests.post(f"{base_url}/bot/control", json={"down": False, "delay_seconds": 1}, timeout=5)
    with pytest.raises(ServiceTimeout, match=re.escape("bot: no answer within 0.3 s")):
        ask(base_url, turn("hi"), timeout=0.3)
    requests.post(f"{base_url}/bot/control/reset", timeout=5)
    with pytest.raises(ServiceRefused) as refused:
        ask_bot("connector", f"{base_url}/bot/turn", "wrong-secret", turn("hi"), timeout=5)
    assert refused.value.status == 401
    assert ask(base_url, turn("hi")).replies[0].text == "Hello! What can I help you with?"


# -- idempotency keys ----------------------------------------------------------------------------


def test_identity_service_answers_a_repeated_key_from_memory(sandbox: ChannelSandbox, base_url: str) -> None:
    """The same key with other answers still gets the first answer: the service verified once."""
    url = f"{base_url}/identity/verify"
    first = verify(url, IDENTITY_SECRET, answers(order_number="AB100001"), timeout=5, idempotency_key="k-1")
    again = verify(url, IDENTITY_SECRET, answers(order_number="AB100002"), timeout=5, idempotency_key="k-1")
    other = verify(url, IDENTITY_SECRET, answers(order_number="AB100002"), timeout=5, idempotency_key="k-2")
    assert first == again and first["customer_tier"] == "gold"
    assert other["customer_tier"] == "silver", "another key is acted on"
    assert sandbox.identity.faults.keys() == ["k-1", "k-1", "k-2"], "each call's header, as received"
    assert sandbox.identity.replays.acted() == ["k-1", "k-2"] and sandbox.identity.replays.replayed == 1


def test_bot_answers_a_repeated_key_without_moving_the_conversation_on(sandbox: ChannelSandbox, base_url: str) -> None:
    """The repeat gets the first reply, and its (different) text never reaches the bot's memory: the
    handover summary names only the topic of the first call."""
    first = ask_bot("connector", f"{base_url}/bot/turn", BOT_SECRET, turn("returns?"), timeout=5, idempotency_key="t-1")
    again = ask_bot(
        "connector", f"{base_url}/bot/turn", BOT_SECRET, turn("when are you open?"), timeout=5, idempotency_key="t-1"
    )
    assert first == again == BotAnswer(replies=(BotReply(RETURNS),))
    handover = ask_bot("connector", f"{base_url}/bot/turn", BOT_SECRET, turn("agent"), timeout=5, idempotency_key="t-2")
    assert handover.handover is not None and handover.handover.attributes == {"bot_topics": "returns"}
    assert sandbox.bot.replays.acted() == ["t-1", "t-2"]


def test_calls_without_a_key_are_each_acted_on(sandbox: ChannelSandbox, base_url: str) -> None:
    url = f"{base_url}/identity/verify"
    assert verify(url, IDENTITY_SECRET, answers(order_number="AB100001"), timeout=5)["customer_tier"] == "gold"
    assert verify(url, IDENTITY_SECRET, answers(order_number="AB100002"), timeout=5)["customer_tier"] == "silver"
    assert sandbox.identity.faults.keys() == [None, None] and sandbox.identity.replays.acted() == []


def test_a_key_is_forgotten_after_its_time() -> None:
    replays, answers_made = Replays(seconds=0.05), iter(range(10))
    assert replays.answer("k", lambda: next(answers_made)) == 0
    assert replays.answer("k", lambda: next(answers_made)) == 0
    time.sleep(0.1)
    assert replays.answer("k", lambda: next(answers_made)) == 1, "kept a few minutes, not forever"
    assert replays.acted() == ["k", "k"]
