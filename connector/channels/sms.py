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

from flask import Request, Response
from werkzeug.datastructures import MultiDict

from connector.channels.base import Attachment, Channel, EventKind, InboundEvent
from connector.errors import MissingSignature, PayloadError, SignatureError, UnsupportedMediaType

FORM = "application/x-www-form-urlencoded"
# Twilio delivers at most 10 media per MMS (MediaUrl0..MediaUrl9).
MAX_MEDIA = 10
MEDIA_COUNTS = frozenset(str(n) for n in range(MAX_MEDIA + 1))
# Carrier geo fields Twilio adds when it knows them; kept as customer details.
GEO_FIELDS = {"FromCountry": "country", "FromState": "state", "FromCity": "city", "FromZip": "zip"}
DEFAULT_PORTS = {"https": 443, "http": 80}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


class Sms(Channel):
    name = "sms"
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
