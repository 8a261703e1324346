"""Facebook Messenger (Meta Messenger Platform): `entry[]` of `messaging[]` / `standby[]` events."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any, TypedDict

from flask import Request

from connector.channels.base import Attachment, EventKind, InboundEvent
from connector.channels.meta import MetaChannel, optional, require
from connector.channels.sending import NOT_SENT, OutboundFile, OutboundText, Recipient, SendResult
from connector.errors import PayloadError, PermanentError

log = logging.getLogger(__name__)

# Messenger names an attachment's kind, not its MIME type; the relay learns the exact type on download.
ATTACHMENT_TYPES = {
    "image": "image/*",
    "video": "video/*",
    "audio": "audio/*",
    "file": "application/octet-stream",
    "sticker": "image/*",
    "fallback": "text/uri-list",  # a shared link: payload.url with a title
}
MEDIA_TYPES = ("image", "video", "audio", "file")
# With the HUMAN_AGENT tag (an App Review permission, asset option human_agent_tag) a human agent
# may answer up to 7 days after the customer's last message.
HUMAN_AGENT_WINDOW = timedelta(days=7)
# The User Profile API's fields every Page may read once the person has messaged it; `locale` (and
# timezone, gender) need Meta's approval ("Business Asset User Profile Access"), and asking without
# it fails the whole call (code 100, subcode 2018247), so it is asked only with profile_locale: true.
PROFILE_FIELDS = ("first_name", "last_name", "profile_pic")
PROFILE_LOCALE_FIELDS = ("locale",)


class _EventBase(TypedDict):
    """The InboundEvent fields every event of one messaging item shares."""

    channel: str
    asset: str
    customer: str
    details: dict[str, Any]


class Messenger(MetaChannel):
    name = "messenger"
    title = "Facebook Messenger"
    secret_fields = ("app_secret", "page_access_token")  # the verify token is shown: Meta's console asks for it
    example_address = "7000000000000001"
    object_type = "page"
    # Send API text limit: 2000 UTF-8 characters.
    max_text = 2000
    typing = True  # sender_action typing_on / typing_off
    max_buttons = 13  # quick replies of the Send API: 13 at most, titles of 20 characters
    # Standard messaging within 24 h of the customer's last message (HUMAN_AGENT tag: 7 days, opt-in).
    window = timedelta(hours=24)
    attachments_in = frozenset({"image/*", "video/*", "audio/*", "application/*", "text/uri-list"})
    attachments_out = frozenset(
        {"image/jpeg", "image/png", "image/gif", "video/mp4", "audio/mpeg", "audio/mp4", "application/pdf"}
    )
    max_attachment_bytes = 25 * 1024 * 1024  # Send API attachment upload limit
    # Meta retries until 2xx and unsubscribes the app after about an hour of failures.
    dedupe_ttl = timedelta(days=2)

    label = "Messenger"
    bearer_option = "page_access_token"
    # Code 10 / subcode 2018278: the message is sent outside the allowed window.
    window_errors = frozenset({(10, 2018278)})
    # 4, 17, 32, 613, 80006: rate limits; 2: temporary service problem.
    retryable_codes = frozenset({2, 4, 17, 32, 613, 80006})
    permanent_reasons = {
        190: "the page access token is invalid or expired; generate a new page_access_token for the asset",
        100: "Meta refused a parameter of the message (invalid PSID or attachment URL)",
        551: "this person is not available to receive messages right now",
        10: "the page lacks the permission for this message; check the app's pages_messaging permission",
    }
    # A profile Graph will not show: 230 (the page lacks pages_messaging for this person), 10 and 200
    # (permission errors), 100/33 (no such PSID for this page, or not readable), 100/2018247 (a field
    # asked without Meta's approval). The conversation goes on without the profile.
    absent_errors = frozenset({(230, None), (10, None), (200, None), (100, 33), (100, 2018247)})

    # -- customer profile --------------------------------------------------------------------

    @property
    def profile_fields(self) -> tuple[str, ...]:
        return PROFILE_FIELDS + (PROFILE_LOCALE_FIELDS if self.asset.get("profile_locale") else ())

    def profile(self, customer: str) -> dict[str, str] | None:
        """The User Profile API's answer for a PSID as customer details: `first_name`, `last_name`,
        `profile_name` (the two together, as WhatsApp's and Twilio's names are kept), `profile_pic`
        and, with profile_locale, `locale` (Meta's form, `en_US`); only the fields Graph filled in.
        None when Graph has no profile for us or the call failed (MetaChannel.graph_lookup)."""
        answer = self.graph_lookup(customer, what="messenger profile", fields=self.profile_fields)
        if answer is None:
            return None
        details = {
            name: answer[name].strip()
            for name in self.profile_fields
            if isinstance(answer.get(name), str) and answer[name].strip()
        }
        full_name = " ".join(details[name] for name in ("first_name", "last_name") if name in details)
        if full_name:
            details["profile_name"] = full_name
        return details

    # -- outbound ----------------------------------------------------------------------------

    def window_open(self, to: Recipient, now: float) -> bool:
        if super().window_open(to, now) or to.last_inbound_at is None:
            return True
        return self._human_agent_tag and now - to.last_inbound_at <= HUMAN_AGENT_WINDOW.total_seconds()

    def send_text(self, to: Recipient, message: OutboundText, *, key: str, now: float) -> SendResult:
        content: dict[str, Any] = {"text": message.text}
        if message.buttons:
            content["quick_replies"] = [
                {"content_type": "text", "title": title, "payload": payload} for title, payload in message.buttons
            ]
        return self._send_message(to, content, now=now)

    def send_file(self, to: Recipient, file: OutboundFile, *, key: str, now: float) -> SendResult:
        # A Messenger attachment has no caption: it goes first, as its own text.
        self.send_caption(to, file, key=key, now=now)
        attachment = {"type": _attachment_type(file.mime_type), "payload": {"url": file.url, "is_reusable": True}}
        return self._send_message(to, {"attachment": attachment}, now=now)

    def send_typing(self, to: Recipient, on: bool, *, key: str, now: float) -> SendResult:
        if not super().window_open(to, now):  # the HUMAN_AGENT tag covers messages, not sender actions
            return NOT_SENT
        body = {"recipient": {"id": to.address}, "sender_action": "typing_on" if on else "typing_off"}
        self.graph("POST", f"{self.asset['page_id']}/messages", what="typing", json=body)
        return SendResult(None)

    def _send_message(self, to: Recipient, message: dict[str, Any], *, now: float) -> SendResult:
        body: dict[str, Any] = {"recipient": {"id": to.address}, "messaging_type": "RESPONSE", "message": message}
        if not super().window_open(to, now):  # past 24 h: only the human agent tag may still answer
            body["messaging_type"] = "MESSAGE_TAG"
            body["tag"] = "HUMAN_AGENT"
        answer = self.graph("POST", f"{self.asset['page_id']}/messages", what="send", json=body)
        mid = answer.get("message_id")
        return SendResult(mid if isinstance(mid, str) else None)

    @property
    def _human_agent_tag(self) -> bool:
        return bool(self.asset.get("human_agent_tag"))

    def download(self, attachment: Attachment, to: Recipient) -> tuple[bytes, str | None]:
        """Messenger's payload.url is a signed CDN URL: no credentials."""
        if not attachment.url:
            raise PermanentError("the customer's Messenger attachment has no URL (template or location)")
        return self.fetch_media(attachment.url, hosts=self.media_hosts())

    def parse(self, request: Request) -> list[InboundEvent]:
        body = self.load_json(request)
        page_id = str(self.asset["page_id"])
        events: list[InboundEvent] = []
        for e, entry in enumerate(body["entry"]):
            where = f"entry[{e}]"
            if str(require(entry, "id", where, (str, int))) != page_id:
                raise PayloadError(f"{where}.id is not this asset's page {page_id}", field=f"{where}.id")
            # Events arrive in messaging[]; while another app owns the thread, in standby[].
            for key in ("messaging", "standby"):
                items = entry.get(key)
                if items is None:
                    continue
                if not isinstance(items, list):
                    raise PayloadError(f"{where}.{key} must be a list", field=f"{where}.{key}")
                for i, item in enumerate(items):
                    event = self._event(item, f"{where}.{key}[{i}]", standby=key == "standby")
                    if event is not None:
                        events.append(event)
        return events

    def _event(self, item: Any, where: str, *, standby: bool) -> InboundEvent | None:
        message = item.get("message") if isinstance(item, dict) else None
        if isinstance(message, dict) and message.get("is_echo"):
            # Echoes of what the page sent (us or Meta's inbox): sender and recipient are swapped.
            return None
        psid = str(require(require(item, "sender", where, dict), "id", f"{where}.sender", (str, int)))
        recipient = str(require(require(item, "recipient", where, dict), "id", f"{where}.recipient", (str, int)))
        if recipient != str(self.asset["page_id"]):
            raise PayloadError(f"{where}.recipient.id is not this asset's page", field=f"{where}.recipient.id")
        # Messenger timestamps are milliseconds.
        timestamp = _millis(require(item, "timestamp", where, (int, float)), f"{where}.timestamp")
        details: dict[str, Any] = {"psid": psid}
        if standby:
            details["standby"] = True
        for holder in (item, message, item.get("postback")):
            if isinstance(holder, dict) and isinstance(holder.get("referral"), dict):
                details["referral"] = holder["referral"]  # m.me link / ad / Get Started referral
        base: _EventBase = {"channel": self.name, "asset": self.asset.name, "customer": psid, "details": details}

        if message is not None:
            return self._message(require(item, "message", where, dict), f"{where}.message", timestamp, base)
        if "postback" in item:
            postback = require(item, "postback", where, dict)
            payload = optional(postback, "payload", f"{where}.postback", str)  # absent in standby
            title = optional(postback, "title", f"{where}.postback", str)
            mid = optional(postback, "mid", f"{where}.postback", str)
            if not mid:
                # Older and standby postbacks carry no mid: a redelivery repeats sender, time and payload.
                digest = hashlib.sha256(f"{psid}\x1f{item['timestamp']}\x1f{payload or ''}".encode()).hexdigest()
                mid = f"postback:{digest[:32]}"
            return InboundEvent(
                kind=EventKind.POSTBACK, provider_id=mid, timestamp=timestamp, text=title, payload=payload, **base
            )
        for key, status in (("delivery", "delivered"), ("read", "read")):
            if key in item:
                receipt = require(item, key, where, dict)
                # Receipts have no id: everything sent before the watermark (ms) is delivered / read.
                watermark = require(receipt, "watermark", f"{where}.{key}", int)
                mids = optional(receipt, "mids", f"{where}.{key}", list, [])  # optional in deliveries
                if not all(isinstance(m, str) for m in mids):
                    raise PayloadError(f"{where}.{key}.mids must be a list of ids", field=f"{where}.{key}.mids")
                return InboundEvent(
                    kind=EventKind.RECEIPT,
                    provider_id=f"{psid}:{status}:{watermark}",
                    timestamp=timestamp,
                    status=status,
                    refers_to=tuple(mids),
                    **base,
                )
        # Reactions, opt-ins, referrals of an existing thread, handover notices: acknowledged, not chat.
        log.info("messenger event not handled", extra={"asset": self.asset.name, "fields": ",".join(sorted(item)[:10])})
        return None

    def _message(self, message: dict[str, Any], where: str, timestamp: float, base: _EventBase) -> InboundEvent:
        mid = require(message, "mid", where)
        text = optional(message, "text", where, str)
        attachments = tuple(self._attachments(message.get("attachments"), f"{where}.attachments"))
        kind = EventKind.MESSAGE
        payload: str | None = None
        if "quick_reply" in message:
            kind = EventKind.POSTBACK
            payload = require(require(message, "quick_reply", where, dict), "payload", f"{where}.quick_reply")
        if text is None and not attachments:
            text = "[unsupported Messenger message]"  # still reaches the agent, never silently dropped
        return InboundEvent(
            kind=kind, provider_id=mid, timestamp=timestamp, text=text, attachments=attachments, payload=payload, **base
        )

    def _attachments(self, raw: Any, where: str) -> list[Attachment]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise PayloadError(f"{where} must be a list", field=where)
        attachments: list[Attachment] = []
        for a, item in enumerate(raw):
            awhere = f"{where}[{a}]"
            kind = require(item, "type", awhere)
            payload = item.get("payload") or {}
            if not isinstance(payload, dict):
                raise PayloadError(f"{awhere}.payload must be an object", field=f"{awhere}.payload")
            if kind not in ATTACHMENT_TYPES:
                # template, location, product...: kept so the agent sees something arrived.
                attachments.append(Attachment(name=optional(item, "title", awhere, str), extra={"type": kind}))
                continue
            extra: dict[str, Any] = {"type": kind}
            if payload.get("sticker_id") is not None:
                extra["sticker_id"] = payload["sticker_id"]
            if kind in MEDIA_TYPES:
                url = require(payload, "url", f"{awhere}.payload")
            else:  # a fallback link may carry its URL beside the payload (older format)
                url = optional(payload, "url", f"{awhere}.payload", str) or optional(item, "url", awhere, str)
            attachments.append(
                Attachment(
                    mime_type=ATTACHMENT_TYPES[kind],
                    url=url,
                    name=optional(item, "title", awhere, str),
                    extra=extra,
                )
            )
        return attachments


def _attachment_type(mime: str) -> str:
    """Messenger names the kind of an attachment, not its MIME type; anything else is a file."""
    major = mime.partition("/")[0].lower()
    return major if major in ("image", "video", "audio") else "file"


def _millis(raw: int | float, field: str) -> float:
    if isinstance(raw, bool) or not 0 <= raw < 1e15:
        raise PayloadError(f"{field} is not a timestamp in milliseconds", field=field)
    return raw / 1000
