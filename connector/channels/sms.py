"""SMS / MMS through Twilio Programmable Messaging: form-encoded webhooks signed with `X-Twilio-Signature`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from flask import Request, Response
from werkzeug.datastructures import MultiDict

from connector.channels import media
from connector.channels.base import Attachment, Channel, EventKind, InboundEvent
from connector.channels.sending import OutboundFile, OutboundText, Recipient, SendResult, call, json_body
from connector.errors import (
    MissingSignature,
    PayloadError,
    PermanentError,
    RetryableError,
    SignatureError,
    UnsupportedMediaType,
)
from connector.http_session import retry_after

FORM = "application/x-www-form-urlencoded"
# Twilio delivers at most 10 media per MMS (MediaUrl0..MediaUrl9).
MAX_MEDIA = 10
MEDIA_COUNTS = frozenset(str(n) for n in range(MAX_MEDIA + 1))
# Carrier geo fields Twilio adds when it knows them; kept as customer details.
GEO_FIELDS = {"FromCountry": "country", "FromState": "state", "FromCity": "city", "FromZip": "zip"}
DEFAULT_PORTS = {"https": 443, "http": 80}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Send errors that repeating cannot fix, with what the operator can do about each.
PERMANENT_REASONS = {
    20003: "authentication failed; check the asset's account_sid and auth_token",
    21211: "the customer's number is not a valid phone number",
    21602: "the message has no body and no media",
    21610: "the customer replied STOP; they must opt in again (text START) before they can be messaged",
    21612: "Twilio cannot route a message from the asset's number to this customer's number",
    21614: "the customer's number cannot receive SMS (e.g. a landline)",
    21623: "too many media in one message (at most 10)",
    21635: "the customer's number is a landline",
}
RATE_LIMITED = 20429


class Sms(Channel):
    name = "sms"
    title = "SMS (Twilio)"
    secret_fields = ("auth_token",)
    example_address = "+15551230001"
    message_event = "mo"
    # Twilio accepts up to 1600 characters per message body and splits it into segments itself.
    max_text = 1600
    typing = False
    window = None
    attachments_in = frozenset({"image/*", "audio/*", "video/*", "text/*", "application/*"})
    # MMS media Twilio delivers natively on US/CA numbers (and resizes); others go as a link.
    attachments_out = frozenset({"image/jpeg", "image/png", "image/gif"})
    max_attachment_bytes = 5 * 1024 * 1024  # MMS: 5 MB in total per message
    # Twilio retries only on connect failure (1 retry by default, at most 5): two days is ample.
    dedupe_ttl = timedelta(days=2)

    def verify(self, request: Request) -> None:
        """Twilio's scheme: Base64(HMAC-SHA1(auth token, URL + name+value of every POST param by name)).

        The URL is the public one (PUBLIC_BASE_URL + path + raw query), because behind a proxy the
        request URL differs from the one Twilio signed; it is tried with and without the default
        port, as Twilio's own validator does, since Twilio signs either form.
        """
        header = request.headers.get("X-Twilio-Signature")
        if not header:
            raise MissingSignature("X-Twilio-Signature header is missing")
        if request.mimetype != FORM:
            raise UnsupportedMediaType(f"expected {FORM}, got {request.mimetype or 'none'}")
        token = str(self.asset["auth_token"]).encode()
        given = header.strip().encode()
        matches = [
            hmac.compare_digest(given, _signature(token, url, request.form))
            for url in _url_variants(self.public_url(request))
        ]
        if not any(matches):
            raise SignatureError(
                "X-Twilio-Signature does not match; check the asset's auth token and that PUBLIC_BASE_URL "
                "is the URL configured in Twilio"
            )

    def parse(self, request: Request) -> list[InboundEvent]:
        """One incoming SMS / MMS per request; Twilio reassembles long SMS into one webhook."""
        form = request.form
        sid = _field(form, "MessageSid")
        sender = _field(form, "From")
        recipient = _field(form, "To")
        if recipient != str(self.asset["number"]):
            raise PayloadError(f"To is not this asset's number {self.asset['number']}", field="To")
        details: dict[str, Any] = {"number": sender}
        for param, key in GEO_FIELDS.items():
            if form.get(param):
                details[key] = form[param]
        if form.get("ProfileName"):  # present when the number is a WhatsApp sender via Twilio
            details["profile_name"] = form["ProfileName"]
        return [
            InboundEvent(
                channel=self.name,
                asset=self.asset.name,
                customer=sender,
                kind=EventKind.MESSAGE,
                provider_id=sid,
                # Twilio's incoming-message webhook carries no timestamp; the time of receipt stands in.
                timestamp=time.time(),
                text=form.get("Body") or None,
                attachments=tuple(_media(form)),
                details=details,
            )
        ]

    def parse_status(self, request: Request) -> list[InboundEvent]:
        """A StatusCallback for a message we sent: `To` is the customer; one callback per status change."""
        form = request.form
        sid = _field(form, "MessageSid")
        status = _field(form, "MessageStatus")
        recipient = _field(form, "To")
        details: dict[str, Any] = {}
        if form.get("ErrorCode"):
            details["error_code"] = form["ErrorCode"]
        return [
            InboundEvent(
                channel=self.name,
                asset=self.asset.name,
                customer=recipient,
                kind=EventKind.RECEIPT,
                # Twilio may repeat a callback; (MessageSid, MessageStatus) identifies each transition.
                provider_id=f"{sid}:{status}",
                timestamp=time.time(),
                status=status,
                refers_to=(sid,),
                details=details,
            )
        ]

    def acknowledge(self) -> Response:
        # An empty TwiML document: acknowledged, no reply; a non-XML 200 logs Twilio error 11200.
        return Response(EMPTY_TWIML, status=200, mimetype="text/xml")

    # -- outbound (no typing, no window, nothing to close) -----------------------------------

    def send_text(self, to: Recipient, message: OutboundText, *, key: str, now: float) -> SendResult:
        return self._create_message(to, [("Body", message.text)])

    def send_file(self, to: Recipient, file: OutboundFile, *, key: str, now: float) -> SendResult:
        # MMS: Twilio fetches MediaUrl itself; the caption travels as the Body of the same message.
        fields = [("MediaUrl", file.url)]
        if file.caption:
            self.check_text(file.caption)
            fields.append(("Body", file.caption))
        return self._create_message(to, fields)

    def _create_message(self, to: Recipient, fields: list[tuple[str, str]]) -> SendResult:
        sender = self.asset.get("messaging_service_sid")
        form = [("To", to.address), ("MessagingServiceSid", sender) if sender else ("From", str(self.asset["number"]))]
        response = call(
            self.session,
            "POST",
            f"{self._api_base}/2010-04-01/Accounts/{self.asset['account_sid']}/Messages.json",
            what="Twilio send",
            data=form + fields,
            auth=self._auth,
        )
        _raise_for_twilio(response)
        sid = json_body(response).get("sid")
        return SendResult(sid if isinstance(sid, str) else None)

    def download(self, attachment: Attachment, to: Recipient) -> tuple[bytes, str | None]:
        """MediaUrlN is Twilio's Media resource: Basic auth, and possibly a redirect to its CDN."""
        if not attachment.url:
            raise PermanentError("the customer's MMS media has no URL")
        hosts = (*media.TWILIO_MEDIA_HOSTS, media.host_of(self._api_base))
        return self.fetch_media(attachment.url, hosts=hosts, auth=self._auth)

    @property
    def _api_base(self) -> str:
        return str(self.asset["api_base_url"]).rstrip("/")

    @property
    def _auth(self) -> tuple[str, str]:
        return (str(self.asset["account_sid"]), str(self.asset["auth_token"]))


def _raise_for_twilio(response: requests.Response) -> None:
    """Twilio's error body is `{"code", "message", "more_info", "status"}`; 429 / 20429 and 5xx pass."""
    status = response.status_code
    if 200 <= status < 300:
        return
    body = json_body(response)
    code = body.get("code")
    if status == 429 or code == RATE_LIMITED or status >= 500:
        raise RetryableError(f"Twilio {code or status}: try again later", wait=retry_after(response))
    if status == 401 and code is None:
        code = 20003
    reason = PERMANENT_REASONS.get(code) if isinstance(code, int) else None
    raise PermanentError(f"Twilio {code or status}: {reason or body.get('message') or f'HTTP {status}'}")


def _signature(token: bytes, url: str, params: MultiDict[str, str]) -> bytes:
    # Params sorted by name; repeated names contribute each distinct value in sorted order.
    data = url + "".join(name + value for name in sorted(params) for value in sorted(set(params.getlist(name))))
    return base64.b64encode(hmac.new(token, data.encode(), hashlib.sha1).digest())


def _url_variants(url: str) -> Iterator[str]:
    """The URL as configured, plus the same URL with the default port added or removed."""
    yield url
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme)
    if default is None:
        return
    host, colon, port = parts.netloc.rpartition(":")
    if colon and port.isdigit():  # "[::1]" ends in "1]", not digits: no port
        if int(port) == default:
            yield urlunsplit(parts._replace(netloc=host))
    else:
        yield urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))


def _field(form: MultiDict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise PayloadError(f"{name} is missing", field=name)
    return value


def _media(form: MultiDict[str, str]) -> Iterator[Attachment]:
    raw = form.get("NumMedia") or "0"
    if raw not in MEDIA_COUNTS:
        raise PayloadError(f"NumMedia must be a whole number from 0 to {MAX_MEDIA}", field="NumMedia")
    for n in range(int(raw)):
        yield Attachment(url=_field(form, f"MediaUrl{n}"), mime_type=form.get(f"MediaContentType{n}") or None)
