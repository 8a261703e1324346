"""The intake blueprint: verify → parse → dedupe → append to inbox → wake a drain → acknowledge.

Nothing here waits on a contact center or a provider: the answer goes back as soon as the events
are durably in Redis, so providers never time out and retry
(docs/architecture.md, "What the connector does", "Webhook answers").
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Request, Response, current_app, jsonify, request
from redis.exceptions import RedisError

from connector.channels import channel_class
from connector.channels.base import Channel, InboundEvent
from connector.errors import BodyTooLarge, PayloadError, UnknownAsset, WebhookError
from connector.queues import enqueue_dispatch
from connector.runtime import Runtime

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks", __name__)


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["connector"]
    return runtime


def _channel_for(runtime: Runtime, channel: str, asset_name: str) -> Channel:
    cls = channel_class(channel)
    if cls is None:
        raise UnknownAsset(f"no channel named {channel!r}; use one of sms, messenger, whatsapp, apple, inapp")
    asset = runtime.config.asset(channel, asset_name)
    if asset is None:
        raise UnknownAsset(f"no {channel} asset named {asset_name!r} is configured")
    return cls(asset, runtime.settings)


def _read_body(req: Request, limit: int) -> bytes:
    if req.content_length is not None and req.content_length > limit:
        raise BodyTooLarge(f"body of {req.content_length} bytes exceeds the {limit}-byte limit")
    body = req.get_data(cache=True)
    if len(body) > limit:
        raise BodyTooLarge(f"body exceeds the {limit}-byte limit")
    return body


def _parse_safely(parse: Callable[[Request], list[InboundEvent]], req: Request) -> list[InboundEvent]:
    """A provider can send anything; a parser bug on odd input must answer 400, not 500."""
    try:
        return parse(req)
    except WebhookError:
        raise
    except Exception:
        log.exception("webhook body could not be parsed", extra={"path": req.path})
        raise PayloadError("the body could not be understood") from None


def _accept(runtime: Runtime, channel: Channel, events: list[InboundEvent]) -> None:
    if len(events) > 1:
        # Batches arrive in any order (Meta, WhatsApp); within one request, provider time orders them.
        events = sorted(events, key=lambda e: e.timestamp)
    accepted = runtime.boxes.accept(events, int(channel.dedupe_ttl.total_seconds()))
    for item in accepted:
        log.info(
            "inbound event %s",
            "duplicate dropped" if item.duplicate else "accepted",
            extra={
                "conversation": item.event.thread_id,
                "channel": item.event.channel,
                "asset": item.event.asset,
                "kind": item.event.kind.value,
                "provider_id": item.event.provider_id,
            },
        )
    # One job per dispatcher slot claimed: a claimed slot without its job idles until it is reaped.
    for item in accepted:
        if item.dispatch_slot is not None:
            enqueue_dispatch(runtime.redis, item.dispatch_slot)


def _intake(channel_name: str, asset_name: str, status_callback: bool) -> Response:
    # The objects behind Flask's proxies, fetched once: each proxy access costs a context lookup,
    # and this path runs for every provider event.
    runtime = _runtime()
    req = request._get_current_object()  # type: ignore[attr-defined]  # werkzeug's LocalProxy has it at run time
    channel = _channel_for(runtime, channel_name, asset_name)
    if req.method == "GET" and not status_callback:
        return channel.handshake(req)
    _read_body(req, runtime.settings.max_body_bytes)
    channel.verify(req)
    parse = channel.parse_status if status_callback else channel.parse
    events = _parse_safely(parse, req)
    _accept(runtime, channel, events)
    runtime.durability.confirm(runtime.redis)  # CONNECTOR_DURABILITY: what the 200 waits for
    return channel.acknowledge()


@blueprint.route("/webhooks/<channel>/<asset>", methods=["GET", "POST"])
def receive(channel: str, asset: str) -> Response:
    return _intake(channel, asset, status_callback=False)


@blueprint.route("/webhooks/<channel>/<asset>/status", methods=["POST"])
def receive_status(channel: str, asset: str) -> Response:
    return _intake(channel, asset, status_callback=True)


@blueprint.errorhandler(WebhookError)
def webhook_error(error: WebhookError) -> tuple[Response, int]:
    log.warning("webhook refused: %s", error.message, extra={"path": request.path, "status": error.status})
    return jsonify(error.as_json()), error.status


@blueprint.errorhandler(RedisError)
def redis_down(error: RedisError) -> tuple[Response, int]:
    # Not durably stored: 503 so the provider retries later (Meta, WhatsApp do; Twilio per #rp).
    log.error("webhook not stored, Redis unavailable: %s", error, extra={"path": request.path})
    return jsonify(error="unavailable", message="temporarily unable to store the event; retry"), 503
