"""The simulated ECE's state: client apps and their tokens, entry points with their availability
switches, conversations with what the connector sent and what the agent did, files, and the failure
switches. One lock guards it all.

Every agent action appends callback events (docs/protocols/ece.md, "Callback events") to the
conversation and hands them to the listeners (the emitter) while the lock is held,
so events reach the emitter in the order they happened, whichever HTTP thread caused them. A
listener must therefore never call back into the model.
"""

from __future__ import annotations

import hmac
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.sandbox.holds import Holds

REFERENCE_ATTRIBUTE = "connector_reference"
"""The custom attribute a start's client reference arrives in (docs/protocols/ece.md, "Start conversation")."""

Event = dict[str, Any]
Listener = Callable[[list[Event]], None]

CALLBACK_AUTH_TYPES = ("none", "bearer", "basic")
AGENT_TYPES = ("text/plain", "text/html")


class SimError(Exception):
    """A refusal the API renders as an eGain-style JSON error `{"code": "401-101", "developerMessage"}`.

    eGain error codes are `{http status}-{n}` (docs/protocols/ece.md, "Error answers"); the `n`
    values used here are illustrative [I]."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or f"{status}-100"

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "developerMessage": self.message}


@dataclass
class EntryPoint:
    """An ECE chat entry point and the switches that drive its availability answers."""

    id: str
    name: str
    active: bool = True
    agents_available: bool = True
    capacity: int = 3  # available slots (docs/protocols/ece.md, "Availability checks": `capacity`)
    queue_depth: int = 0
    wait_seconds: int = 0
    bound: bool = True  # the client apps are bound to it in the messaging adapter
    last_modified: str = ""
    attachment_policies: str = "allow_all"  # [I] Webex Connect shows e.g. `allow_all`

    @property
    def eligibility(self) -> int:
        """checkEligibility's responseType: 0 can take chats, 1 no agent, 2 queue full
        (docs/protocols/ece.md, "Availability checks")."""
        if not self.agents_available:
            return 1
        if self.capacity <= 0:
            return 2
        return 0

    @property
    def slots(self) -> int:
        """capacity's count: 0 means no agents or all at maximum load
        (docs/protocols/ece.md, "Availability checks")."""
        return max(self.capacity, 0) if self.agents_available else 0

    @property
    def chat_allowed(self) -> bool:
        """chatAllowed combines depth, availability and the entry point being active
        (docs/protocols/ece.md, "Availability checks")."""
        return self.active and self.eligibility == 0


@dataclass
class Agent:
    id: str
    name: str


@dataclass
class Attachment:
    """A file in either direction; `decision` is the agent's answer to a customer's file."""

    id: str
    conversation_id: str
    direction: str  # customer | agent
    name: str
    mime_type: str
    data: bytes = field(repr=False)
    received_at: float
    decision: str | None = None  # accepted | rejected

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Received:
    """One item the connector sent on a conversation, in arrival order."""

    id: str
    kind: str  # message | attachment
    received_at: float
    type: str | None = None  # text/plain | text/html for a message
    content: str | None = None
    attachment_id: str | None = None


@dataclass
class Conversation:
    id: str
    entry_point_id: str
    app: str  # client key of the app that started it
    activity_id: str
    customer_attributes: list[dict[str, Any]]
    custom_attributes: list[dict[str, Any]]
    subject: str | None
    locale: str | None
    started_at: float
    state: str = "queued"  # queued | assigned | ended
    reference: str | None = None
    """The client reference the start carried (the `connector_reference` custom attribute), kept
    apart from the integration's own custom attributes; the lookup finds conversations by it."""
    agent: Agent | None = None
    received: list[Received] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass
class Token:
    value: str
    app: str
    expires_at: float


class EceModel:
    """All of the simulator's state. `clock` (seconds) drives token expiry and event time stamps, so a
    test can move time instead of sleeping."""

    def __init__(
        self,
        *,
        client_key: str,
        client_secret: str,
        entry_points: Iterable[str] = ("1001", "1002"),
        callback_url: str | None = None,
        callback_auth: Mapping[str, str] | None = None,
        api_version: str = "v19",
        token_ttl: int = 86400,
        other_apps: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.api_version = api_version
        self.token_ttl = token_ttl
        self.client_key = client_key
        self.apps: dict[str, str] = {client_key: client_secret, **dict(other_apps or {})}
        self.tokens: dict[str, Token] = {}
        self.entry_points: dict[str, EntryPoint] = {}
        self.conversations: dict[str, Conversation] = {}
        self.files: dict[str, Attachment] = {}
        self.listeners: list[Listener] = []
        self.down: str | None = None
        self._fail_next: list[int] = []
        self.lookup_served = True
        """[I] Whether this ECE serves the find_conversation lookup; off, the path answers 405."""
        self.holds = Holds()
        """Test-only: hold a call's answer until released (`holds.hold_next("start")`)."""
        self.answer_delay_seconds = 0.0
        """Every API call answers this much later (an on-premises ECE under load answers in
        hundreds of milliseconds to seconds); 0: at once."""
        self.in_flight = 0
        self.peak_in_flight = 0
        """API calls being answered now, and the most at once since the last reset (`calls_began`)."""
        self._ids = itertools.count(3_118_908_000)
        self._last_modified_ms = 0
        self.public_url: str | None = None
        self.callback_url: str | None = None
        self.callback_auth: dict[str, str] = {"type": "none"}
        self.configure_callback(callback_url, callback_auth)
        for ep_id in entry_points:
            self.add_entry_point(ep_id)

    # -- configuration --------------------------------------------------------------------------

    def configure_callback(self, url: str | None, auth: Mapping[str, str] | None = None) -> None:
        """Where and how ECE POSTs agent events: the registered Callback URL and the External App
        Authentication (none / basic / bearer; docs/protocols/ece.md, "Callback authentication")."""
        auth = dict(auth or {"type": "none"})
        kind = auth.get("type", "none")
        if kind not in CALLBACK_AUTH_TYPES:
            raise SimError(400, f"callback_auth type must be one of {', '.join(CALLBACK_AUTH_TYPES)}, got {kind!r}")
        if kind == "bearer" and not auth.get("token"):
            raise SimError(400, "callback_auth type bearer needs a token")
        if kind == "basic" and not (auth.get("username") and auth.get("password") is not None):
            raise SimError(400, "callback_auth type basic needs a username and a password")
        with self.lock:
            self.callback_url = url or None
            self.callback_auth = auth

    def callback(self) -> tuple[str | None, dict[str, str]]:
        with self.lock:
            return self.callback_url, dict(self.callback_auth)

    def configure_public_url(self, url: str) -> None:
        """The simulator's own URL (its mount prefix included): agent file URLs are built on it."""
        with self.lock:
            self.public_url = url.rstrip("/")

    def next_id(self) -> str:
        """Unique, increasing numeric strings for events, messages, activities and files."""
        return str(next(self._ids))

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- entry points ---------------------------------------------------------------------------

    def _new_last_modified(self) -> str:
        """An ISO 8601 time stamp, strictly later than the previous one, so every bump is a change."""
        ms = max(self.now_ms(), self._last_modified_ms + 1)
        self._last_modified_ms = ms
        stamp = datetime.fromtimestamp(ms / 1000, UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

    def add_entry_point(self, ep_id: str, name: str | None = None, **switches: Any) -> EntryPoint:
        with self.lock:
            ep = EntryPoint(id=str(ep_id), name=name or f"Entry point {ep_id}")
            ep.last_modified = self._new_last_modified()
            self.entry_points[ep.id] = ep
            if switches:
                self.set_entry_point(ep.id, **switches)
            return ep

    def entry_point(self, ep_id: str) -> EntryPoint:
        found = self.entry_points.get(str(ep_id))
        if found is None:
            raise SimError(404, f"entry point {ep_id} does not exist", "404-101")
        return found

    def set_entry_point(
        self,
        ep_id: str,
        *,
        active: bool | None = None,
        agents_available: bool | None = None,
        capacity: int | None = None,
        queue_depth: int | None = None,
        wait_seconds: int | None = None,
        bound: bool | None = None,
        attachment_policies: str | None = None,
        name: str | None = None,
    ) -> EntryPoint:
        """Change switches; None leaves one as it is. lastModified changes only with
        `bump_last_modified`, so a test decides exactly when the connector's copy goes stale."""
        with self.lock:
            ep = self.entry_point(ep_id)
            for attr, value in (("active", active), ("agents_available", agents_available), ("bound", bound)):
                if value is not None:
                    setattr(ep, attr, bool(value))
            for attr, value in (("capacity", capacity), ("queue_depth", queue_depth), ("wait_seconds", wait_seconds)):
                if value is not None:
                    if int(value) < 0:
                        raise SimError(400, f"{attr} must be 0 or more")
                    setattr(ep, attr, int(value))
            if attachment_policies is not None:
                ep.attachment_policies = attachment_policies
            if name is not None:
                ep.name = name
            return ep

    def bump_last_modified(self, ep_id: str) -> str:
        """An administrator saved the entry point: cached configurations are now stale (start → 409)."""
        with self.lock:
            ep = self.entry_point(ep_id)
            ep.last_modified = self._new_last_modified()
            return ep.last_modified

    # -- failure switches -----------------------------------------------------------------------

    def set_answer_delay(self, seconds: float) -> None:
        if not 0 <= seconds <= 60:
            raise SimError(400, f"delay_seconds must be 0 to 60, got {seconds!r}")
        with self.lock:
            self.answer_delay_seconds = float(seconds)

    def call_began(self) -> float:
        """An API call arrived: counted in flight; returns the delay it waits before its answer."""
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return self.answer_delay_seconds

    def call_ended(self) -> None:
        with self.lock:
            self.in_flight = max(0, self.in_flight - 1)

    def reset_peak(self) -> None:
        with self.lock:
            self.peak_in_flight = self.in_flight

    def set_down(self, mode: str | None) -> None:
        """`"503"`: every API call (token and availability included) answers 503; None: back up."""
        if mode not in (None, "503"):
            raise SimError(400, f'down must be "503" or null, got {mode!r}')
        with self.lock:
            self.down = mode

    def token_expire_all(self) -> None:
        """Every issued token becomes invalid, as after an ECE restart: the next Bearer call is a 401."""
        with self.lock:
            self.tokens.clear()

    def fail_next(self, count: int, status: int) -> None:
        """The next `count` messaging API calls answer `status` before doing anything."""
        if count < 0 or not 400 <= status <= 599:
            raise SimError(400, "fail_next needs count >= 0 and an HTTP error status (400..599)")
        with self.lock:
            self._fail_next.extend([status] * count)

    def take_failure(self) -> int | None:
        with self.lock:
            return self._fail_next.pop(0) if self._fail_next else None

    @property
    def failures_pending(self) -> int:
        with self.lock:
            return len(self._fail_next)

    # -- client applications --------------------------------------------------------------------

    def authenticate_app(self, key: str | None, secret: str | None) -> str:
        """The client key, if `secret` is its secret (constant-time compare); else 401."""
        with self.lock:
            expected = self.apps.get(key or "")
            if expected is None or secret is None or not hmac.compare_digest(expected.encode(), secret.encode()):
                raise SimError(401, "invalid client credentials: check the client key and secret", "401-100")
            return key or ""

    def issue_token(self, key: str | None, secret: str | None) -> Token:
        """OAuth2 client_credentials: a fresh token valid `token_ttl` seconds
        (docs/protocols/ece.md, "Client-application token")."""
        with self.lock:
            app = self.authenticate_app(key, secret)
            token = Token(str(uuid.uuid4()), app, self.clock() + self.token_ttl)
            self.tokens[token.value] = token
            return token

    def app_for_token(self, value: str | None) -> str:
        """The client key behind a Bearer token; 401 when missing, unknown or expired."""
        with self.lock:
            token = self.tokens.get(value or "")
            if token is not None and token.expires_at <= self.clock():
                del self.tokens[token.value]
                token = None
            if token is None:
                raise SimError(401, "Invalid or expired access token. A new token is required.", "401-101")
            return token.app

    def configuration(self, app: str, ep_id: str) -> EntryPoint:
        """The entry point as its configuration API shows it to `app`: 404 unknown, 403 not bound."""
        with self.lock:
            ep = self.entry_point(ep_id)
            if not ep.bound:
                raise SimError(
                    403,
                    f"client application is not configured for entry point {ep_id}: bind it in the messaging adapter",
                    "403-101",
                )
            return ep

    # -- conversations (the connector's side) ---------------------------------------------------

    def start_conversation(
        self,
        app: str,
        ep_id: str,
        last_modified: str,
        *,
        customer_attributes: list[dict[str, Any]],
        custom_attributes: list[dict[str, Any]],
        subject: str | None,
        locale: str | None,
        reference: str | None = None,
    ) -> Conversation:
        """Start a chat on an entry point. The entry point must exist (400), be bound (403), be
        active (400) and the caller's `lastModified` must be the current one
        (409; docs/protocols/ece.md, "Start conversation")."""
        with self.lock:
            ep = self.entry_points.get(str(ep_id))
            if ep is None:
                raise SimError(400, f"entry point {ep_id} does not exist", "400-101")
            if not ep.bound:
                raise SimError(403, f"client application is not configured for entry point {ep_id}", "403-101")
            if not ep.active:
                raise SimError(400, f"entry point {ep_id} is not active: activate it in ECE", "400-102")
            if last_modified != ep.last_modified:
                raise SimError(
                    409,
                    f"lastModified {last_modified!r} of entry point {ep_id} is stale (now "
                    f"{ep.last_modified!r}): fetch the configuration again",
                    "409-101",
                )
            conv = Conversation(
                id=str(uuid.uuid4()),
                entry_point_id=ep.id,
                app=app,
                activity_id=self.next_id(),
                customer_attributes=customer_attributes,
                custom_attributes=custom_attributes,
                subject=subject,
                locale=locale,
                started_at=self.clock(),
                reference=reference,
            )
            self.conversations[conv.id] = conv
            return conv

    def find_by_reference(self, app: str, reference: str) -> list[Conversation]:
        """The conversations `app` started carrying `reference` as their `connector_reference`
        custom attribute, oldest first ([I] docs/protocols/ece.md, "Start conversation")."""
        with self.lock:
            return [conv for conv in self.conversations.values() if conv.app == app and conv.reference == reference]

    def _own_open(self, app: str, conv_id: str) -> Conversation:
        """The conversation `app` may write to: 404 unknown or ended, 403 started by another app."""
        conv = self.conversations.get(conv_id)
        if conv is None:
            raise SimError(404, f"conversation {conv_id} does not exist", "404-102")
        if conv.app != app:
            raise SimError(403, f"conversation {conv_id} was not started by this client application", "403-102")
        if conv.state == "ended":
            raise SimError(404, f"conversation {conv_id} has ended", "404-103")
        return conv

    def receive_message(self, app: str, conv_id: str, type_value: str, content: str) -> str:
        with self.lock:
            conv = self._own_open(app, conv_id)
            item = Received(self.next_id(), "message", self.clock(), type=type_value, content=content)
            conv.received.append(item)
            return item.id

    def receive_attachment(self, app: str, conv_id: str, name: str, mime_type: str, data: bytes) -> str:
        with self.lock:
            conv = self._own_open(app, conv_id)
            att = Attachment(self.next_id(), conv.id, "customer", name, mime_type, data, self.clock())
            self.files[att.id] = att
            conv.received.append(Received(att.id, "attachment", att.received_at, attachment_id=att.id))
            return att.id

    def end_conversation(self, app: str, conv_id: str) -> None:
        """The customer's side ends it; ECE then reports `complete` like any other end."""
        with self.lock:
            conv = self._own_open(app, conv_id)
            self._finish(conv, "The customer has ended the chat")

    # -- agent actions (the control API and the console) ----------------------------------------

    def _open(self, conv_id: str, *, needs_agent: bool = True) -> Conversation:
        conv = self.conversations.get(conv_id)
        if conv is None:
            raise SimError(404, f"conversation {conv_id} does not exist")
        if conv.state == "ended":
            raise SimError(409, f"conversation {conv_id} has ended: no more agent actions")
        if needs_agent and conv.agent is None:
            raise SimError(409, f"conversation {conv_id} has no agent: assign one first")
        return conv

    def _emit(self, conv: Conversation, type_value: str, content: str, *, system: bool = False, **extra: Any) -> Event:
        sender: dict[str, Any] = {"type": "system"}
        if not system and conv.agent is not None:
            sender = {"type": "user", "user": {"id": conv.agent.id, "name": conv.agent.name}}
        event: Event = {
            "id": self.next_id(),
            "conversation": {"id": conv.id},
            "type": {"value": type_value},
            "content": content,
            "sender": sender,
            "timeStamp": self.now_ms(),
            **extra,
        }
        conv.events.append(event)
        for listener in list(self.listeners):
            listener([event])
        return event

    def assign(self, conv_id: str, agent_id: str, agent_name: str) -> Event:
        """An agent picks the chat up (`assigned`, sender.user is the agent)."""
        with self.lock:
            conv = self._open(conv_id, needs_agent=False)
            conv.agent, conv.state = Agent(str(agent_id), agent_name), "assigned"
            return self._emit(conv, "assigned", f"{agent_name} has joined the chat")

    def typing(self, conv_id: str, on: bool) -> Event:
        with self.lock:
            conv = self._open(conv_id)
            return self._emit(conv, "startTyping" if on else "endTyping", "")

    def say(self, conv_id: str, text: str, html: bool = False) -> Event:
        if not text:
            raise SimError(400, "a message needs text")
        with self.lock:
            return self._emit(self._open(conv_id), "text/html" if html else "text/plain", text)

    def transfer(self, conv_id: str, kind: str, name: str) -> Event:
        """To a queue: the chat waits again (state queued, no agent) until someone is assigned. To an
        agent: the current agent stays until the new one is assigned."""
        if kind not in ("queue", "agent") or not name:
            raise SimError(400, "transfer needs kind queue or agent, and a name")
        with self.lock:
            conv = self._open(conv_id)
            assert conv.agent is not None
            event = self._emit(
                conv,
                "transfer",
                f"{conv.agent.name} transferred the chat to {kind} {name}",
                transfer={"type": kind, "name": name},
            )
            if kind == "queue":
                conv.state, conv.agent = "queued", None
            return event

    def page_push(self, conv_id: str, url: str) -> Event:
        if not url:
            raise SimError(400, "a page push needs a url")
        with self.lock:
            return self._emit(self._open(conv_id), "pagePush", url)

    def upload_file(self, conv_id: str, name: str, mime_type: str, data: bytes) -> Event:
        """The agent sends a file; its `url` is served by this simulator at `/files/<id>`."""
        if not name:
            raise SimError(400, "a file needs a name")
        with self.lock:
            conv = self._open(conv_id)
            att = Attachment(
                self.next_id(), conv.id, "agent", name, mime_type or "application/octet-stream", data, self.clock()
            )
            self.files[att.id] = att
            described = {
                "id": att.id,
                "name": att.name,
                "url": self.file_url(att.id),
                "mimeType": att.mime_type,
                "size": att.size,
            }
            return self._emit(conv, "uploadAttachment", att.name, attachment=described)

    def file_url(self, file_id: str) -> str:
        """Absolute when the simulator knows its URL (learned from the first request it serves)."""
        return f"{self.public_url or ''}/files/{file_id}"

    def _decide(self, conv_id: str, attachment_id: str, decision: str) -> Event:
        with self.lock:
            conv = self._open(conv_id)
            att = self.files.get(str(attachment_id))
            if att is None or att.conversation_id != conv.id or att.direction != "customer":
                raise SimError(404, f"conversation {conv_id} has no customer attachment {attachment_id}")
            if att.decision is not None:
                raise SimError(409, f"attachment {attachment_id} was already {att.decision}")
            att.decision = decision
            value = "acceptAttachment" if decision == "accepted" else "rejectAttachment"
            assert conv.agent is not None
            return self._emit(
                conv, value, f"{conv.agent.name} {decision} {att.name}", attachment={"id": att.id, "name": att.name}
            )

    def accept_attachment(self, conv_id: str, attachment_id: str) -> Event:
        return self._decide(conv_id, attachment_id, "accepted")

    def reject_attachment(self, conv_id: str, attachment_id: str) -> Event:
        return self._decide(conv_id, attachment_id, "rejected")

    def complete(self, conv_id: str) -> Event:
        """The agent closes the chat: `complete` comes exactly once and is final
        (docs/protocols/ece.md, "Callback events")."""
        with self.lock:
            conv = self._open(conv_id, needs_agent=False)
            who = conv.agent.name if conv.agent else "The agent"
            return self._finish(conv, f"{who} has ended the chat")

    def _finish(self, conv: Conversation, content: str) -> Event:
        conv.state = "ended"
        # The public sample of `complete` has sender system (docs/protocols/ece.md, "Callback webhook").
        return self._emit(conv, "complete", content, system=True)

    def conversation(self, conv_id: str) -> Conversation:
        with self.lock:
            conv = self.conversations.get(conv_id)
            if conv is None:
                raise SimError(404, f"conversation {conv_id} does not exist")
            return conv
