"""What every channel is: declarative capabilities plus verify / parse (inbound) and send (outbound).

Like an Apprise plugin, a channel is a class whose class attributes say what it can do; code outside
`channels/` asks the channel (`channel.max_text`, `channel.typing`) instead of testing its name.
One instance serves one configured asset.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from enum import StrEnum
from typing import Any, ClassVar

from flask import Request, Response, jsonify

from connector.config.model import Asset
from connector.errors import PayloadError, UnsupportedMediaType
from connector.settings import Settings

ACK_BODY = b'{"status":"ok"}'  # a constant: serialising it per request is measurable at webhook rates


class EventKind(StrEnum):
    """What an inbound event is; only MESSAGE and POSTBACK start or continue a chat."""

    MESSAGE = "message"  # text and / or attachments from the customer
    POSTBACK = "postback"  # button, quick reply, interactive or list reply
    TYPING_START = "typing_start"
    TYPING_END = "typing_end"
    CLOSE = "close"  # the customer closed / deleted the conversation
    RECEIPT = "receipt"  # delivery / read / failed status of something we sent

    @property
    def routable(self) -> bool:
        return self in (EventKind.MESSAGE, EventKind.POSTBACK)


@dataclass(frozen=True)
class Attachment:
    """A customer file as the provider describes it; bytes are fetched later by the relay.

    `url` is the provider's URL (Twilio media, Messenger CDN, Apple MMCS, in-app); `media_id` is set
    where the provider gives an id to resolve instead (WhatsApp). `extra` holds what decryption
    needs (Apple: key, owner, signature).
    """

    mime_type: str | None = None
    url: str | None = None
    media_id: str | None = None
    name: str | None = None
    size: int | None = None
    caption: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def attachment_objects(raw: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, item) for each entry of a JSON body's `attachments` list (absent: none); a
    PayloadError names the first entry that is not an object."""
    if raw is None:
        return
    if not isinstance(raw, list):
        raise PayloadError("attachments must be a list", field="attachments")
    for index, item in enumerate(raw):
        where = f"attachments[{index}]"
        if not isinstance(item, dict):
            raise PayloadError(f"{where} must be an object", field=where)
        yield where, item


def thread_id_for(channel: str, asset: str, customer: str) -> str:
    """Stable id of the (channel, asset, customer) thread; a hash so it is safe in keys and job ids."""
    digest = hashlib.sha256(f"{channel}\x1f{asset}\x1f{customer}".encode()).hexdigest()
    return digest[:32]


@dataclass(frozen=True)
class InboundEvent:
    """One normalised customer-side event.

    `provider_id` is the dedupe key within (channel, asset): the provider's message id, or a
    derived key for events without one (receipts: id + status). `timestamp` is the provider's time
    in unix seconds. `details` are the channel-specific customer details (SMS number, PSID, wa_id,
    profile name, BSUID, Apple opaque id, locale, ...), merged into the conversation.
    """

    channel: str
    asset: str
    customer: str
    kind: EventKind
    provider_id: str
    timestamp: float
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    payload: str | None = None
    status: str | None = None
    refers_to: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def thread_id(self) -> str:
        return thread_id_for(self.channel, self.asset, self.customer)

    def to_json(self) -> str:
        # Built by hand: dataclasses.asdict deep-copies every value, a third of the intake's CPU.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["kind"] = self.kind.value
        data["attachments"] = [{f.name: getattr(a, f.name) for f in fields(a)} for a in self.attachments]
        data["details"] = dict(self.details)
        return json.dumps(data, separators=(",", ":"), sort_keys=True, default=dict)

    @classmethod
    def from_json(cls, raw: str | bytes) -> InboundEvent:
        data = json.loads(raw)
        data["kind"] = EventKind(data["kind"])
        data["attachments"] = tuple(Attachment(**a) for a in data.get("attachments") or ())
        data["refers_to"] = tuple(data.get("refers_to") or ())
        return cls(**data)


class Channel:
    """Base of the five channels. Subclasses set the capabilities and implement verify / parse."""

    name: ClassVar[str]
    max_text: ClassVar[int | None] = None
    """Longest text one outbound message may carry; longer agent text is split."""
    typing: ClassVar[bool] = False
    """Whether the channel can show the agent typing."""
    window: ClassVar[timedelta | None] = None
    """How long after the customer's last message a free-form reply is allowed (None: no limit)."""
    attachments_in: ClassVar[frozenset[str]] = frozenset()
    """MIME types (or `type/*`) accepted from customers."""
    attachments_out: ClassVar[frozenset[str]] = frozenset()
    """MIME types the channel can send natively; others go as a link."""
    max_attachment_bytes: ClassVar[int | None] = None
    dedupe_ttl: ClassVar[timedelta] = timedelta(days=2)
    """How long a provider may redeliver an event; dedupe records live at least this long."""
    message_event: ClassVar[str] = "incoming_message"
    """The rule `event` name of a customer message on this channel (SMS: `mo`)."""

    def __init__(self, asset: Asset, settings: Settings) -> None:
        self.asset = asset
        self.settings = settings

    # -- inbound -----------------------------------------------------------------------------

    def handshake(self, request: Request) -> Response:
        """Answer a GET on the webhook URL (Meta's verify handshake); others have none."""
        response = jsonify(error="method_not_allowed", message="this webhook accepts POST only")
        response.status_code = 405
        return response

    def verify(self, request: Request) -> None:
        """Raise MissingSignature / SignatureError unless the request is the provider's, on raw bytes."""
        raise NotImplementedError

    def parse(self, request: Request) -> list[InboundEvent]:
        """Every event the body carries (a batch may hold many); raise PayloadError naming the field."""
        raise NotImplementedError

    def parse_status(self, request: Request) -> list[InboundEvent]:
        """Events of the separate status callback URL (Twilio); by default the same as `parse`."""
        return self.parse(request)

    def acknowledge(self) -> Response:
        """The answer the provider expects once the events are durably stored."""
        return Response(ACK_BODY, status=200, mimetype="application/json")

    def json_object(self, request: Request) -> dict[str, Any]:
        """The body as a JSON object; 415 for another content type, 400 for anything but an object."""
        if request.mimetype != "application/json":
            raise UnsupportedMediaType(f"expected application/json, got {request.mimetype or 'none'}")
        try:
            body = json.loads(request.get_data())
        except (ValueError, UnicodeDecodeError):
            raise PayloadError("body is not valid JSON") from None
        if not isinstance(body, dict):
            raise PayloadError("body must be a JSON object")
        return body

    def public_url(self, request: Request) -> str:
        """The URL the provider called: PUBLIC_BASE_URL + path + raw query, never the internal URL."""
        query = request.query_string.decode("latin-1")
        return self.settings.public_base_url + request.path + (f"?{query}" if query else "")
