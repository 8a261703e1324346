"""The `verify` and `bot` steps in a flow's YAML: validated, and their secrets never shown."""

from __future__ import annotations

import pytest
from marshmallow import ValidationError

from connector.config import schemas
from connector.config.overrides import MASK, keep_secrets, masked
from connector.flows.definition import BotStep, VerifyStep

VERIFY = {"name": "check", "type": "verify", "url": "https://id.example.com/verify", "secret": "s" * 20}
BOT = {"name": "faq", "type": "bot", "url": "https://bot.example.com/turn", "secret": "b" * 20}


def test_steps_load_with_their_defaults() -> None:
    flow = schemas.FlowSchema().load({"name": "f", "steps": [VERIFY, BOT]})
    verify, bot = flow.steps
    assert isinstance(verify, VerifyStep) and verify.timeout == 5.0 and verify.failed is None
    assert isinstance(bot, BotStep) and (bot.kind, bot.tries, bot.keyword) == ("connector", 2, "agent")


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({**BOT, "secret": None}, "secret"),  # our contract is signed
        ({**BOT, "kind": "dialogflow"}, "kind"),
        ({**VERIFY, "url": "not a url"}, "url"),
        ({**VERIFY, "secret": "short"}, "secret"),
        ({**VERIFY, "timeout": 0}, "timeout"),
        ({**BOT, "tries": 0}, "tries"),
    ],
)
def test_bad_steps_name_the_field(step: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        schemas.FlowSchema().load({"name": "f", "steps": [step]})
    assert field in caught.value.messages["steps"][0]


def test_a_rasa_bot_needs_no_secret() -> None:
    flow = schemas.FlowSchema().load({"name": "f", "steps": [{**BOT, "kind": "rasa", "secret": None}]})
    assert flow.steps[0].secret is None


def test_secrets_are_masked_kept_and_never_in_a_repr() -> None:
    raw = {"name": "f", "steps": [VERIFY, BOT, {"name": "q", "type": "language"}]}
    shown = masked("flows", raw)
    assert [s.get("secret") for s in shown["steps"]] == [MASK, MASK, None]
    back = keep_secrets("flows", raw, shown)
    assert back["steps"][0]["secret"] == "s" * 20 and back["steps"][1]["secret"] == "b" * 20
    flow = schemas.FlowSchema().load(raw)
    assert "s" * 20 not in repr(flow) and "b" * 20 not in repr(flow)
