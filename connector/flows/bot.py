"""The `bot` step's call: one customer message to the operator's chatbot, its replies and its handover
(docs/protocols/bots.md).

Two wire formats, one answer type:

- `connector`: our signed JSON contract. Request {"conversation_id", "channel", "locale",
  "customer": {"id", "name"?}, "attributes": {...}, "message": {"text"?, "payload"?}}; answer
  {"messages": [{"text"?, "buttons"?: [{"title", "payload"}]}], "handover"?: {"entry_point"?,
  "attributes"?, "summary"?}}, validated strictly.
- `rasa`: Rasa's REST channel. Request {"sender", "message"}; answer [{"recipient_id", "text"?,
  "buttons"?, "image"?, "attachment"?, "custom"?}]; a message whose `custom` holds {"handover": ...}
  hands over (Rasa itself has no handover field).

A malformed answer is InvalidAnswer (a PermanentError naming what is wrong), a timeout ServiceTimeout,
a failure ServiceUnavailable or ServiceRefused: the engine hands over on each and says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.errors import PermanentError
from connector.flows.service import InvalidAnswer, answer_attributes, post_json

BOT_KINDS = ("connector", "rasa")
MAX_REPLIES = 10
"""Replies per answer: a bot that sends more is broken, and the customer would be flooded."""
MAX_TEXT_CHARS = 4096
"""Per reply (WhatsApp's limit; the relay splits further for channels with less)."""
MAX_BUTTONS = 10
"""Per reply: WhatsApp list messages take 10, Messenger quick replies 13; more is numbered text anyway."""
MAX_TITLE_CHARS = 80
MAX_PAYLOAD_CHARS = 1000
MAX_SUMMARY_CHARS = 4000
MAX_ENTRY_POINT_CHARS = 200


@dataclass(frozen=True)
class BotReply:
    """One message to the customer: text, buttons (title, payload), or both."""

    text: str | None
    buttons: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Handover:
    """The bot is done: route to `entry_point` (None: the flow's own) with these attributes and summary."""

    entry_point: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    summary: str | None = None


@dataclass(frozen=True)
class BotAnswer:
    replies: tuple[BotReply, ...]
    handover: Handover | None = None


def bot_turn(
    *,
    conversation_id: str,
    channel: str,
    locale: str,
    customer_id: str,
    customer_name: str | None = None,
    attributes: Mapping[str, str] | None = None,
    text: str | None = None,
    payload: str | None = None,
) -> dict[str, Any]:
    """Our contract's request for one customer message (a typed text, or a button's payload)."""
    customer: dict[str, str] = {"id": customer_id}
    if customer_name:
        customer["name"] = customer_name
    message: dict[str, str] = {}
    if text is not None:
        message["text"] = text
    if payload is not None:
        message["payload"] = payload
    return {
        "conversation_id": conversation_id,
        "channel": channel,
        "locale": locale,
        "customer": customer,
        "attributes": dict(attributes or {}),
        "message": message,
    }


def ask_bot(
    kind: str,
    url: str,
    secret: str | None,
    turn: Mapping[str, Any],
    *,
    timeout: float,
    idempotency_key: str | None = None,
) -> BotAnswer:
    """Send one turn (built by `bot_turn`) to the bot and return what it answered.

    `secret` signs the request (X-Connector-Timestamp / X-Connector-Signature); our contract needs
    one, Rasa's REST channel checks none, so there it is optional. `idempotency_key`
    (service.idempotency_key) travels as X-Connector-Idempotency-Key in both formats.
    """
    key = idempotency_key
    if kind == "connector":
        if not secret:
            raise PermanentError("bot: the connector contract is signed: set the step's secret")
        return parse_answer(post_json("bot", url, turn, secret=secret, timeout=timeout, idempotency_key=key))
    if kind == "rasa":
        raw = post_json("Rasa bot", url, rasa_request(turn), secret=secret, timeout=timeout, idempotency_key=key)
        return parse_rasa(raw)
    raise PermanentError(f"bot: unknown kind {kind!r}; use one of {', '.join(BOT_KINDS)}")


# -- our contract ------------------------------------------------------------------------------


def parse_answer(answer: Any) -> BotAnswer:
    """Our contract's answer, every field checked; InvalidAnswer names the first thing wrong."""
    if not isinstance(answer, dict):
        raise InvalidAnswer("bot: the answer must be a JSON object with messages and/or handover")
    _only(answer, {"messages", "handover"}, "bot: the answer")
    messages = answer.get("messages", [])
    if not isinstance(messages, list):
        raise InvalidAnswer("bot: messages must be a list")
    if len(messages) > MAX_REPLIES:
        raise InvalidAnswer(f"bot: {len(messages)} messages in one answer; at most {MAX_REPLIES}")
    replies = tuple(_reply(item, f"bot: messages[{i}]") for i, item in enumerate(messages))
    handover = answer.get("handover")
    return BotAnswer(replies=replies, handover=None if handover is None else _handover(handover, "bot: handover"))


def _reply(raw: Any, where: str) -> BotReply:
    if not isinstance(raw, dict):
        raise InvalidAnswer(f"{where} must be an object with text and/or buttons")
    _only(raw, {"text", "buttons"}, where)
    text = _text(raw.get("text"), f"{where}.text", MAX_TEXT_CHARS)
    buttons = _buttons(raw.get("buttons"), f"{where}.buttons")
    if text is None and not buttons:
        raise InvalidAnswer(f"{where} has neither text nor buttons")
    return BotReply(text=text, buttons=buttons)


def _buttons(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidAnswer(f"{where} must be a list of {{title, payload}}")
    if len(raw) > MAX_BUTTONS:
        raise InvalidAnswer(f"{where} has {len(raw)} buttons; at most {MAX_BUTTONS}")
    out = []
    for i, button in enumerate(raw):
        if not isinstance(button, dict):
            raise InvalidAnswer(f"{where}[{i}] must be an object with title and payload")
        _only(button, {"title", "payload"}, f"{where}[{i}]")
        title = _text(button.get("title"), f"{where}[{i}].title", MAX_TITLE_CHARS)
        payload = _text(button.get("payload"), f"{where}[{i}].payload", MAX_PAYLOAD_CHARS)
        if title is None or payload is None:
            raise InvalidAnswer(f"{where}[{i}] needs a title and a payload")
        out.append((title, payload))
    return tuple(out)


def _handover(raw: Any, where: str) -> Handover:
    if not isinstance(raw, dict):
        raise InvalidAnswer(f"{where} must be an object (entry_point?, attributes?, summary?)")
    _only(raw, {"entry_point", "attributes", "summary"}, where)
    return Handover(
        entry_point=_text(raw.get("entry_point"), f"{where}.entry_point", MAX_ENTRY_POINT_CHARS),
        attributes=answer_attributes(raw.get("attributes"), where=f"{where}.attributes"),
        summary=_text(raw.get("summary"), f"{where}.summary", MAX_SUMMARY_CHARS),
    )


def _only(raw: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidAnswer(f"{where} has unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")


def _text(raw: Any, where: str, limit: int) -> str | None:
    """None when absent; otherwise non-blank text of at most `limit` characters."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidAnswer(f"{where} must be non-empty text")
    if len(raw) > limit:
        raise InvalidAnswer(f"{where} is {len(raw)} characters; at most {limit}")
    return raw


# -- Rasa's REST channel -----------------------------------------------------------------------


def rasa_request(turn: Mapping[str, Any]) -> dict[str, str]:
    """{"sender", "message"}: the conversation is the sender, so a new conversation of the same
    customer starts a fresh Rasa tracker; a button's payload is sent as the message, as Rasa's own
    widgets do (payloads such as "/intent" are Rasa's)."""
    message = turn.get("message") or {}
    return {"sender": str(turn["conversation_id"]), "message": str(message.get("payload") or message.get("text") or "")}


def parse_rasa(answer: Any) -> BotAnswer:
    """Rasa's list of bot messages. `text` and `buttons` are replies; an `image` or `attachment` URL is
    sent as text; `custom: {"handover": {...}}` hands over, other `custom` payloads (for other Rasa
    channels) are skipped."""
    if not isinstance(answer, list):
        raise InvalidAnswer("Rasa bot: the answer must be a JSON list of messages")
    replies: list[BotReply] = []
    handover: Handover | None = None
    for i, item in enumerate(answer):
        where = f"Rasa bot: [{i}]"
        if not isinstance(item, dict):
            raise InvalidAnswer(f"{where} must be an object")
        text = _text(item.get("text"), f"{where}.text", MAX_TEXT_CHARS)
        buttons = _buttons(_rasa_buttons(item.get("buttons")), f"{where}.buttons")
        if text is not None or buttons:
            replies.append(BotReply(text=text, buttons=buttons))
        for key in ("image", "attachment"):
            url = item.get(key)
            if isinstance(url, str) and url.strip():
                replies.append(BotReply(text=_text(url, f"{where}.{key}", MAX_TEXT_CHARS)))
        custom = item.get("custom")
        if isinstance(custom, dict) and "handover" in custom:
            handover = _handover(custom["handover"], f"{where}.custom.handover")
    if len(replies) > MAX_REPLIES:
        raise InvalidAnswer(f"Rasa bot: {len(replies)} messages in one answer; at most {MAX_REPLIES}")
    return BotAnswer(replies=tuple(replies), handover=handover)


def _rasa_buttons(raw: Any) -> Any:
    """Rasa's buttons as our contract's: only title and payload count (Rasa adds e.g. `type`)."""
    if not isinstance(raw, list):
        return raw
    return [{k: v for k, v in b.items() if k in ("title", "payload")} if isinstance(b, dict) else b for b in raw]
