"""The `bot` step's client (connector/flows/bot.py) against `responses`: our signed contract and
Rasa's REST channel, each answer read into BotAnswer or refused with what is wrong
(docs/protocols/bots.md). Transport failures are shared with verify (tests/flows/test_verify.py);
here each is checked once more through ask_bot, as the engine calls it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses

from connector.errors import PermanentError, RetryableError
from connector.flows.bot import BotAnswer, BotReply, Handover, ask_bot, bot_turn
from connector.flows.service import InvalidAnswer, ServiceRefused, ServiceTimeout, ServiceUnavailable
from tests.flows.test_verify import signed_by

URL = "https://bot.example.test/turn"
RASA_URL = "http://rasa.example.test:5005/webhooks/rest/webhook"
SECRET = "bot-secret"
TURN = bot_turn(
    conversation_id="c-7",
    channel="messenger",
    locale="es",
    customer_id="6781234567890123",
    customer_name="Lucía",
    attributes={"customer_tier": "gold"},
    text="¿Dónde está mi pedido?",
)
BUTTON_TURN = bot_turn(
    conversation_id="c-7", channel="sms", locale="en", customer_id="+15551230001", payload="order_status"
)


def test_a_turn_is_the_documented_request() -> None:
    assert TURN == {
        "conversation_id": "c-7",
        "channel": "messenger",
        "locale": "es",
        "customer": {"id": "6781234567890123", "name": "Lucía"},
        "attributes": {"customer_tier": "gold"},
        "message": {"text": "¿Dónde está mi pedido?"},
    }
    assert BUTTON_TURN["customer"] == {"id": "+15551230001"}
    assert BUTTON_TURN["message"] == {"payload": "order_status"}


@responses.activate
def test_the_connector_contract_is_signed_and_its_replies_and_buttons_read() -> None:
    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        assert signed_by(request, SECRET)
        assert json.loads(request.body or b"") == TURN
        return (
            200,
            {},
            json.dumps(
                {
                    "messages": [
                        {"text": "¿Cuál pedido?", "buttons": [{"title": "El último", "payload": "order_latest"}]},
                        {"buttons": [{"title": "Otro", "payload": "order_other"}]},
                    ]
                }
            ),
        )

    responses.add_callback(responses.POST, URL, callback=answer)

    assert ask_bot("connector", URL, SECRET, TURN, timeout=2) == BotAnswer(
        replies=(
            BotReply(text="¿Cuál pedido?", buttons=(("El último", "order_latest"),)),
            BotReply(text=None, buttons=(("Otro", "order_other"),)),
        ),
        handover=None,
    )


@responses.activate
def test_the_bot_hands_over_with_entry_point_attributes_and_summary() -> None:
    responses.add(
        responses.POST,
        URL,
        json={
            "messages": [{"text": "Un agente le atenderá."}],
            "handover": {"entry_point": "Billing", "attributes": {"topic": "refund", "vip": True}, "summary": "S"},
        },
    )
    answer = ask_bot("connector", URL, SECRET, TURN, timeout=2)
    assert answer.replies == (BotReply(text="Un agente le atenderá."),)
    assert answer.handover == Handover(
        entry_point="Billing", attributes={"topic": "refund", "vip": "true"}, summary="S"
    )


@responses.activate
def test_an_empty_handover_and_no_messages_are_valid() -> None:
    responses.add(responses.POST, URL, json={"handover": {}})
    assert ask_bot("connector", URL, SECRET, TURN, timeout=2) == BotAnswer(replies=(), handover=Handover())


def test_the_connector_contract_needs_a_secret() -> None:
    with pytest.raises(PermanentError, match="set the step's secret"):
        ask_bot("connector", URL, None, TURN, timeout=2)


def test_an_unknown_kind_is_permanent() -> None:
    with pytest.raises(PermanentError, match="unknown kind 'dialogflow'; use one of connector, rasa"):
        ask_bot("dialogflow", URL, SECRET, TURN, timeout=2)


REPLY = {"text": "ok"}
BUTTON = {"title": "Yes", "payload": "yes"}


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ([], "bot: the answer must be a JSON object"),
        ({"messages": [REPLY], "extra": 1}, "bot: the answer has unknown field(s) extra; expected handover, messages"),
        ({"messages": {"text": "x"}}, "bot: messages must be a list"),
        ({"messages": [REPLY] * 11}, "bot: 11 messages in one answer; at most 10"),
        ({"messages": ["hello"]}, "bot: messages[0] must be an object"),
        ({"messages": [{}]}, "bot: messages[0] has neither text nor buttons"),
        ({"messages": [{"text": ""}]}, "bot: messages[0].text must be non-empty text"),
        ({"messages": [{"text": 5}]}, "bot: messages[0].text must be non-empty text"),
        ({"messages": [{"text": "x" * 4097}]}, "bot: messages[0].text is 4097 characters; at most 4096"),
        ({"messages": [REPLY, {"text": "a", "image": "u"}]}, "bot: messages[1] has unknown field(s) image"),
        ({"messages": [{"text": "a", "buttons": "yes"}]}, "bot: messages[0].buttons must be a list"),
        ({"messages": [{"text": "a", "buttons": [BUTTON] * 11}]}, "bot: messages[0].buttons has 11 buttons; at most"),
        ({"messages": [{"buttons": [{"title": "Yes"}]}]}, "bot: messages[0].buttons[0] needs a title and a payload"),
        ({"messages": [{"buttons": [{"title": "x" * 81, "payload": "p"}]}]}, "bot: messages[0].buttons[0].title is 81"),
        ({"messages": [{"buttons": [{**BUTTON, "url": "u"}]}]}, "bot: messages[0].buttons[0] has unknown field(s) url"),
        ({"handover": True}, "bot: handover must be an object"),
        ({"handover": {"queue": "x"}}, "bot: handover has unknown field(s) queue"),
        ({"handover": {"attributes": "vip"}}, "bot: handover.attributes must be an object"),
        ({"handover": {"summary": "x" * 4001}}, "bot: handover.summary is 4001 characters; at most 4000"),
        ({"handover": {"entry_point": 3}}, "bot: handover.entry_point must be non-empty text"),
    ],
)
@responses.activate
def test_a_malformed_answer_is_permanent_and_names_what_is_wrong(answer: Any, says: str) -> None:
    responses.add(responses.POST, URL, json=answer)
    with pytest.raises(InvalidAnswer) as error:
        ask_bot("connector", URL, SECRET, TURN, timeout=2)
    assert isinstance(error.value, PermanentError)
    assert error.value.reason.startswith(says)


@pytest.mark.parametrize(
    ("failure", "error_type", "retryable"),
    [
        ({"body": requests.ReadTimeout("slow")}, ServiceTimeout, True),
        ({"body": requests.ConnectionError("refused")}, ServiceUnavailable, True),
        ({"status": 502}, ServiceUnavailable, True),
        ({"status": 429, "headers": {"Retry-After": "2"}}, ServiceUnavailable, True),
        ({"status": 401}, ServiceRefused, False),
        ({"status": 200, "body": "<html>"}, InvalidAnswer, False),
    ],
)
@responses.activate
def test_each_failure_says_which_so_the_engine_can_hand_over(
    failure: dict[str, Any], error_type: type[Exception], retryable: bool
) -> None:
    responses.add(responses.POST, URL, **failure)
    with pytest.raises(error_type) as error:
        ask_bot("connector", URL, SECRET, TURN, timeout=2)
    assert isinstance(error.value, RetryableError) is retryable
    assert str(error.value).startswith("bot: ")


# -- Rasa's REST channel -----------------------------------------------------------------------


@responses.activate
def test_rasa_gets_sender_and_message_and_its_messages_become_replies() -> None:
    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        assert json.loads(request.body or b"") == {"sender": "c-7", "message": "¿Dónde está mi pedido?"}
        assert "X-Connector-Signature" not in request.headers  # no secret: Rasa's REST channel checks none
        return (
            200,
            {},
            json.dumps(
                [
                    {"recipient_id": "c-7", "text": "¿Cuál pedido?"},
                    {
                        "recipient_id": "c-7",
                        "text": "Elija:",
                        "buttons": [{"title": "El último", "payload": "/order_latest", "type": "postback"}],
                    },
                    {"recipient_id": "c-7", "image": "https://example.test/map.png"},
                    {"recipient_id": "c-7", "custom": {"slack": {"blocks": []}}},
                ]
            ),
        )

    responses.add_callback(responses.POST, RASA_URL, callback=answer)

    assert ask_bot("rasa", RASA_URL, None, TURN, timeout=2) == BotAnswer(
        replies=(
            BotReply(text="¿Cuál pedido?"),
            BotReply(text="Elija:", buttons=(("El último", "/order_latest"),)),
            BotReply(text="https://example.test/map.png"),
        ),
        handover=None,
    )


@responses.activate
def test_rasa_sends_a_button_payload_as_the_message_and_signs_when_given_a_secret() -> None:
    responses.add(responses.POST, RASA_URL, json=[])
    assert ask_bot("rasa", RASA_URL, SECRET, BUTTON_TURN, timeout=2) == BotAnswer(replies=())
    request = responses.calls[0].request
    assert json.loads(request.body or b"") == {"sender": "c-7", "message": "order_status"}
    assert signed_by(request, SECRET)


@responses.activate
def test_rasa_hands_over_through_a_custom_payload() -> None:
    responses.add(
        responses.POST,
        RASA_URL,
        json=[
            {"recipient_id": "c-7", "text": "Le paso con un agente."},
            {"recipient_id": "c-7", "custom": {"handover": {"entry_point": "Soporte", "summary": "pedido A1001"}}},
        ],
    )
    answer = ask_bot("rasa", RASA_URL, None, TURN, timeout=2)
    assert answer.replies == (BotReply(text="Le paso con un agente."),)
    assert answer.handover == Handover(entry_point="Soporte", summary="pedido A1001")


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"text": "hi"}, "Rasa bot: the answer must be a JSON list of messages"),
        (["hi"], "Rasa bot: [0] must be an object"),
        ([{"text": 3}], "Rasa bot: [0].text must be non-empty text"),
        ([{"text": "a", "buttons": [{"title": "t"}]}], "Rasa bot: [0].buttons[0] needs a title and a payload"),
        ([{"custom": {"handover": "now"}}], "Rasa bot: [0].custom.handover must be an object"),
        ([{"text": "a"}] * 11, "Rasa bot: 11 messages in one answer; at most 10"),
    ],
)
@responses.activate
def test_a_malformed_rasa_answer_is_permanent(answer: Any, says: str) -> None:
    responses.add(responses.POST, RASA_URL, json=answer)
    with pytest.raises(InvalidAnswer) as error:
        ask_bot("rasa", RASA_URL, None, TURN, timeout=2)
    assert error.value.reason.startswith(says)


@responses.activate
def test_a_rasa_timeout_is_a_timeout() -> None:
    responses.add(responses.POST, RASA_URL, body=requests.ReadTimeout("slow"))
    with pytest.raises(ServiceTimeout, match="Rasa bot: no answer within 2 s"):
        ask_bot("rasa", RASA_URL, None, TURN, timeout=2)
