"""What the relay hands a channel to send, what it gets back, and what an HTTP outcome means.

The value types are the whole outbound vocabulary: a channel never sees ECE's events, only these.
The two functions at the end are the transport half of every provider call (timeouts, connection
errors, `Retry-After`); each provider family interprets its own error bodies in its own module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import requests

from connector.errors import PermanentError, RetryableError

# (connect, read) seconds: a provider that does not answer within them is retried later, not waited on.
TIMEOUT = (3.05, 10)


@dataclass(frozen=True)
class Recipient:
    """The customer side of a thread, as much as a send needs to know."""

    address: str
    """The thread's customer address: E.164 number, PSID, wa_id, Apple opaque id or in-app user id."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Merged customer details of the thread (locale, profile name, ...)."""
    last_inbound_at: float | None = None
    """Provider time (unix s) of the customer's last message; messaging windows count from it."""
    last_message_id: str | None = None
    """Provider id of the customer's last message (WhatsApp marks it read to show typing)."""


class ChoiceForm(StrEnum):
    """How a channel shows a text's choices (Channel.choice_form)."""

    BUTTONS = "buttons"  # Messenger quick replies, WhatsApp reply buttons
    MENU = "menu"  # WhatsApp list message: a button that opens the rows


@dataclass(frozen=True)
class OutboundText:
    text: str
    """Already plain text and already split to the channel's `max_text`: channels refuse longer text."""
    system: bool = False
    """A system message rather than the agent's words (in-app type "system"; Apple `auto-reply: true`)."""
    buttons: tuple[tuple[str, str], ...] = ()
    """(title, payload) pairs the customer may tap instead of typing; set only where the channel's
    `choice_form` allows (the relay writes the choices as numbered text otherwise)."""
    form: ChoiceForm = ChoiceForm.BUTTONS
    """How the channel shows `buttons`: reply buttons, or a list menu (WhatsApp's list message)."""


@dataclass(frozen=True)
class OutboundTyping:
    on: bool


@dataclass(frozen=True)
class OutboundFile:
    """An agent's file. `url` comes from the contact center, so it is trusted (unlike customer URLs)."""

    url: str
    name: str
    mime_type: str
    size: int | None = None
    caption: str | None = None


@dataclass(frozen=True)
class OutboundClose:
    """The conversation ended: in-app tells the app; the other channels have nothing to send."""


Outbound = OutboundText | OutboundTyping | OutboundFile | OutboundClose


@dataclass(frozen=True)
class SendResult:
    provider_id: str | None
    """The provider's message id when it gives one (receipts refer to it)."""
    sent: bool = True
    """False when the channel had nothing to send (typing on SMS, close outside in-app)."""


NOT_SENT = SendResult(None, sent=False)


@dataclass(frozen=True)
class FetchedFile:
    """A customer's file, downloaded, decrypted where the channel encrypts, and within the limits."""

    name: str
    mime_type: str
    data: bytes


def call(session: requests.Session, method: str, url: str, *, what: str, **kwargs: Any) -> requests.Response:
    """One HTTP request with the outbound timeouts; a transport failure becomes RetryableError.

    `what` names the call for the operator ("Twilio send", "Apple preUpload"). Any HTTP answer is
    returned as is: only its provider family knows what its error bodies mean.
    """
    try:
        return session.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.Timeout:
        raise RetryableError(f"{what}: no answer within {TIMEOUT[1]} s") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise RetryableError(f"{what}: connection failed ({type(exc).__name__})") from None
    except requests.RequestException as exc:  # a malformed URL: configuration, not a passing fault
        raise PermanentError(f"{what}: the request could not be made ({exc}); check the asset's URLs") from None


def json_body(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when the body is empty or not an object (never raises)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
