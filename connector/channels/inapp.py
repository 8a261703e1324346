"""In-app messaging: our own contract (docs/protocols/channels.md, "In-app contract"), spoken by the
app's backend or SDK.

Requests are signed `X-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>` with
`X-Timestamp: <unix seconds>` (connector/signing.py); the timestamp is inside the MAC, so a captured
request replays only within the skew window, and dedupe on `message_id` absorbs those replays.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, overload

import requests
from flask import Request

from connector.channels import media
from connector.channels.base import Attachment, Channel, EventKind, InboundEvent, attachment_objects
from connector.channels.sending import OutboundFile, OutboundText, Recipient, SendResult, call
from connector.errors import MissingSignature, PayloadError, PermanentError, RetryableError, SignatureError
from connector.http_session import retry_after
from connector.settings import Settings
from connector.signing import signature_matches, signed_headers

if TYPE_CHECKING:  # the configuration's type only: channels never import config at run time
    from connector.config.model import Asset

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
DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
# Answers of the app that repeating cannot fix, and what the operator does about them.
PERMANENT_REASONS = {
    400: "the app refused the message as malformed",
    401: "the app refused the signature: the asset's secret differs from the app's; make them equal",
    403: "the app refused the signature: the asset's secret differs from the app's; make them equal",
    404: "the app does not know this customer or its delivery_url path; check the asset's delivery_url",
}


class InApp(Channel):
    name = "inapp"
    title = "In-app chat"
    secret_fields = ("secret",)
    example_address = "user-0001"
    max_text = None  # our own contract sets no limit: the app renders what it gets
    typing = True
    window = None
    attachments_in = frozenset({"image/*", "video/*", "audio/*", "application/*", "text/*"})
    attachments_out = frozenset({"image/*", "video/*", "audio/*", "application/*", "text/*"})
    max_attachment_bytes = DEFAULT_MAX_ATTACHMENT_BYTES
    """The default; an asset sets its own with the option `max_attachment_bytes`."""
    # The SDK retries a failed post for a short while; two days covers any offline queue it keeps.
    dedupe_ttl = timedelta(days=2)

    def __init__(self, asset: Asset, settings: Settings) -> None:
        super().__init__(asset, settings)
        configured = asset.get("max_attachment_bytes")
        if configured:
            self.max_attachment_bytes = int(configured)  # type: ignore[misc]  # per asset, by design

    # -- outbound: POST {delivery_url}, signed like the inbound direction ----------------------

    def send_text(self, to: Recipient, message: OutboundText, *, key: str, now: float) -> SendResult:
        return self._deliver(to, key, now, {"type": "system" if message.system else "text", "text": message.text})

    def send_typing(self, to: Recipient, on: bool, *, key: str, now: float) -> SendResult:
        return self._deliver(to, key, now, {"type": "typing_start" if on else "typing_stop"})

    def send_file(self, to: Recipient, file: OutboundFile, *, key: str, now: float) -> SendResult:
        item: dict[str, Any] = {"url": file.url, "mime_type": file.mime_type, "name": file.name}
        if file.size is not None:
            item["size"] = file.size
        content: dict[str, Any] = {"type": "attachment", "attachments": [item]}
        if file.caption:
            content["text"] = file.caption
        return self._deliver(to, key, now, content)

    def send_close(self, to: Recipient, *, key: str, now: float) -> SendResult:
        return self._deliver(to, key, now, {"type": "close"})

    def _deliver(self, to: Recipient, key: str, now: float, content: dict[str, Any]) -> SendResult:
        """The app dedupes on `message_id`, which is the relay's key: a retried delivery is harmless."""
        sent_at = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = {"message_id": key, "customer_id": to.address, **content, "sent_at": sent_at}
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = signed_headers(
            str(self.asset["secret"]), raw, timestamp_header="X-Timestamp", signature_header="X-Signature"
        )
        response = call(
            self.session,
            "POST",
            str(self.asset["delivery_url"]),
            what="in-app delivery",
            data=raw,
            headers={"Content-Type": "application/json", **headers},
        )
        _raise_for_app(response)
        return SendResult(key)

    def download(self, attachment: Attachment, to: Recipient) -> tuple[bytes, str | None]:
        """The app's own file URLs, without credentials, from `media_hosts` or the delivery_url's host."""
        if not attachment.url:
            raise PermanentError("the customer's in-app attachment has no URL")
        return self.fetch_media(attachment.url, hosts=self._media_hosts())

    def _media_hosts(self) -> tuple[str, ...]:
        configured = self.asset.get("media_hosts")
        if isinstance(configured, str):
            configured = configured.split(",")
        hosts = tuple(str(h).strip() for h in configured or () if str(h).strip())
        return hosts or (media.host_of(str(self.asset["delivery_url"])),)

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
        if not signature_matches(str(self.asset["secret"]), timestamp, request.get_data(), signature):
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


def _raise_for_app(response: requests.Response) -> None:
    """2xx delivered; 408 / 429 / 5xx retryable; other answers permanent, with the fix."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in (408, 429) or status >= 500:
        raise RetryableError(f"in-app delivery: HTTP {status}", wait=retry_after(response))
    reason = PERMANENT_REASONS.get(status, "the app refused the message")
    raise PermanentError(f"in-app delivery: HTTP {status}: {reason}")


@overload
def _string(body: dict[str, Any], key: str, *, required: Literal[True], where: str = "") -> str: ...


@overload
def _string(body: dict[str, Any], key: str, *, required: bool = False, where: str = "") -> str | None: ...


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
