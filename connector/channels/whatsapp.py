"""WhatsApp Cloud API (Meta): `entry[].changes[].value` with `messages[]` and `statuses[]`."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from flask import Request

from connector.channels.base import Attachment, EventKind, InboundEvent
from connector.channels.meta import MetaChannel, optional, require
from connector.errors import PayloadError

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")


class WhatsApp(MetaChannel):
    name = "whatsapp"
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
    max_attachment_bytes = 100 * 1024 * 1024
    # WhatsApp retries failed webhook deliveries for up to 7 days; keep 8 to be safe.
    dedupe_ttl = timedelta(days=8)

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
        profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
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
