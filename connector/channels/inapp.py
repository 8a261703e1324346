"""In-app messaging: our own contract (DESIGN §5), spoken by the app's backend or SDK.

Requests are signed `X-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>` with
`X-Timestamp: <unix seconds>`; the timestamp is inside the MAC, so a captured request replays only
within the skew window, and dedupe on `message_id` absorbs those replays.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Request

from connector.channels.base import Attachment, Channel, EventKind, InboundEvent, attachment_objects
from connector.errors import MissingSignature, PayloadError, SignatureError

# Requests older or newer than this are refused, in either direction (clock skew or replay).
MAX_SKEW_SECONDS = 300
KINDS = {
    "text": EventKind.MESSAGE,
    "attachment": EventKind.MESSAGE,
    "typing_start": EventKind.TYPING_START,
    "typing_stop": EventKind.TYPING_END,
    "close": EventKind.CLOSE,
}
MAX_UNIX_SECONDS = 253402300800  # 10000-01-01: beyond datetime's range
TIMESTAMP = re.compile(r"[0-9]{1,12}")


class InApp(Channel):
    name = "inapp"
    max_text = 4096  # our SDK's bubble limit; longer agent text is split
    typing = True
    window = None
    attachments_in = frozenset({"image/*", "video/*", "audio/*", "application/*", "text/*"})
    attachments_out = frozenset({"image/*", "video/*", "audio/*", "application/*", "text/*"})
    max_attachment_bytes = 25 * 1024 * 1024
    # The SDK retries a failed post for a short while; two days covers any offline queue it keeps.
    dedupe_ttl = timedelta(days=2)

    def verify(self, request: Request) -> None:
        timestamp = request.headers.get("X-Timestamp")
        signature = request.headers.get("X-Signature")
        if not timestamp or not signature:
            raise MissingSignature("X-Timestamp and X-Signature headers are required")
        timestamp = timestamp.strip()
        if not TIMESTAMP.fullmatch(timestamp):
            raise SignatureError("X-Timestamp must be unix seconds", field="X-Timestamp")
        if abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
            raise SignatureError(
                f"X-Timestamp is more than {MAX_SKEW_SECONDS} s from the connector's clock; check the sender's clock",
                field="X-Timestamp",
            )
        mac = hmac.new(
            str(self.asset["secret"]).encode(), timestamp.encode() + b"." + request.get_data(), hashlib.sha256
        )
        if not hmac.compare_digest(signature.strip().lower().encode(), f"sha256={mac.hexdigest()}".encode()):
            raise SignatureError("X-Signature does not match the timestamp and body signed with the asset's secret")

    def parse(self, request: Request) -> list[InboundEvent]:
        body = self.json_object(request)

        message_id = _string(body, "message_id", required=True)
        customer = body.get("customer")
        if not isinstance(customer, dict):
            raise PayloadError("customer must be an object with an id", field="customer")
        user_id = customer.get("id")
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)  # numeric user ids are common; the address is their text
        if not isinstance(user_id, str) or not user_id:
            raise PayloadError("customer.id is missing or not a string", field="customer.id")
        kind_name = _string(body, "type", required=True)
        if kind_name not in KINDS:
            raise PayloadError(f"type must be one of {', '.join(KINDS)}", field="type")
        text = _string(body, "text")
        attachments = tuple(_attachments(body.get("attachments")))
        if kind_name == "text" and not text:
            raise PayloadError("a text message needs text", field="text")
        if kind_name == "attachment" and not attachments:
            raise PayloadError("an attachment message needs attachments", field="attachments")

        details: dict[str, Any] = {"user_id": user_id}
        for key in ("name", "email", "locale"):
            value = _string(customer, key, where="customer.")
            if value:
                details[key] = value
        conversation_id = _string(body, "conversation_id")
        if conversation_id:
            details["conversation_id"] = conversation_id
        return [
            InboundEvent(
                channel=self.name,
                asset=self.asset.name,
                customer=user_id,
                kind=KINDS[kind_name],
                provider_id=message_id,
                timestamp=_sent_at(body.get("sent_at")),
                text=text or None,
                attachments=attachments,
                details=details,
            )
        ]


def _string(body: dict[str, Any], key: str, *, required: bool = False, where: str = "") -> str | None:
    value = body.get(key)
    if (required and not value) or (value is not None and not isinstance(value, str)):
        raise PayloadError(f"{where}{key} is missing or not a string", field=f"{where}{key}")
    return value


def _sent_at(raw: Any) -> float:
    """ISO-8601 (a naive time is UTC) or unix seconds."""
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 0 <= raw < MAX_UNIX_SECONDS:
        return float(raw)  # the range check also refuses NaN, infinities and ints too big for a float
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
        except (ValueError, OverflowError):  # not ISO-8601, or a date outside datetime's range
            pass
    raise PayloadError("sent_at must be an ISO-8601 time or unix seconds", field="sent_at")


def _attachments(raw: Any) -> list[Attachment]:
    out: list[Attachment] = []
    for where, item in attachment_objects(raw):
        size = item.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise PayloadError(f"{where}.size must be a number of bytes", field=f"{where}.size")
        out.append(
            Attachment(
                url=_string(item, "url", required=True, where=f"{where}."),
                mime_type=_string(item, "mime_type", required=True, where=f"{where}."),
                name=_string(item, "name", where=f"{where}."),
                size=size,
            )
        )
    return out
