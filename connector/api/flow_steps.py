"""The flow step kinds in the OpenAPI document: each kind a component of its own (`AskStep`, `BotStep`,
...) built from STEP_SCHEMAS, so a kind added there is documented without a change here, and a flow's
`steps` listed as one of them. The bot step's component summarises the chatbot contract, whose source
is docs/protocols/bots.md (the README and the flows API's description point there too).
"""

from __future__ import annotations

import copy
from typing import Any

from apispec import APISpec
from marshmallow import fields

from connector.config.schemas import STEP_SCHEMAS, FlowSchema

BOT_CONTRACT = """A `bot` step hands the conversation to an external chatbot (the full contract, with \
examples: docs/protocols/bots.md).

Kind `connector`, our contract: each customer message is one `POST <url>` of JSON \
`{conversation_id, channel, locale, customer: {id, name?}, attributes, message: {text} or {payload}}`, \
signed with the headers `X-Connector-Timestamp` (unix seconds) and `X-Connector-Signature: \
sha256=<lowercase hex of HMAC-SHA256(secret, timestamp + "." + raw body)>`; the bot checks the \
signature over the raw bytes, refuses more than 5 minutes of clock skew and answers 401 to a bad one.

The bot answers `{messages: [{text?, buttons?: [{title, payload}]}], handover?: {entry_point?, \
attributes?, summary?}}`: at most 10 messages of 10 buttons each, shown as the channel's buttons where \
it has them (Messenger quick replies; WhatsApp reply buttons or a list) and as numbered text elsewhere. \
Each call carries `X-Connector-Idempotency-Key`, the same when a call is made again after a worker died. \
`handover` passes the conversation to an agent, with \
the transcript and the summary; the customer hands over by typing `keyword`, and a bot that fails or \
does not answer after `tries` calls hands over too.

Kind `rasa`: Rasa's REST channel (`{sender, message}`, unsigned); a Rasa bot hands over with a custom \
payload `{handover: {...}}`."""
"""The bot step's description in the OpenAPI document."""

STEP_DESCRIPTIONS = {"bot": BOT_CONTRACT}
"""What the document says of a step kind besides its fields."""


def step_component(kind: str) -> str:
    """A step kind's component name (`bot` → `BotStep`)."""
    return f"{kind.capitalize()}Step"


def document(spec: APISpec) -> None:
    """Register each step kind's schema as a component; `Flow.steps` names them as its choices."""
    for kind, schema in STEP_SCHEMAS.items():
        extra = {"description": STEP_DESCRIPTIONS[kind]} if kind in STEP_DESCRIPTIONS else {}
        spec.components.schema(step_component(kind), extra, schema=schema)


def _documented_steps() -> fields.List[Any]:
    """FlowSchema's `steps`, each item documented as one of the step kinds' components."""
    steps = copy.deepcopy(FlowSchema._declared_fields["steps"])
    assert isinstance(steps, fields.List)
    choices = [{"$ref": f"#/components/schemas/{step_component(kind)}"} for kind in STEP_SCHEMAS]
    steps.inner.metadata = {**steps.inner.metadata, "oneOf": choices}
    return steps


class Flow(FlowSchema):
    """A flow as a request sends it: FlowSchema with its steps documented by kind. For the document
    only: the config store loads every body with FlowSchema."""

    steps = _documented_steps()
