"""What every channel is: declarative capabilities plus verify / parse (inbound) and send (outbound).

Like an Apprise plugin, a channel is a class whose class attributes say what it can do; code outside
`channels/` asks the channel (`channel.max_text`, `channel.typing`) instead of testing its name.
One instance serves one configured asset; keep it for the asset's sends, so its HTTP session reuses
connections.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import posixpath
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote, urlsplit

import requests
from flask import Request, Response, jsonify

from connector import json_input
from connector.channels import media
from connector.channels.sending import (
    NOT_SENT,
    ChoiceForm,
    FetchedFile,
    Outbound,
    OutboundClose,
    OutboundFile,
    OutboundText,
    OutboundTyping,
    Recipient,
    SendResult,
)
from connector.errors import PayloadError, PermanentError, UnsupportedMediaType, WindowClosed
from connector.http_session import outbound_session
from connector.settings import Settings

if TYPE_CHECKING:  # the configuration's type only: channels never import config at run time
    from connector.config.model import Asset

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
    received_at: float | None = field(default=None, compare=False)
    """When the connector accepted it (unix s): the start of its webhook-to-contact-center latency.
    Bookkeeping, not content: two events that differ only in it are the same event."""

    @cached_property
    def thread_id(self) -> str:
        # Cached: intake and drain ask for it several times per event, and it is a SHA-256.
        return thread_id_for(self.channel, self.asset, self.customer)

    def to_json(self, *, received_at: float | None = None) -> str:
        # Built by hand: dataclasses.asdict deep-copies every value, a third of the intake's CPU.
        data = {name: getattr(self, name) for name in _EVENT_FIELDS}
        if received_at is not None:
            data["received_at"] = received_at
        data["kind"] = self.kind.value
        data["attachments"] = [{name: getattr(a, name) for name in _ATTACHMENT_FIELDS} for a in self.attachments]
        data["details"] = dict(self.details)
        return _EVENT_ENCODER.encode(data)

    @classmethod
    def from_json(cls, raw: str | bytes) -> InboundEvent:
        data = json.loads(raw)
        data["kind"] = EventKind(data["kind"])
        data["attachments"] = tuple(Attachment(**a) for a in data.get("attachments") or ())
        data["refers_to"] = tuple(data.get("refers_to") or ())
        return cls(**data)


# Read once: `dataclasses.fields` rebuilds its tuple on every call, and `json.dumps` with options
# builds a new encoder on every call.
_EVENT_FIELDS = tuple(f.name for f in fields(InboundEvent))
_ATTACHMENT_FIELDS = tuple(f.name for f in fields(Attachment))
_EVENT_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=dict)


class Channel:
    """Base of the five channels. Subclasses set the capabilities and implement verify / parse."""

    name: ClassVar[str]
    title: ClassVar[str]
    """How operators read the channel's name (forms, lists)."""
    secret_fields: ClassVar[tuple[str, ...]] = ()
    """Asset fields that hold secrets: masked in the UI, the API, exports and logs."""
    example_address: ClassVar[str]
    """A well-formed customer address (the sandbox's first demo customer; a template test's default)."""
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
    """Largest file fetched from a customer or sent natively; a larger agent file goes as a link."""
    html: ClassVar[bool] = False
    """Whether outbound text may carry HTML; none of the five channels renders it."""
    max_buttons: ClassVar[int] = 0
    """Reply buttons one text may carry (Messenger's quick replies); 0: none, choices go as numbered text."""
    max_button_title: ClassVar[int] = 20
    """Longest button title the channel shows; a choice longer than this goes as numbered text."""
    max_button_payload: ClassVar[int | None] = None
    """Longest payload (id) a button may carry (WhatsApp: 256); None: the bot contract's bound is enough."""
    max_menu_rows: ClassVar[int] = 0
    """Choices one text may carry as a list menu when they are more than `max_buttons` (WhatsApp's
    list message: 10 rows); 0: no menu."""
    max_menu_title: ClassVar[int] = 24
    """Longest row title of the list menu."""
    max_menu_payload: ClassVar[int | None] = None
    """Longest payload (id) of a menu row (WhatsApp: 200)."""
    menu_label: ClassVar[str] = "Choose"
    """The label of the button that opens the list menu."""
    max_choice_text: ClassVar[int | None] = None
    """Longest text that may carry buttons or a menu (WhatsApp's interactive body: 1024); the choices of
    a longer text go as numbered lines. None: any text the channel sends (the last part carries them)."""
    dedupe_ttl: ClassVar[timedelta] = timedelta(days=2)
    """How long a provider may redeliver an event; dedupe records live at least this long."""
    message_event: ClassVar[str] = "incoming_message"
    """The rule `event` name of a customer message on this channel (SMS: `mo`)."""

    def __init__(self, asset: Asset, settings: Settings) -> None:
        self.asset = asset
        self.settings = settings

    @cached_property
    def session(self) -> requests.Session:
        """One session per instance, made on first use: webhook instances never pay for it."""
        return outbound_session(self.settings)

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
            body = json_input.loads(request.get_data())
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(json_input.refusal(exc)) from None
        if not isinstance(body, dict):
            raise PayloadError("body must be a JSON object")
        return body

    def public_url(self, request: Request) -> str:
        """The URL the provider called: PUBLIC_BASE_URL + path + raw query, never the internal URL."""
        query = request.query_string.decode("latin-1")
        return self.settings.public_base_url + request.path + (f"?{query}" if query else "")

    # -- outbound ----------------------------------------------------------------------------

    def send(self, to: Recipient, message: Outbound, *, key: str, now: float | None = None) -> SendResult:
        """Deliver one outbound item to the customer.

        `key` is the relay's idempotency key, stable across retries; channels whose provider dedupes
        (Apple `id`, in-app `message_id`) derive their id from it, so a retried send is harmless.
        The window is checked here, before any provider call; typing outside it is skipped, not an
        error. Raises RetryableError, WindowClosed or PermanentError for every provider outcome, and
        ValueError for text longer than `max_text` (the relay splits; a longer text is its bug).
        """
        now = time.time() if now is None else now
        if isinstance(message, OutboundText):
            self.check_text(message.text)
            self.require_window(to, now)
            return self.send_text(to, message, key=key, now=now)
        if isinstance(message, OutboundFile):
            self.require_window(to, now)
            if self.sends_natively(message):
                return self.send_file(to, message, key=key, now=now)
            return self.send_text(to, OutboundText(self.file_link(message)), key=key, now=now)
        if isinstance(message, OutboundTyping):
            if not self.typing or not self.window_open(to, now):
                return NOT_SENT
            return self.send_typing(to, message.on, key=key, now=now)
        if isinstance(message, OutboundClose):
            return self.send_close(to, key=key, now=now)
        raise TypeError(f"not an outbound message: {message!r}")

    def window_open(self, to: Recipient, now: float) -> bool:
        """True when a free-form message may be sent: no window, no known last message, or within it."""
        if self.window is None or to.last_inbound_at is None:
            return True
        return now - to.last_inbound_at <= self.window.total_seconds()

    def require_window(self, to: Recipient, now: float) -> None:
        if not self.window_open(to, now):
            hours = self.window.total_seconds() / 3600 if self.window else 0
            raise WindowClosed(
                f"{self.name}: the customer's last message is older than the {hours:g} h messaging window; "
                "a reply is possible once the customer writes again"
            )

    def check_text(self, text: str) -> None:
        if self.max_text is not None and len(text) > self.max_text:
            raise ValueError(
                f"text of {len(text)} characters exceeds {self.name}'s max_text of {self.max_text}: "
                "the relay must split it before sending"
            )

    def sends_natively(self, file: OutboundFile) -> bool:
        """A file goes as itself when its type is in `attachments_out` and it is within the size cap."""
        cap = self.max_attachment_bytes
        within = file.size is None or cap is None or file.size <= cap
        return within and mime_accepted(file.mime_type, self.attachments_out)

    def file_link(self, file: OutboundFile) -> str:
        """The text that stands for a file the channel cannot carry: caption, then "name: url"."""
        link = f"{file.name}: {file.url}"
        with_caption = f"{file.caption}\n{link}" if file.caption else link
        # A long caption must not make the link unsendable: the link is what matters.
        return link if self.max_text is not None and len(with_caption) > self.max_text else with_caption

    def send_text(self, to: Recipient, message: OutboundText, *, key: str, now: float) -> SendResult:
        raise NotImplementedError

    def send_file(self, to: Recipient, file: OutboundFile, *, key: str, now: float) -> SendResult:
        raise NotImplementedError

    def send_typing(self, to: Recipient, on: bool, *, key: str, now: float) -> SendResult:
        return NOT_SENT

    def send_close(self, to: Recipient, *, key: str, now: float) -> SendResult:
        """Only in-app tells the customer's side that the conversation ended."""
        return NOT_SENT

    def send_caption(self, to: Recipient, file: OutboundFile, *, key: str, now: float) -> None:
        """For providers whose file message has no caption: the caption goes first, as a text."""
        if file.caption:
            self.check_text(file.caption)
            self.send_text(to, OutboundText(file.caption), key=f"{key}:caption", now=now)

    def choice_form(self, text: str, options: Sequence[tuple[str, str]]) -> ChoiceForm | None:
        """How `options` (title, payload) go with `text` on this channel: as buttons, as a list menu,
        or None (numbered lines under the text). The one place the channel's limits are read."""
        if not options or (self.max_choice_text is not None and len(text) > self.max_choice_text):
            return None
        titles, payloads = [t for t, _ in options], [p for _, p in options]
        if len(set(titles)) < len(titles) or len(set(payloads)) < len(payloads):
            return None  # a tap could not say which was meant (WhatsApp refuses duplicate ids)
        if _fits(options, self.max_buttons, self.max_button_title, self.max_button_payload):
            return ChoiceForm.BUTTONS
        if _fits(options, self.max_menu_rows, self.max_menu_title, self.max_menu_payload):
            return ChoiceForm.MENU
        return None

    # -- customer profile --------------------------------------------------------------------

    @property
    def profile_fields(self) -> tuple[str, ...]:
        """The fields `profile` asks the provider for; empty when the channel has no profile to fetch
        (SMS, Apple's opaque id, WhatsApp and in-app, whose webhooks carry the name themselves)."""
        return ()

    def profile(self, customer: str) -> dict[str, str] | None:
        """The customer's details from the provider's profile API, as details to merge into the
        conversation (names, locale, ...); None when there is none (no such API, no permission, or
        the call failed). Never raises and never retries: a profile is a nicety, never a reason to
        delay, retry or dead-letter the customer's message."""
        return None

    # -- customer files ----------------------------------------------------------------------

    @property
    def attachment_cap(self) -> int:
        """The byte cap of a customer file; a channel without a declared one still gets a bound."""
        return self.max_attachment_bytes or DEFAULT_ATTACHMENT_CAP

    def fetch_attachment(self, attachment: Attachment, to: Recipient) -> FetchedFile:
        """Download the customer's file the channel's way, within `attachments_in` and the size cap.

        The declared type and size are checked before downloading (nothing refused is fetched), the
        real ones after (declarations can lie). Raises PermanentError (type refused, too large,
        gone, host refused) or RetryableError (5xx, timeouts).
        """
        declared = concrete_mime(attachment.mime_type)
        if declared == UNKNOWN_MIME:  # says "some file" (Messenger's kind "file"): the answer knows better
            declared = None
        if attachment.mime_type:
            self.check_incoming_type(attachment.mime_type)
        if attachment.size is not None and attachment.size > self.attachment_cap:
            raise media.TooLarge(
                f"the customer's file is {attachment.size} bytes, over {self.name}'s "
                f"{media.limit_text(self.attachment_cap)} limit (max_attachment_bytes)"
            )
        data, content_type = self.download(attachment, to)
        mime = declared or concrete_mime(content_type) or UNKNOWN_MIME
        self.check_incoming_type(mime)
        return FetchedFile(name=attachment.name or file_name(attachment.url, mime), mime_type=mime, data=data)

    def download(self, attachment: Attachment, to: Recipient) -> tuple[bytes, str | None]:
        """The file's bytes and Content-Type, the channel's way (auth, decryption)."""
        raise NotImplementedError

    def check_incoming_type(self, mime: str) -> None:
        if not mime_accepted(mime, self.attachments_in):
            raise PermanentError(
                f"{self.name} does not accept {mime} files from customers "
                f"(accepted: {', '.join(sorted(self.attachments_in))})"
            )

    def fetch_media(
        self, url: str, *, hosts: Collection[str], trusted: bool = False, **kwargs: Any
    ) -> tuple[bytes, str | None]:
        """media.fetch with this channel's session and cap, from `hosts` or the operator's allowlist
        (CONNECTOR_MEDIA_ALLOWLIST); private addresses only in the sandbox, or for a `trusted` URL
        (an agent's file, from the authenticated contact center, which often runs on a private
        network)."""
        return media.fetch(
            url,
            session=self.session,
            max_bytes=self.attachment_cap,
            allowed_hosts=(*hosts, *self.settings.media_allowlist),
            allow_private=self.settings.sandbox or trusted,
            **kwargs,
        )


def _fits(options: Sequence[tuple[str, str]], most: int, title: int, payload: int | None) -> bool:
    return len(options) <= most and all(
        0 < len(t) <= title and (payload is None or 0 < len(p) <= payload) for t, p in options
    )


UNKNOWN_MIME = "application/octet-stream"
# Bound for a channel that declares no max_attachment_bytes: bytes are held in memory.
DEFAULT_ATTACHMENT_CAP = 25 * 1024 * 1024


def mime_accepted(mime: str, accepted: Collection[str]) -> bool:
    """`mime` (parameters ignored) is listed, or its major type is listed as `type/*`."""
    base = mime.split(";", 1)[0].strip().lower()
    return base in accepted or f"{base.partition('/')[0]}/*" in accepted


def concrete_mime(mime: str | None) -> str | None:
    """A MIME type without parameters, or None for none or a pattern ("image/*" names no type)."""
    base = (mime or "").split(";", 1)[0].strip().lower()
    return base if base and "/" in base and "*" not in base else None


def file_name(url: str | None, mime: str) -> str:
    """A name for a customer file that came without one: the URL's last segment, else by type."""
    segment = posixpath.basename(unquote(urlsplit(url or "").path))
    if segment and "." in segment:
        return segment
    return "attachment" + (mimetypes.guess_extension(mime) or "")
