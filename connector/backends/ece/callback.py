"""`POST /ece/<integration>/callback`: ECE's asynchronous messaging webhook
(docs/protocols/ece.md, "Callback webhook").

Authenticate per the integration (none / basic / bearer, constant-time) → validate the batch
(1 to 1000 events) → order it → dedupe by event id → append each event to its thread's outbox →
200. Nothing here calls a channel: the answer goes back once the events are durably in Redis. An
event for a conversation the connector does not know is acknowledged and logged, so ECE does not
retry it forever; a malformed batch is refused whole (400, naming the item), so ECE keeps it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from redis.exceptions import RedisError

from connector import json_input
from connector.backends import outbox
from connector.backends.ece.events import agent_event
from connector.config.model import Integration
from connector.errors import (
    BodyTooLarge,
    MissingSignature,
    PayloadError,
    SignatureError,
    UnknownAsset,
    UnsupportedMediaType,
    WebhookError,
)
from connector.runtime import Runtime
from connector.store import keys, replies

log = logging.getLogger(__name__)

blueprint = Blueprint("ece_callback", __name__)

MAX_EVENTS = 1000  # docs/protocols/ece.md, "Callback webhook": 1 to 1000 items a request
DEDUPE_TTL_SECONDS = 7 * 24 * 3600
"""ECE retries a callback batch it could not deliver; its horizon is not documented: a week."""


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["connector"]
    return runtime


@blueprint.route("/ece/<integration_name>/callback", methods=["POST"])
def receive(integration_name: str) -> Response:
    runtime = _runtime()
    integration = runtime.config.integration(integration_name)
    if integration is None or integration.type != "ece":
        raise UnknownAsset(f"no ECE integration named {integration_name!r} is configured")
    limit = runtime.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"body of {request.content_length} bytes exceeds the {limit}-byte limit")
    authenticate(integration, request.headers.get("Authorization"))
    events = parse_batch(request.mimetype, request.get_data())
    accepted = duplicates = unknown = 0
    for event in sorted(events, key=_order):
        conversation = event["conversation"]["id"]
        mapped = replies.bytes_or_none(runtime.redis.get(keys.ece_conversation(integration.name, conversation)))
        extra = {"integration": integration.name, "remote": conversation, "ece_event": event["id"]}
        if mapped is None:
            unknown += 1
            log.warning("ECE event for an unknown conversation acknowledged", extra=extra)
            continue
        thread_id = json.loads(mapped)["thread"]
        dedupe_key = keys.dedupe("ece", integration.name, str(event["id"]))
        if outbox.agent_event(runtime, thread_id, integration.name, agent_event(event), dedupe_key, DEDUPE_TTL_SECONDS):
            accepted += 1
            log.info("ECE event accepted", extra={**extra, "conversation": thread_id, "type": event["type"]["value"]})
        else:
            duplicates += 1
    runtime.durability.confirm(runtime.redis)  # CONNECTOR_DURABILITY: what the 200 waits for
    return jsonify(status="ok", accepted=accepted, duplicates=duplicates, unknown=unknown)


def authenticate(integration: Integration, header: str | None) -> None:
    """ECE signs its calls as its External App Authentication says (none / basic / bearer)."""
    auth = integration.callback_auth
    if auth.type == "none":
        return
    if not header:
        raise MissingSignature("missing Authorization header")
    scheme, _, credentials = header.partition(" ")
    if auth.type == "bearer":
        expected = (auth.token or "").encode()
        given = credentials.strip().encode() if scheme.lower() == "bearer" else b""
    else:
        expected = f"{auth.username}:{auth.password}".encode()
        try:
            given = base64.b64decode(credentials.strip(), validate=True) if scheme.lower() == "basic" else b""
        except (binascii.Error, ValueError):
            given = b""
    if not given or not hmac.compare_digest(given, expected):
        raise SignatureError(f"the Authorization header does not match the integration's {auth.type} credentials")


def parse_batch(mimetype: str, body: bytes) -> list[dict[str, Any]]:
    if mimetype != "application/json":
        raise UnsupportedMediaType(f"expected application/json, got {mimetype or 'none'}")
    try:
        payload = json_input.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(json_input.refusal(exc)) from None
    events = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
        raise PayloadError(f'body must be {{"message": [...]}} with 1 to {MAX_EVENTS} events', field="message")
    for index, event in enumerate(events):
        _check_event(index, event)
    return events


def _check_event(index: int, event: Any) -> None:
    where = f"message[{index}]"
    if not isinstance(event, dict):
        raise PayloadError(f"{where} must be an object", field=where)
    if not isinstance(event.get("id"), str | int) or event.get("id") == "":
        raise PayloadError(f"{where}.id is required", field=f"{where}.id")
    conversation = event.get("conversation")
    if not isinstance(conversation, dict) or not isinstance(conversation.get("id"), str | int):
        raise PayloadError(f"{where}.conversation.id is required", field=f"{where}.conversation.id")
    conversation["id"] = str(conversation["id"])
    kind = event.get("type")
    if not isinstance(kind, dict) or not isinstance(kind.get("value"), str):
        raise PayloadError(f"{where}.type.value is required", field=f"{where}.type.value")
    if "timeStamp" in event and not _finite_number(event["timeStamp"]):
        raise PayloadError(f"{where}.timeStamp must be a number (ms)", field=f"{where}.timeStamp")


def _finite_number(value: Any) -> bool:
    """A number `float()` takes and that orders: not NaN, infinity or an integer past float's range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _order(event: dict[str, Any]) -> tuple[float, int, str, str]:
    """ECE's time, then its id (numeric ids compare as numbers): a batch delivered out of order is
    relayed in the order the agent acted. A numeric id compares by its digits (length, then text,
    leading zeros dropped), which is numeric order for ids of any length; `isdigit` alone would also
    take "²", which is no number."""
    event_id = str(event["id"])
    numeric = event_id.isascii() and event_id.isdigit()
    digits = event_id.lstrip("0") if numeric else ""
    return (float(event.get("timeStamp") or 0), len(digits), digits, event_id)


@blueprint.errorhandler(WebhookError)
def callback_error(error: WebhookError) -> tuple[Response, int]:
    log.warning("ECE callback refused: %s", error.message, extra={"path": request.path, "status": error.status})
    return jsonify(error.as_json()), error.status


@blueprint.errorhandler(RedisError)
def redis_down(error: RedisError) -> tuple[Response, int]:
    log.error("ECE callback not stored, Redis unavailable: %s", error, extra={"path": request.path})
    return jsonify(error="unavailable", message="temporarily unable to store the events; retry"), 503
