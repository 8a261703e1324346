"""A customer on any channel: sends the webhooks each provider would send to the connector.

Payload shapes are those of `tests/fixtures/<channel>/` (what the parsers accept); each request is
signed the provider's way with the asset's secret and carries fresh provider ids:

- SMS: Twilio form POST, `X-Twilio-Signature` over `public_base_url` + path (the URL Twilio was
  configured with, which the connector checks against its PUBLIC_BASE_URL);
- Messenger / WhatsApp: Meta JSON, `X-Hub-Signature-256` over the raw bytes with the app secret;
- Apple: gzip JSON, a HS256 JWT with `aud` = the MSP id, headers id / source-id / destination-id;
- in-app: JSON with `X-Timestamp` / `X-Signature` (docs/protocols/channels.md, "In-app: signature").

Files go into the provider simulators' media store first (in-process, or over HTTP at
`{sandbox_url}/providers/files` when the simulators run in another process), so the connector
fetches them the provider's way. Every send also tells the provider store that the customer just
wrote (the messaging windows count from it).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests

from connector.config.model import Asset, Config
from connector.sandbox.providers import ProviderSimulators
from connector.sandbox.providers.apple import MMCS_OWNER, attachment_key, encrypt, mmcs_checksum
from connector.sandbox.providers.files import (
    apple_mmcs_url,
    inapp_file_url,
    messenger_cdn_url,
    twilio_media_url,
)
from connector.sandbox.signing import apple_jwt, inapp_headers, meta_signature, twilio_signature

log = logging.getLogger(__name__)

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8100"
FORM = "application/x-www-form-urlencoded"
OBJECT_REPLACEMENT = "\ufffc"  # Apple: where an attachment bubble sits in `body`
APPLE_CAPABILITIES = "QUICK,LIST,TIME,AUTH,AUTH2,FORM"
JWT_LIFETIME = 300  # seconds an Apple JWT of the emulator is valid


class SandboxUnavailable(RuntimeError):
    """The provider simulators could not be reached to store a file."""


class CustomerEmulator:
    """Sends what a customer's provider would send to `{connector_url}/webhooks/{channel}/{asset}`.

    `public_base_url` is the URL the provider believes it calls (Twilio signs it). Without
    `providers` (another process runs them) files and inbound times go over HTTP to `sandbox_url`.
    """

    def __init__(
        self,
        config: Config,
        connector_url: str,
        public_base_url: str,
        providers: ProviderSimulators | None = None,
        *,
        sandbox_url: str = DEFAULT_SANDBOX_URL,
        timeout: float = 10.0,
    ) -> None:
        self.config = config
        self.connector_url = connector_url.rstrip("/")
        self.public_base_url = public_base_url.rstrip("/")
        self.providers = providers
        self.sandbox_url = (providers.base_url if providers else sandbox_url).rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self._lock = threading.Lock()
        self._history: dict[tuple[str, str], list[dict[str, Any]]] = {}

    # -- the customer's actions ------------------------------------------------------------------

    def send_text(
        self,
        asset_name: str,
        customer: str,
        text: str,
        *,
        profile_name: str | None = None,
        locale: str | None = None,
        check: bool = True,
    ) -> requests.Response:
        asset = self.asset(asset_name)
        build = {
            "sms": _sms_text,
            "messenger": _messenger_text,
            "whatsapp": _whatsapp_text,
            "apple": _apple_text,
            "inapp": _inapp_text,
        }[asset.channel]
        request = build(asset, customer, text, profile_name=profile_name, locale=locale)
        return self._send(asset, customer, request, check=check, kind="text", text=text)

    def send_file(
        self,
        asset_name: str,
        customer: str,
        data: bytes,
        mime_type: str,
        name: str,
        *,
        caption: str | None = None,
        check: bool = True,
    ) -> requests.Response:
        asset = self.asset(asset_name)
        if asset.channel == "apple":
            # Apple: the file sits encrypted on MMCS; the key travels in the message.
            key = secrets.token_bytes(32)
            encrypted = encrypt(data, key)
            file_id = self._put_file(encrypted, "application/octet-stream", name)
            item = {
                "name": name,
                "mimeType": mime_type,
                "size": len(data),
                "signature-base64": mmcs_checksum(encrypted),
                "url": apple_mmcs_url(self.sandbox_url, file_id),
                "owner": MMCS_OWNER,
                "key": attachment_key(key),
            }
            request = _apple_request(asset, customer, {"type": "text", "body": OBJECT_REPLACEMENT + (caption or "")})
            request.body["attachments"] = [item]
        else:
            file_id = self._put_file(data, mime_type, name)
            if asset.channel == "messenger" and caption:
                # A Messenger user's text and photo arrive as two messages.
                self.send_text(asset_name, customer, caption, check=check)
            build = {
                "sms": _sms_file,
                "messenger": _messenger_file,
                "whatsapp": _whatsapp_file,
                "inapp": _inapp_file,
            }[asset.channel]
            request = build(asset, customer, self.sandbox_url, file_id, data, mime_type, name, caption)
        return self._send(asset, customer, request, check=check, kind="file", text=caption, file_name=name)

    def send_typing(self, asset_name: str, customer: str, on: bool, *, check: bool = True) -> requests.Response:
        """Customer typing: only Apple and in-app tell the business (the others raise ValueError)."""
        asset = self.asset(asset_name)
        if asset.channel == "apple":
            request = _apple_request(asset, customer, {"type": "typing_start" if on else "typing_end"})
        elif asset.channel == "inapp":
            request = _inapp_request(asset, customer, {"type": "typing_start" if on else "typing_stop"})
        else:
            raise ValueError(f"{asset.channel} does not tell the business when the customer types")
        return self._send(asset, customer, request, check=check, kind="typing_on" if on else "typing_off")

    def send_close(self, asset_name: str, customer: str, *, check: bool = True) -> requests.Response:
        """The customer closes (Apple: deletes) the conversation; Apple and in-app only."""
        asset = self.asset(asset_name)
        if asset.channel == "apple":
            request = _apple_request(asset, customer, {"type": "close"})
        elif asset.channel == "inapp":
            request = _inapp_request(asset, customer, {"type": "close"})
        else:
            raise ValueError(f"{asset.channel} has no customer-side close")
        return self._send(asset, customer, request, check=check, kind="close")

    def send_postback(
        self, asset_name: str, customer: str, payload: str, title: str, *, check: bool = True
    ) -> requests.Response:
        """A button tap: Messenger postback, WhatsApp interactive button reply (others: ValueError)."""
        asset = self.asset(asset_name)
        if asset.channel == "messenger":
            request = _messenger_event(
                asset, customer, {"postback": {"mid": _mid(), "title": title, "payload": payload}}
            )
        elif asset.channel == "whatsapp":
            message = {
                "type": "interactive",
                "interactive": {"type": "button_reply", "button_reply": {"id": payload, "title": title}},
            }
            request = _whatsapp_message(asset, customer, message, profile_name=None)
        else:
            raise ValueError(f"{asset.channel} has no postback buttons in the sandbox")
        return self._send(asset, customer, request, check=check, kind="postback", text=title)

    def send_list_reply(
        self, asset_name: str, customer: str, payload: str, title: str, *, check: bool = True
    ) -> requests.Response:
        """A row chosen in a WhatsApp list message: `interactive.list_reply` {id, title}
        (docs/protocols/channels.md); other channels raise ValueError."""
        asset = self.asset(asset_name)
        if asset.channel != "whatsapp":
            raise ValueError(f"{asset.channel} has no list messages")
        message = {
            "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {"id": payload, "title": title}},
        }
        request = _whatsapp_message(asset, customer, message, profile_name=None)
        return self._send(asset, customer, request, check=check, kind="postback", text=title)

    def send_quick_reply(
        self, asset_name: str, customer: str, payload: str, title: str, *, check: bool = True
    ) -> requests.Response:
        """A tap on a Messenger quick reply: a message with the title as its text and the reply's
        `quick_reply.payload` (docs/protocols/channels.md); other channels raise ValueError."""
        asset = self.asset(asset_name)
        if asset.channel != "messenger":
            raise ValueError(f"{asset.channel} has no quick replies")
        message = {"mid": _mid(), "text": title, "quick_reply": {"payload": payload}}
        request = _messenger_event(asset, customer, {"message": message})
        return self._send(asset, customer, request, check=check, kind="postback", text=title)

    def history(self, asset_name: str, customer: str) -> list[dict[str, Any]]:
        """What this customer sent to the asset through the emulator, oldest first."""
        with self._lock:
            return [dict(e) for e in self._history.get((asset_name, customer), [])]

    # -- plumbing ----------------------------------------------------------------------------------

    def asset(self, name: str) -> Asset:
        asset = next((a for a in self.config.assets if a.name == name), None)
        if asset is None:
            known = ", ".join(a.name for a in self.config.assets) or "none"
            raise ValueError(f"no asset named {name!r} in the configuration (configured: {known})")
        return asset

    def _send(
        self,
        asset: Asset,
        customer: str,
        request: _Request,
        *,
        check: bool,
        kind: str,
        text: str | None = None,
        file_name: str | None = None,
    ) -> requests.Response:
        self._note_inbound(asset, customer, request.message_id)
        path = f"/webhooks/{asset.channel}/{asset.name}"
        data, headers = request.encode(self.public_base_url + path)
        response = self.session.post(self.connector_url + path, data=data, headers=headers, timeout=self.timeout)
        with self._lock:
            self._history.setdefault((asset.name, customer), []).append(
                {
                    "at": time.time(),
                    "kind": kind,
                    "text": text,
                    "file_name": file_name,
                    "message_id": request.message_id,
                    "status": response.status_code,
                }
            )
        if check:
            response.raise_for_status()
        return response

    def _note_inbound(self, asset: Asset, customer: str, message_id: str) -> None:
        if self.providers is not None:
            self.providers.store.note_inbound(asset.channel, asset.name, customer, message_id=message_id)
            return
        body = {"channel": asset.channel, "asset": asset.name, "customer": customer, "message_id": message_id}
        try:
            self.session.post(f"{self.sandbox_url}/providers/inbound", json=body, timeout=2)
        except requests.RequestException:
            # Only the messaging windows need it; a text still reaches the connector without it.
            log.warning("provider simulators not reachable at %s: inbound time not recorded", self.sandbox_url)

    def _put_file(self, data: bytes, mime_type: str, name: str) -> str:
        if self.providers is not None:
            return self.providers.files.put(data, mime_type, name)
        try:
            response = self.session.post(
                f"{self.sandbox_url}/providers/files",
                data=data,
                headers={"Content-Type": mime_type, "X-File-Name": name},
                timeout=self.timeout,
            )
            response.raise_for_status()
        except requests.RequestException as exc:
            raise SandboxUnavailable(
                f"could not store the file in the provider simulators at {self.sandbox_url} ({exc}); "
                "start the sandbox (make run) or pass the simulators' URL"
            ) from exc
        return str(response.json()["id"])


# -- payloads ------------------------------------------------------------------------------------------


class _Request:
    """One webhook: the JSON body (or the form pairs Twilio posts), headers, and its provider id.

    `sign(raw body, public URL) -> headers` adds the provider's signature headers.
    """

    def __init__(
        self,
        message_id: str,
        *,
        body: dict[str, Any] | None = None,
        form: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        sign: Callable[[bytes, str], dict[str, str]] | None = None,
    ) -> None:
        self.message_id = message_id
        self.body = body
        self.form = form or []
        self.headers = dict(headers or {})
        self.sign = sign

    def encode(self, public_url: str) -> tuple[bytes, dict[str, str]]:
        """The bytes to post and every header, signed for `public_url`."""
        headers = dict(self.headers)
        if self.body is None:
            raw = urlencode(self.form).encode()
            headers["Content-Type"] = FORM
        else:
            raw = json.dumps(self.body, ensure_ascii=False).encode()
            if headers.get("Content-Encoding") == "gzip":
                raw = gzip.compress(raw)
        if self.sign is not None:
            headers.update(self.sign(raw, public_url))
        return raw, headers


def _mid() -> str:
    return "m_" + base64.urlsafe_b64encode(secrets.token_bytes(60)).decode().rstrip("=")


def _wamid() -> str:
    return "wamid." + base64.b64encode(b"\x15\x02\x00\x12\x18" + secrets.token_bytes(20)).decode()


# SMS (Twilio) -----------------------------------------------------------------------------------------


def _sms_form(asset: Asset, customer: str, sid: str, body: str, media: list[tuple[str, str]]) -> _Request:
    form = [
        ("ToCountry", "US"),
        ("SmsMessageSid", sid),
        ("NumMedia", str(len(media))),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", str(asset["number"])),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", str(asset["account_sid"])),
        ("From", customer),
        ("ApiVersion", "2010-04-01"),
    ]
    if asset.get("messaging_service_sid"):
        form.append(("MessagingServiceSid", str(asset["messaging_service_sid"])))
    for n, (url, mime_type) in enumerate(media):
        form += [(f"MediaUrl{n}", url), (f"MediaContentType{n}", mime_type)]
    token = str(asset["auth_token"])
    # Twilio signs the URL it was configured with plus the sorted form parameters.
    return _Request(sid, form=form, sign=lambda raw, url: {"X-Twilio-Signature": twilio_signature(token, url, form)})


def _sms_text(asset: Asset, customer: str, text: str, **_: Any) -> _Request:
    return _sms_form(asset, customer, "SM" + secrets.token_hex(16), text, [])


def _sms_file(
    asset: Asset, customer: str, base_url: str, file_id: str, data: bytes, mime: str, name: str, caption: str | None
) -> _Request:
    sid = "MM" + secrets.token_hex(16)  # MMS sids start with MM
    url = twilio_media_url(base_url, str(asset["account_sid"]), sid, file_id)
    return _sms_form(asset, customer, sid, caption or "", [(url, mime)])


# Messenger --------------------------------------------------------------------------------------------


def _messenger_event(asset: Asset, psid: str, event: dict[str, Any]) -> _Request:
    now = int(time.time() * 1000)  # Messenger timestamps are milliseconds
    page_id = str(asset["page_id"])
    item = {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": now, **event}
    body = {"object": "page", "entry": [{"id": page_id, "time": now, "messaging": [item]}]}
    message_id = (event.get("message") or event.get("postback") or {}).get("mid", "")
    return _Request(
        message_id,
        body=body,
        headers={"Content-Type": "application/json"},
        sign=lambda raw, url: {"X-Hub-Signature-256": meta_signature(str(asset["app_secret"]), raw)},
    )


def _messenger_text(asset: Asset, customer: str, text: str, **_: Any) -> _Request:
    return _messenger_event(asset, customer, {"message": {"mid": _mid(), "text": text}})


def _messenger_file(
    asset: Asset, customer: str, base_url: str, file_id: str, data: bytes, mime: str, name: str, caption: str | None
) -> _Request:
    kind = mime.split("/", 1)[0] if mime.split("/", 1)[0] in ("image", "video", "audio") else "file"
    attachment = {"type": kind, "payload": {"url": messenger_cdn_url(base_url, file_id)}}
    return _messenger_event(asset, customer, {"message": {"mid": _mid(), "attachments": [attachment]}})


# WhatsApp ---------------------------------------------------------------------------------------------


def _whatsapp_message(asset: Asset, wa_id: str, message: dict[str, Any], *, profile_name: str | None) -> _Request:
    if not wa_id.isdigit():
        raise ValueError(f"a WhatsApp customer is a wa_id (digits only), got {wa_id!r}")
    wamid = _wamid()
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": str(asset["phone_number_id"])},
        "contacts": [{"profile": {"name": profile_name or f"Customer {wa_id[-4:]}"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), **message}],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": str(asset.get("waba_id") or "0"), "changes": [{"value": value, "field": "messages"}]}],
    }
    return _Request(
        wamid,
        body=body,
        headers={"Content-Type": "application/json"},
        sign=lambda raw, url: {"X-Hub-Signature-256": meta_signature(str(asset["app_secret"]), raw)},
    )


def _whatsapp_text(asset: Asset, customer: str, text: str, *, profile_name: str | None = None, **_: Any) -> _Request:
    return _whatsapp_message(asset, customer, {"type": "text", "text": {"body": text}}, profile_name=profile_name)


def _whatsapp_file(
    asset: Asset, customer: str, base_url: str, file_id: str, data: bytes, mime: str, name: str, caption: str | None
) -> _Request:
    major = mime.split("/", 1)[0]
    kind = "sticker" if mime == "image/webp" else major if major in ("image", "audio", "video") else "document"
    media: dict[str, Any] = {
        "mime_type": mime,
        "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "id": file_id,
    }
    if caption and kind in ("image", "video", "document"):
        media["caption"] = caption
    if kind == "document":
        media["filename"] = name
    return _whatsapp_message(asset, customer, {"type": kind, kind: media}, profile_name=None)


# Apple ------------------------------------------------------------------------------------------------


def _apple_request(asset: Asset, opaque_id: str, fields: dict[str, Any], *, locale: str | None = None) -> _Request:
    message_id = str(uuid.uuid4())
    business = str(asset["business_id"])
    body = {"v": 1, "id": message_id, "sourceId": opaque_id, "destinationId": business, **fields}
    body["locale"] = locale or "en_US"
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",  # Apple usually gzips the body
        "Authorization": "Bearer " + apple_jwt(str(asset["secret"]), str(asset["msp_id"]), expires_in=JWT_LIFETIME),
        "id": message_id,
        "source-id": opaque_id,
        "destination-id": business,
        "capability-list": APPLE_CAPABILITIES,
        "device-agent": "iPhone OS",
    }
    return _Request(message_id, body=body, headers=headers)


def _apple_text(asset: Asset, customer: str, text: str, *, locale: str | None = None, **_: Any) -> _Request:
    return _apple_request(asset, customer, {"type": "text", "body": text}, locale=locale)


# In-app -----------------------------------------------------------------------------------------------


def _inapp_request(
    asset: Asset, user_id: str, fields: dict[str, Any], *, name: str | None = None, locale: str | None = None
) -> _Request:
    message_id = str(uuid.uuid4())
    customer: dict[str, Any] = {"id": user_id}
    if name:
        customer["name"] = name
    if locale:
        customer["locale"] = locale
    body = {
        "message_id": message_id,
        "customer": customer,
        **fields,
        "sent_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    return _Request(
        message_id,
        body=body,
        headers={"Content-Type": "application/json"},
        sign=lambda raw, url: inapp_headers(str(asset["secret"]), raw),
    )


def _inapp_text(
    asset: Asset, customer: str, text: str, *, profile_name: str | None = None, locale: str | None = None
) -> _Request:
    return _inapp_request(asset, customer, {"type": "text", "text": text}, name=profile_name, locale=locale)


def _inapp_file(
    asset: Asset, customer: str, base_url: str, file_id: str, data: bytes, mime: str, name: str, caption: str | None
) -> _Request:
    attachment = {"url": inapp_file_url(base_url, file_id), "mime_type": mime, "size": len(data), "name": name}
    fields: dict[str, Any] = {"type": "attachment", "attachments": [attachment]}
    if caption:
        fields["text"] = caption
    return _inapp_request(asset, customer, fields)
