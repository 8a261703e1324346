"""WhatsApp Cloud API (Meta): `entry[].changes[].value` with `messages[]` and `statuses[]`."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from flask import Request

from connector.channels import media
from connector.channels.base import Attachment, EventKind, InboundEvent
from connector.channels.meta import MetaChannel, optional, require
from connector.channels.sending import NOT_SENT, ChoiceForm, OutboundFile, OutboundText, Recipient, SendResult
from connector.errors import PayloadError, PermanentError

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Outbound media kinds by MIME major type; any other file goes as a document (with its file name).
LINK_TYPES = {"image": "image", "audio": "audio", "video": "video"}


class WhatsApp(MetaChannel):
    name = "whatsapp"
    title = "WhatsApp Cloud API"
    secret_fields = ("app_secret", "access_token")  # the verify token is shown: Meta's console asks for it
    example_address = "15551230001"
    object_type = "whatsapp_business_account"
    max_text = 4096
    typing = True
    window = timedelta(hours=24)
    attachments_in = frozenset({"image/*", "audio/*", "video/*", "application/*", "text/plain"})
    attachments_out = frozenset(
        {
            "image/jpeg",
            "image/png",
            "audio/aac",
            "audio/amr",
            "audio/mpeg",
            "audio/mp4",
            "audio/ogg",
            "video/mp4",
            "video/3gpp",
            "application/pdf",
            "text/plain",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        }
    )
    # One cap for all kinds: documents may be 100 MB, other media 16 MB, and WhatsApp itself never
    # delivers media over its limit, so the document limit is the only one a download can reach.
    max_attachment_bytes = 100 * 1024 * 1024
    # WhatsApp retries failed webhook deliveries for up to 7 days; keep 8 to be safe.
    dedupe_ttl = timedelta(days=8)
    # Interactive messages (docs/protocols/channels.md, "WhatsApp: sending"): 1-3 reply buttons of
    # titles <= 20 and ids <= 256, else a list of <= 10 rows of titles <= 24 and ids <= 200; the
    # body that carries either is at most 1024 characters.
    max_buttons = 3
    max_button_title = 20
    max_button_payload = 256
    max_menu_rows = 10
    max_menu_title = 24
    max_menu_payload = 200
    max_choice_text = 1024

    label = "WhatsApp"
    bearer_option = "access_token"
    # 131047: re-engagement message, more than 24 h since the customer's last message.
    window_errors = frozenset({(131047, None)})
    # 130429 throughput, 131056 pair rate limit, 80007 and 4 rate limits, 131000 generic (temporary).
    retryable_codes = frozenset({4, 80007, 130429, 131000, 131056})
    permanent_reasons = {
        131026: "the message is undeliverable (the number is not on WhatsApp, or an old app version)",
        131051: "WhatsApp does not support this message type",
        100: "Meta refused a parameter of the message (invalid recipient, media link or id)",
        190: "the access token is invalid or expired; generate a new access_token for the asset",
        368: "the business account is temporarily blocked for policy violations; see WhatsApp Manager",
    }

    # -- outbound ----------------------------------------------------------------------------

    def send_text(self, to: Recipient, message: OutboundText, *, key: str, now: float) -> SendResult:
        if message.buttons:
            return self._send_message(to, "interactive", self._interactive(message))
        return self._send_message(to, "text", {"body": message.text, "preview_url": False})

    def _interactive(self, message: OutboundText) -> dict[str, Any]:
        """Reply buttons, or a list message of one untitled section; the text is the body."""
        body = {"text": message.text}
        if message.form is ChoiceForm.MENU:
            rows = [{"id": payload, "title": title} for title, payload in message.buttons]
            return {"type": "list", "body": body, "action": {"button": self.menu_label, "sections": [{"rows": rows}]}}
        buttons = [{"type": "reply", "reply": {"id": payload, "title": title}} for title, payload in message.buttons]
        return {"type": "button", "body": body, "action": {"buttons": buttons}}

    def send_file(self, to: Recipient, file: OutboundFile, *, key: str, now: float) -> SendResult:
        kind = LINK_TYPES.get(file.mime_type.partition("/")[0].lower(), "document")
        content: dict[str, Any] = {"link": file.url}
        if kind == "audio":  # audio carries no caption: it goes first, as its own text
            self.send_caption(to, file, key=key, now=now)
        elif file.caption:
            self.check_text(file.caption)
            content["caption"] = file.caption
        if kind == "document":
            content["filename"] = file.name
        return self._send_message(to, kind, content)

    def send_typing(self, to: Recipient, on: bool, *, key: str, now: float) -> SendResult:
        """Typing marks the customer's last message read and shows the indicator for up to 25 s.

        There is no "typing off" (it ends with the reply or after 25 s), and no indicator without a
        message of the customer's to attach it to.
        """
        if not on or not to.last_message_id:
            return NOT_SENT
        body = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": to.last_message_id,
            "typing_indicator": {"type": "text"},
        }
        self.graph("POST", f"{self.asset['phone_number_id']}/messages", what="typing", json=body)
        return SendResult(None)

    def _send_message(self, to: Recipient, kind: str, content: dict[str, Any]) -> SendResult:
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.address,
            "type": kind,
            kind: content,
        }
        answer = self.graph("POST", f"{self.asset['phone_number_id']}/messages", what="send", json=body)
        messages = answer.get("messages")
        first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
        wamid = first.get("id")
        return SendResult(wamid if isinstance(wamid, str) else None)

    def download(self, attachment: Attachment, to: Recipient) -> tuple[bytes, str | None]:
        """A media id resolves to a short-lived URL; both calls carry the access token."""
        if not attachment.media_id:
            raise PermanentError("the customer's WhatsApp media has no id")
        info = self.graph("GET", attachment.media_id, what="media lookup")
        url = info.get("url")
        if not isinstance(url, str) or not url:
            raise PermanentError(f"WhatsApp media {attachment.media_id} has no download URL")
        mime = info.get("mime_type") if isinstance(info.get("mime_type"), str) else None
        if mime:
            self.check_incoming_type(mime)
        size = info.get("file_size")
        if isinstance(size, int) and size > self.attachment_cap:
            raise media.TooLarge(
                f"the customer's file is {size} bytes, over WhatsApp's {media.limit_text(self.attachment_cap)} "
                "limit (max_attachment_bytes)"
            )
        data, content_type = self.fetch_media(url, hosts=self.media_hosts(), headers=self.bearer)
        return data, mime or content_type

    def parse(self, request: Request) -> list[InboundEvent]:
        body = self.load_json(request)
        events: list[InboundEvent] = []
        for e, entry in enumerate(body["entry"]):
            changes = require(entry, "changes", f"entry[{e}]", list)
            for c, change in enumerate(changes):
                where = f"entry[{e}].changes[{c}]"
                if not isinstance(change, dict) or change.get("field") != "messages":
                    continue  # other subscribed fields (templates, account updates) are not chat events
                value = require(change, "value", where, dict)
                metadata = optional(value, "metadata", f"{where}.value", dict, {})
                phone_number_id = metadata.get("phone_number_id")
                if phone_number_id is not None and str(phone_number_id) != str(self.asset["phone_number_id"]):
                    raise PayloadError(
                        f"{where}.value.metadata.phone_number_id does not belong to this asset",
                        field=f"{where}.value.metadata.phone_number_id",
                    )
                contacts = {
                    str(c.get("wa_id")): c
                    for c in optional(value, "contacts", f"{where}.value", list, [])
                    if isinstance(c, dict)
                }
                for m, message in enumerate(optional(value, "messages", f"{where}.value", list, [])):
                    events.append(self._message(message, contacts, f"{where}.value.messages[{m}]"))
                for s, status in enumerate(optional(value, "statuses", f"{where}.value", list, [])):
                    events.append(self._status(status, f"{where}.value.statuses[{s}]"))
        return events

    def _message(self, message: Any, contacts: dict[str, Any], where: str) -> InboundEvent:
        sender = str(require(message, "from", where))
        wamid = require(message, "id", where)
        timestamp = _timestamp(require(message, "timestamp", where), f"{where}.timestamp")
        kind_name = require(message, "type", where)
        contact = contacts.get(sender) or {}
        details: dict[str, Any] = {"wa_id": contact.get("wa_id") or sender}
        raw_profile = contact.get("profile")
        profile: dict[str, Any] = raw_profile if isinstance(raw_profile, dict) else {}
        if profile.get("name"):
            details["profile_name"] = profile["name"]
        for key in ("user_id", "parent_user_id", "username"):  # BSUID and usernames (2026)
            value = contact.get(key) or message.get(key)
            if value:
                details["bsuid" if key == "user_id" else key] = value
        if isinstance(message.get("referral"), dict):
            details["referral"] = message["referral"]

        text: str | None = None
        payload: str | None = None
        attachments: tuple[Attachment, ...] = ()
        kind = EventKind.MESSAGE
        if kind_name == "text":
            text = require(require(message, "text", where, dict), "body", f"{where}.text")
        elif kind_name in MEDIA_TYPES:
            media = require(message, kind_name, where, dict)
            mwhere = f"{where}.{kind_name}"
            text = optional(media, "caption", mwhere, str)
            attachments = (
                Attachment(
                    media_id=str(require(media, "id", mwhere)),
                    mime_type=optional(media, "mime_type", mwhere, str),
                    name=optional(media, "filename", mwhere, str),
                    caption=text,
                    extra={"sha256": media.get("sha256"), "voice": bool(media.get("voice"))},
                ),
            )
        elif kind_name == "interactive":
            interactive = require(message, "interactive", where, dict)
            reply = (
                optional(interactive, "button_reply", f"{where}.interactive", dict)
                or optional(interactive, "list_reply", f"{where}.interactive", dict)
                or {}
            )
            kind = EventKind.POSTBACK
            payload = optional(reply, "id", f"{where}.interactive.reply", str)
            text = optional(reply, "title", f"{where}.interactive.reply", str)
        elif kind_name == "button":
            button = require(message, "button", where, dict)
            kind = EventKind.POSTBACK
            payload = optional(button, "payload", f"{where}.button", str)
            text = optional(button, "text", f"{where}.button", str)
        elif kind_name == "location":
            location = require(message, "location", where, dict)
            text = (
                " ".join(str(location[k]) for k in ("name", "address") if location.get(k))
                or f"{location.get('latitude')},{location.get('longitude')}"
            )
        else:
            # Unsupported or unknown types still reach the agent as a note, never silently dropped.
            text = f"[unsupported WhatsApp message type: {kind_name}]"
        return InboundEvent(
            channel=self.name,
            asset=self.asset.name,
            customer=sender,
            kind=kind,
            provider_id=str(wamid),
            timestamp=timestamp,
            text=text,
            attachments=attachments,
            payload=payload,
            details=details,
        )

    def _status(self, status: Any, where: str) -> InboundEvent:
        wamid = str(require(status, "id", where))
        state = require(status, "status", where)
        recipient = str(require(status, "recipient_id", where))
        errors = optional(status, "errors", where, list, [])
        details: dict[str, Any] = {}
        if errors and isinstance(errors[0], dict):
            details["error"] = f"{errors[0].get('code')}: {errors[0].get('title')}"
        return InboundEvent(
            channel=self.name,
            asset=self.asset.name,
            customer=recipient,
            kind=EventKind.RECEIPT,
            provider_id=f"{wamid}:{state}",
            timestamp=_timestamp(require(status, "timestamp", where), f"{where}.timestamp"),
            status=state,
            refers_to=(wamid,),
            details=details,
        )


def _timestamp(raw: Any, field: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if not math.isfinite(value):  # "NaN" and "1e400" parse as floats but are no time
        raise PayloadError(f"{field} is not a unix timestamp", field=field)
    return value
