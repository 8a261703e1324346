"""Apple Messages for Business (MSP REST API): JSON (often gzip) authorised by an HS256 bearer JWT."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
import zlib
from datetime import timedelta
from typing import Any

import jwt
import requests
from flask import Request

from connector import json_input
from connector.channels import apple_crypto, media
from connector.channels.base import Attachment, Channel, EventKind, InboundEvent, attachment_objects
from connector.channels.sending import OutboundFile, OutboundText, Recipient, SendResult, call, json_body
from connector.errors import (
    BodyTooLarge,
    MissingSignature,
    PayloadError,
    PermanentError,
    RetryableError,
    SignatureError,
)
from connector.http_session import retry_after

log = logging.getLogger(__name__)

KINDS = {
    "typing_start": EventKind.TYPING_START,
    "typing_end": EventKind.TYPING_END,
    "close": EventKind.CLOSE,  # the customer deleted the conversation: send nothing until they write again
}
# Apple's clock and ours may differ a little; exp / nbf / iat get this much grace.
JWT_LEEWAY_SECONDS = 60
# `body` holds U+FFFC (object replacement) where an attachment or interactive bubble was.
OBJECT_REPLACEMENT = "\ufffc"
# What an operator can do about the answers of the messaging endpoints that repeating cannot fix.
PERMANENT_REASONS = {
    400: "Apple refused the request as malformed",
    401: "Apple refused the authorization; check the asset's msp_id and secret",
    403: "Apple refused the authorization; check the asset's msp_id and secret",
    404: "Apple does not know this customer or business (the conversation may be deleted)",
}


class Apple(Channel):
    name = "apple"
    title = "Apple Messages for Business"
    secret_fields = ("secret",)
    example_address = "urn:mbid:AQAAsandboxcustomer0001"
    # No predetermined maximum for `body`; only Apple's payload size limit applies.
    max_text = None
    typing = True  # outbound typing_start / typing_end messages
    window = None  # no time limit to reply (but nothing after the customer's `close`)
    attachments_in = frozenset({"image/*", "video/*", "audio/*", "application/*", "text/*"})
    attachments_out = frozenset({"image/*", "video/*", "audio/*", "application/*", "text/*"})
    # Required feature: send and receive common file types up to 100 MB.
    max_attachment_bytes = 100 * 1024 * 1024
    # Apple's retry policy is undocumented: treat as at-least-once and remember ids for two days.
    dedupe_ttl = timedelta(days=2)

    def verify(self, request: Request) -> None:
        """Apple signs a JWT (HS256, key = the base64-decoded API secret, aud = our MSP id), not the body.

        `destination-id` must then be this asset's business: a valid token for a message to
        another business of the same MSP is still not ours to accept.
        """
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MissingSignature("Authorization: Bearer <JWT> header is missing")
        try:
            jwt.decode(
                token.strip(),
                key=base64.b64decode(str(self.asset["secret"])),
                algorithms=["HS256"],
                audience=str(self.asset["msp_id"]),
                leeway=JWT_LEEWAY_SECONDS,
                options={"require": ["aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise SignatureError("the Authorization JWT has expired", field="Authorization") from None
        except jwt.InvalidAudienceError:
            raise SignatureError(
                "the Authorization JWT is for another MSP id (aud); check the asset's msp_id", field="Authorization"
            ) from None
        except jwt.InvalidTokenError:
            raise SignatureError(
                "the Authorization JWT does not verify with the asset's secret", field="Authorization"
            ) from None
        destination = request.headers.get("destination-id", "")
        if destination != str(self.asset["business_id"]):
            raise SignatureError(
                "destination-id is not this asset's business id: the message is for another business",
                field="destination-id",
            )

    # -- outbound ----------------------------------------------------------------------------

    def send_text(self, to: Recipient, message: OutboundText, *, key: str, now: float) -> SendResult:
        return self._post_message(to, key, {"type": "text", "body": message.text}, auto_reply=message.system)

    def send_typing(self, to: Recipient, on: bool, *, key: str, now: float) -> SendResult:
        return self._post_message(to, key, {"type": "typing_start" if on else "typing_end"})

    def send_file(self, to: Recipient, file: OutboundFile, *, key: str, now: float) -> SendResult:
        """Apple carries files only through its MMCS: fetch, encrypt with a fresh key, upload, send.

        The agent's URL comes from the contact center (trusted host); its address is still checked
        outside the sandbox. A file over the cap goes as a link instead. A retry re-uploads with a
        new key, but the message `id` is the same, so Apple shows the file once.
        """
        try:
            data, _ = self.fetch_media(file.url, hosts=(media.host_of(file.url),), trusted=True)
        except media.TooLarge:
            return self.send_text(to, OutboundText(self.file_link(file)), key=key, now=now)
        self.send_caption(to, file, key=key, now=now)
        key_bytes = apple_crypto.new_key()
        encrypted = apple_crypto.encrypt(data, key_bytes)
        slot = self._apple_json(
            "GET",
            f"{self._api_base}/v1/preUpload",
            what="Apple preUpload",
            headers={**self._auth(), "source-id": self._business, "size": str(len(encrypted))},
        )
        upload_url, mmcs_url, owner = (slot.get(k) for k in ("upload-url", "mmcs-url", "mmcs-owner"))
        if not all(isinstance(v, str) and v for v in (upload_url, mmcs_url, owner)):
            raise RetryableError("Apple preUpload answered without upload-url, mmcs-url and mmcs-owner")
        uploaded = self._apple_json(
            "POST",
            str(upload_url),
            what="Apple upload",
            data=encrypted,
            headers={"Content-Type": "application/octet-stream"},
        )
        single_file = uploaded.get("singleFile")
        single: dict[str, Any] = single_file if isinstance(single_file, dict) else {}
        checksum = single.get("fileChecksum")
        if not isinstance(checksum, str) or not checksum:
            raise RetryableError("Apple upload answered without singleFile.fileChecksum")
        attachment = {
            "name": file.name,
            "mimeType": file.mime_type,
            "size": len(data),
            "signature-base64": checksum,
            "url": mmcs_url,
            "owner": owner,
            "key": apple_crypto.key_to_hex(key_bytes),
        }
        return self._post_message(to, key, {"type": "text", "body": OBJECT_REPLACEMENT, "attachments": [attachment]})

    def _post_message(
        self, to: Recipient, key: str, content: dict[str, Any], *, auto_reply: bool = False
    ) -> SendResult:
        # Apple dedupes on `id`: derived from the relay's key, a retried send is the same message.
        message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
        body = {"v": 1, "id": message_id, "sourceId": self._business, "destinationId": to.address, **content}
        headers = {
            **self._auth(),
            "id": message_id,
            "source-id": self._business,
            "destination-id": to.address,
            "auto-reply": "true" if auto_reply else "false",
        }
        self._apple_json("POST", f"{self._api_base}/v1/message", what="Apple send", json=body, headers=headers)
        return SendResult(message_id)

    def download(self, attachment: Attachment, to: Recipient) -> tuple[bytes, str | None]:
        """preDownload turns the MMCS reference into a download URL; the bytes are AES-256-CTR encrypted."""
        extra = attachment.extra
        if not attachment.url or not all(extra.get(k) for k in ("key", "owner", "signature")):
            raise PermanentError("the customer's Apple attachment lacks url, key, owner or signature")
        try:
            key = apple_crypto.key_from_hex(str(extra["key"]))
        except ValueError as exc:
            raise PermanentError(f"the customer's Apple attachment has an unusable key: {exc}") from None
        answer = self._apple_json(
            "GET",
            f"{self._api_base}/v1/preDownload",
            what="Apple preDownload",
            headers={
                **self._auth(),
                "source-id": self._business,
                "url": attachment.url,
                "signature": str(extra["signature"]),
                "owner": str(extra["owner"]),
            },
        )
        download_url = answer.get("download-url")
        if not isinstance(download_url, str) or not download_url:
            raise RetryableError("Apple preDownload answered without a download-url")
        # The download URL comes from the configured API, so its host is trusted; its address is not.
        encrypted, _ = self.fetch_media(download_url, hosts=(media.host_of(download_url),))
        return apple_crypto.decrypt(encrypted, key), None

    def _apple_json(self, method: str, url: str, *, what: str, **kwargs: Any) -> dict[str, Any]:
        response = call(self.session, method, url, what=what, **kwargs)
        _raise_for_apple(response, what)
        return json_body(response)

    def _auth(self) -> dict[str, str]:
        """A fresh HS256 JWT (key = the base64-decoded secret, iss = the MSP id, iat = now)."""
        token = jwt.encode(
            {"iss": str(self.asset["msp_id"]), "iat": int(time.time())},
            base64.b64decode(str(self.asset["secret"])),
            algorithm="HS256",
        )
        return {"Authorization": f"Bearer {token}"}

    @property
    def _business(self) -> str:
        return str(self.asset["business_id"])

    @property
    def _api_base(self) -> str:
        return str(self.asset["api_base_url"]).rstrip("/")

    # -- inbound -----------------------------------------------------------------------------

    def parse(self, request: Request) -> list[InboundEvent]:
        body = self._load_json(request)
        message_id = body.get("id") or request.headers.get("id")
        if not isinstance(message_id, str) or not message_id:
            raise PayloadError("id is missing (neither the body nor the id header has it)", field="id")
        customer = body.get("sourceId") or request.headers.get("source-id")
        if not isinstance(customer, str) or not customer:
            raise PayloadError("sourceId (the customer's opaque id) is missing", field="sourceId")
        destination = body.get("destinationId")
        if destination is not None and destination != str(self.asset["business_id"]):
            raise PayloadError("destinationId is not this asset's business id", field="destinationId")
        kind_name = _string(body, "type", required=True)
        text = _string(body, "body")
        if text and OBJECT_REPLACEMENT in text:
            text = text.replace(OBJECT_REPLACEMENT, "").strip()
        attachments = tuple(_attachments(body.get("attachments")))

        payload: str | None = None
        if kind_name == "text":
            kind = EventKind.MESSAGE
        elif kind_name == "interactive":
            kind = EventKind.POSTBACK
            payload = _interactive_payload(body)
            text = text or _reply_title(body)
        elif kind_name in KINDS:
            kind = KINDS[kind_name]
        else:
            # richLink and future types still reach the agent as a note, never silently dropped.
            kind = EventKind.MESSAGE
            text = text or f"[unsupported Apple message type: {kind_name}]"
        return [
            InboundEvent(
                channel=self.name,
                asset=self.asset.name,
                customer=customer,
                kind=kind,
                provider_id=message_id,
                # Apple's message carries no timestamp; the time of receipt stands in.
                timestamp=time.time(),
                text=text or None,
                attachments=attachments,
                payload=payload,
                details=_details(body, customer, request),
            )
        ]

    def _load_json(self, request: Request) -> dict[str, Any]:
        # Apple usually gzips the body (Content-Encoding: gzip). Its Content-Type is not pinned down
        # in the docs, so the JSON itself is the contract.
        raw = request.get_data()
        if request.headers.get("Content-Encoding", "").strip().lower() == "gzip":
            raw = _gunzip(raw, self.settings.max_body_bytes)
        try:
            body = json_input.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(json_input.refusal(exc)) from None
        if not isinstance(body, dict):
            raise PayloadError("body must be a JSON object")
        return body


def _raise_for_apple(response: requests.Response, what: str) -> None:
    """Apple answers with status codes only: 4xx permanent (429 excepted), 429 and 5xx retryable."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429 or status >= 500:
        raise RetryableError(f"{what}: HTTP {status}", wait=retry_after(response))
    raise PermanentError(f"{what}: HTTP {status}: {PERMANENT_REASONS.get(status, 'Apple refused the request')}")


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress at most `limit` bytes: a small gzip body may expand without bound (a gzip bomb)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16+: expect the gzip header and trailer
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise PayloadError("body is not valid gzip although Content-Encoding says gzip") from None
    if len(out) > limit:
        raise BodyTooLarge(f"gzip body expands beyond the {limit}-byte limit")
    if not inflater.eof:
        raise PayloadError("gzip body is truncated")
    return out


def _string(body: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if (required and not value) or (value is not None and not isinstance(value, str)):
        raise PayloadError(f"{key} is missing or not a string", field=key)
    return value


def _attachments(raw: Any) -> list[Attachment]:
    """Attachments are encrypted on Apple's MMCS: what decryption needs stays in `extra`."""
    out: list[Attachment] = []
    for where, item in attachment_objects(raw):
        required = {}
        for key in ("url", "key", "owner", "signature-base64"):
            value = item.get(key)
            if not isinstance(value, str) or not value:
                raise PayloadError(f"{where}.{key} is missing or not a string", field=f"{where}.{key}")
            required[key] = value
        size = item.get("size")
        if size is not None:
            try:
                size = int(size)
            except (TypeError, ValueError, OverflowError):
                raise PayloadError(f"{where}.size is not a number of bytes", field=f"{where}.size") from None
        name, mime = item.get("name"), item.get("mimeType")
        out.append(
            Attachment(
                url=required["url"],
                mime_type=mime if isinstance(mime, str) else None,
                name=name if isinstance(name, str) else None,
                size=size,
                extra={"key": required["key"], "owner": required["owner"], "signature": required["signature-base64"]},
            )
        )
    return out


def _interactive_payload(body: dict[str, Any]) -> str | None:
    """The reply's data as JSON text; a large reply comes as a reference fetched and decoded later."""
    for key in ("interactiveData", "interactiveDataRef"):
        if key in body:
            if not isinstance(body[key], dict):
                raise PayloadError(f"{key} must be an object", field=key)
            return json.dumps({key: body[key]}, separators=(",", ":"), sort_keys=True)
    return None


def _reply_title(body: dict[str, Any]) -> str | None:
    data = body.get("interactiveData")
    data = data.get("data") if isinstance(data, dict) else None
    reply = data.get("replyMessage") if isinstance(data, dict) else None
    title = reply.get("title") if isinstance(reply, dict) else None
    return title if isinstance(title, str) else None


def _details(body: dict[str, Any], customer: str, request: Request) -> dict[str, Any]:
    details: dict[str, Any] = {"opaque_id": customer}
    for key in ("locale", "intent", "group"):  # intent / group: biz-intent-id / biz-group-id of the entry URL
        if isinstance(body.get(key), str) and body[key]:
            details[key] = body[key]
    capabilities = request.headers.get("capability-list")
    if capabilities:
        details["capabilities"] = [c.strip() for c in capabilities.split(",") if c.strip()]
    if request.headers.get("device-agent"):
        details["device_agent"] = request.headers["device-agent"]
    return details
