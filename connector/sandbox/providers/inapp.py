"""The in-app app's backend, the receiving side of our own contract (docs/protocols/channels.md,
"In-app: outbound body", "In-app: signature").

An in-app asset's `delivery_url` names the path served here: a POST to it is looked up among the
in-app assets by path, and must be signed `X-Signature: sha256=<hex HMAC-SHA256(secret, timestamp
+ "." + raw body)>` with `X-Timestamp` within 5 minutes. Refusals use the connector's own error
shape (`{"error", "message", "field"?}`), since both ends of this contract are ours. The app
dedupes on `message_id`. Customer files the emulator put are served at `/inapp/files/{id}`.
"""

from __future__ import annotations

import hmac
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request

from connector.channels.inapp import MAX_SKEW_SECONDS
from connector.config.model import Asset
from connector.sandbox.providers import hold
from connector.sandbox.providers.files import file_response
from connector.sandbox.providers.hooks import install_hooks
from connector.sandbox.providers.store import ProviderState, Refusal
from connector.sandbox.signing import inapp_signature

CHANNEL = "inapp"
TYPES = {
    "text": "text",
    "system": "system",
    "typing_start": "typing_on",
    "typing_stop": "typing_off",
    "attachment": "file",
    "close": "close",
}
DEFAULTS: dict[int, tuple[int | str | None, str]] = {
    400: ("invalid_payload", "the app refused the message"),
    401: ("missing_signature", "the app requires X-Timestamp and X-Signature"),
    403: ("invalid_signature", "the app refused the signature"),
    404: ("not_found", "no such delivery endpoint"),
    408: ("timeout", "the app timed out"),
    429: ("rate_limited", "too many requests; retry later"),
    500: ("unavailable", "the app's backend failed; retry later"),
}


def create_blueprint(state: ProviderState) -> Blueprint:
    bp = Blueprint("sandbox_inapp", __name__)

    def refusal_body(exc: Refusal) -> dict[str, Any]:
        body: dict[str, Any] = {"error": exc.code or "error", "message": exc.message}
        if exc.field:
            body["field"] = exc.field
        return body

    sends = (f"{bp.name}.deliver", f"{bp.name}.deliver_root")
    install_hooks(
        bp, state, error_body=refusal_body, send_channel=lambda endpoint: CHANNEL if endpoint in sends else None
    )

    @bp.get("/files/<file_id>")
    def files(file_id: str) -> Response:
        # The app's own upload URLs: fetched without auth (docs/protocols/channels.md, "Inbound media").
        stored = state.files.get(file_id)
        if stored is None:
            raise Refusal(404, "no such file", code="not_found")
        return file_response(stored)

    def deliver_to_path() -> Response:
        candidates = [a for a in state.assets_of(CHANNEL) if urlsplit(str(a["delivery_url"])).path == request.path]
        if not candidates:
            raise Refusal(404, f"no in-app asset delivers to {request.path}", code="not_found")
        state.refuse_if_down(CHANNEL, DEFAULTS)
        asset = _verify(candidates)
        state.injected(CHANNEL, DEFAULTS)
        hold.checkpoint(state, CHANNEL)  # test-only: a held send goes on once released
        return _deliver(state, asset)

    bp.add_url_rule("", "deliver_root", deliver_to_path, methods=["POST"])
    bp.add_url_rule("/<path:rest>", "deliver", lambda rest: deliver_to_path(), methods=["POST"])
    return bp


def _verify(candidates: list[Asset]) -> Asset:
    """The asset whose secret signed the request (several apps may share one path)."""
    timestamp = request.headers.get("X-Timestamp", "").strip()
    signature = request.headers.get("X-Signature", "").strip().lower()
    if not timestamp or not signature:
        raise Refusal(401, "X-Timestamp and X-Signature headers are required", code="missing_signature")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
        raise Refusal(
            403, f"X-Timestamp must be unix seconds within {MAX_SKEW_SECONDS} s of now", code="invalid_signature"
        )
    for asset in candidates:
        expected = inapp_signature(str(asset["secret"]), timestamp, request.get_data())
        if hmac.compare_digest(signature.encode(), expected.encode()):
            return asset
    raise Refusal(403, "X-Signature does not match the app's secret", code="invalid_signature")


def _invalid(message: str, field: str) -> Refusal:
    return Refusal(400, message, code="invalid_payload", field=field)


def _deliver(state: ProviderState, asset: Asset) -> Response:
    if request.mimetype != "application/json":
        raise _invalid("Content-Type must be application/json", "Content-Type")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _invalid("body must be a JSON object", "body")
    for name in ("message_id", "customer_id", "type"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise _invalid(f"{name} is required", name)
    if body["type"] not in TYPES:
        raise _invalid(f"type must be one of {', '.join(TYPES)}", "type")
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        raise _invalid("text must be a string", "text")
    if body["type"] in ("text", "system") and not text:
        raise _invalid(f"a {body['type']} message needs text", "text")
    files = _attachments(body.get("attachments"))
    if body["type"] == "attachment" and not files:
        raise _invalid("an attachment message needs attachments", "attachments")
    if not _is_iso_time(body.get("sent_at")):
        raise _invalid("sent_at must be an ISO 8601 time", "sent_at")

    # The app dedupes on message_id: a repeat is acknowledged and counted, not shown twice.
    state.store.record(
        channel=CHANNEL,
        asset=asset.name,
        customer=body["customer_id"],
        kind=TYPES[body["type"]],
        text=text or None,
        files=files,
        provider_id=body["message_id"],
        key=body["message_id"],
        request=body,
    )
    return jsonify(status="delivered", message_id=body["message_id"])


def _is_iso_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _attachments(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("attachments must be a list", "attachments")
    files = []
    for n, item in enumerate(raw):
        where = f"attachments[{n}]"
        if not isinstance(item, dict):
            raise _invalid(f"{where} must be an object", where)
        for name in ("url", "mime_type"):
            if not isinstance(item.get(name), str) or not item[name]:
                raise _invalid(f"{where}.{name} is required", f"{where}.{name}")
        size = item.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise _invalid(f"{where}.size must be a number of bytes", f"{where}.size")
        name = item.get("name")
        files.append({"url": item["url"], "name": name, "mime": item["mime_type"], "size": size, "data": None})
    return files
