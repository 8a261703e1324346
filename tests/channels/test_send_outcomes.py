"""How each channel classifies what its provider's send API answers: one row per (channel, case).

A send raises RetryableError (with the server's `Retry-After` as `wait`), WindowClosed or
PermanentError (with the reason an operator reads in the dead-letter list) for every provider
outcome; the rows are the outcomes docs/protocols/channels.md names for each provider. A row's `says`
is the start of the error's text, so it pins the reason the operator reads. Every row also checks
that the channel made exactly one call: retrying is the relay's job, never the channel's.

The request side (bodies, headers, files, typing) is tested per channel in test_send_<channel>.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import pytest
import requests
import responses

from connector.channels.apple import Apple
from connector.channels.base import Channel
from connector.channels.inapp import InApp
from connector.channels.messenger import Messenger
from connector.channels.sending import OutboundText, Recipient, SendResult
from connector.channels.sms import Sms
from connector.channels.whatsapp import WhatsApp
from connector.errors import PermanentError, RetryableError, WindowClosed

from . import test_send_apple as apple_tests
from . import test_send_inapp as inapp_tests
from . import test_send_messenger as messenger_tests
from . import test_send_sms as sms_tests
from . import test_send_whatsapp as whatsapp_tests
from .senders import channel, graph_error, twilio_error

pytestmark = pytest.mark.usefixtures("fake_dns")  # names resolve without the network

KEY = "k1"


@dataclass(frozen=True)
class HttpDate:
    """A `Retry-After` given as an HTTP date `seconds` from now, written when the row runs: the
    channels measure it against the clock."""

    seconds: int


@dataclass(frozen=True)
class Answer:
    """What the provider answers the send with."""

    status: int
    body: dict[str, Any] | str = ""
    retry_after: str | HttpDate | None = None

    def register(self, url: str) -> None:
        headers = {}
        if isinstance(self.retry_after, HttpDate):
            headers["Retry-After"] = formatdate(time.time() + self.retry_after.seconds, usegmt=True)
        elif self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        content = {"json": self.body} if isinstance(self.body, dict) else {"body": self.body}
        responses.post(url, status=self.status, headers=headers, **content)


def http(status: int, body: dict[str, Any] | str = "", *, retry_after: str | HttpDate | None = None) -> Answer:
    return Answer(status, body, retry_after)


@dataclass(frozen=True)
class Provider:
    """How a row sends on one channel: the channel, its send URL, the customer, the time of the send."""

    build: Callable[[], Channel]
    send_url: str
    to: Recipient
    now: float
    accepted: Answer
    """The provider's answer to a send it took."""


PROVIDERS = {
    "sms": Provider(
        build=lambda: channel(Sms, "test-sms"),
        send_url=sms_tests.SEND_URL,
        to=sms_tests.CUSTOMER,
        now=2_000.0,
        accepted=http(201, sms_tests.created()),
    ),
    "messenger": Provider(
        build=lambda: channel(Messenger, "test-messenger"),
        send_url=messenger_tests.SEND_URL,
        to=messenger_tests.CUSTOMER,
        now=messenger_tests.LAST + messenger_tests.HOUR,  # within the 24 h window
        accepted=http(200, {"recipient_id": messenger_tests.PSID, "message_id": messenger_tests.MID}),
    ),
    "whatsapp": Provider(
        build=lambda: channel(WhatsApp, "test-whatsapp"),
        send_url=whatsapp_tests.SEND_URL,
        to=whatsapp_tests.CUSTOMER,
        now=whatsapp_tests.LAST + whatsapp_tests.HOUR,  # within the 24 h window
        accepted=http(200, whatsapp_tests.ACCEPTED),
    ),
    "apple": Provider(
        build=lambda: channel(Apple, "test-apple"),
        send_url=f"{apple_tests.BASE}/v1/message",
        to=apple_tests.CUSTOMER,
        now=5_000.0,
        accepted=http(200),  # Apple answers a send with an empty body
    ),
    "inapp": Provider(
        build=lambda: channel(InApp, "test-inapp"),
        send_url=inapp_tests.DELIVERY_URL,
        to=inapp_tests.CUSTOMER,
        now=inapp_tests.NOW,
        accepted=http(202),
    ),
}


@dataclass(frozen=True)
class Row:
    channel: str
    case: str
    answer: Answer | requests.RequestException
    """The provider's answer, or the transport failure instead of one."""
    outcome: SendResult | type[PermanentError] | type[RetryableError]
    says: str = ""
    """How the error's text starts (the operator's reason)."""
    wait: float | None = None
    """RetryableError.wait: the server's Retry-After in seconds, None without one."""


def row(
    channel: str,
    case: str,
    answer: Answer | requests.RequestException,
    outcome: SendResult | type[PermanentError] | type[RetryableError],
    says: str = "",
    *,
    wait: float | None = None,
    bug: str | None = None,
) -> Any:
    """One table row; `bug` names a misclassification the product has today (a strict xfail)."""
    marks = (pytest.mark.xfail(strict=True, reason=bug),) if bug else ()
    return pytest.param(Row(channel, case, answer, outcome, says, wait), id=f"{channel}-{case}", marks=marks)


HTML = "<html><body>oops</body></html>"  # what a proxy in front of the API answers with
IN_2_MIN = HttpDate(120)
# An HTTP date has whole seconds, and the send takes a moment: the wait is 120 s less a little.
DATE_SLACK = 2.0


def transport_rows(name: str, what: str) -> list[Any]:
    """Failures before any answer: `sending.call` names the call in the reason."""
    return [
        row(name, "connection-error", requests.ConnectionError("reset"), RetryableError, f"{what}: connection failed"),
        row(name, "connect-timeout", requests.ConnectTimeout("slow"), RetryableError, f"{what}: no answer within 10 s"),
        row(name, "read-timeout", requests.ReadTimeout("slow"), RetryableError, f"{what}: no answer within 10 s"),
    ]


def rate_limit_rows(name: str, body: dict[str, Any] | str, says: str, seconds: int) -> list[Any]:
    """429 with Retry-After in seconds, as an HTTP date, and without one."""
    return [
        row(name, "429-retry-after", http(429, body, retry_after=str(seconds)), RetryableError, says, wait=seconds),
        row(name, "429-retry-after-http-date", http(429, body, retry_after=IN_2_MIN), RetryableError, says, wait=120),
        row(name, "429-no-retry-after", http(429, body), RetryableError, says, wait=None),
    ]


def server_error_rows(name: str, says: Callable[[int], str]) -> list[Any]:
    """5xx without a provider error body (a proxy's page, or nothing); Retry-After honoured."""
    return [
        row(name, "500", http(500, HTML), RetryableError, says(500)),
        row(name, "503", http(503), RetryableError, says(503)),
        row(name, "503-retry-after", http(503, retry_after="5"), RetryableError, says(503), wait=5),
    ]


# The tables are laid out by hand, a row to a case, as the blending tables are.
# fmt: off

# -- SMS: Twilio's `{"code", "message"}`; 429 / 20429 and 5xx retry, every other code is permanent ----

TWILIO_RATE_LIMITED = twilio_error(20429, "Too Many Requests", status=429)

SMS = [
    row("sms", "sent", PROVIDERS["sms"].accepted, SendResult(sms_tests.MESSAGE_SID)),
    *transport_rows("sms", "Twilio send"),
    *server_error_rows("sms", lambda status: f"Twilio {status}: try again later"),
    *rate_limit_rows("sms", TWILIO_RATE_LIMITED, "Twilio 20429: try again later", 3),
    row("sms", "21211-invalid-number", http(400, twilio_error(21211)), PermanentError,
        "Twilio 21211: the customer's number is not a valid phone number"),
    row("sms", "21610-unsubscribed", http(400, twilio_error(21610)), PermanentError,
        "Twilio 21610: the customer replied STOP; they must opt in again (text START) before they can be messaged"),
    row("sms", "21614-not-sms-capable", http(400, twilio_error(21614)), PermanentError,
        "Twilio 21614: the customer's number cannot receive SMS (e.g. a landline)"),
    row("sms", "21635-landline", http(400, twilio_error(21635)), PermanentError,
        "Twilio 21635: the customer's number is a landline"),
    row("sms", "21612-unroutable", http(400, twilio_error(21612)), PermanentError,
        "Twilio 21612: Twilio cannot route a message from the asset's number to this customer's number"),
    row("sms", "21602-no-body", http(400, twilio_error(21602)), PermanentError,
        "Twilio 21602: the message has no body and no media"),
    row("sms", "21623-too-many-media", http(400, twilio_error(21623)), PermanentError,
        "Twilio 21623: too many media in one message (at most 10)"),
    row("sms", "21999-unknown-code-keeps-twilios-message", http(400, twilio_error(21999)), PermanentError,
        "Twilio 21999: Something new"),
    row("sms", "401-20003-bad-credentials", http(401, twilio_error(20003, "Authenticate", status=401)),
        PermanentError, "Twilio 20003: authentication failed; check the asset's account_sid and auth_token"),
    row("sms", "401-without-body-is-20003", http(401), PermanentError,
        "Twilio 20003: authentication failed; check the asset's account_sid and auth_token"),
    row("sms", "403-without-body", http(403), PermanentError, "Twilio 403: HTTP 403"),
]

# -- Messenger: Graph `{"error": {"code", "error_subcode"}}`; 10/2018278 is the closed window --------


def messenger_error(code: int, message: str = "An error", subcode: int | None = None) -> dict[str, Any]:
    return graph_error(code, message, subcode=subcode)


def messenger_says(code: int, rest: str) -> str:
    return f"Messenger error {code}: {rest}"


MESSENGER_NO_PERMISSION = "(#10) Requires pages_messaging permission to manage the object"
MESSENGER_PERMISSION_REASON = (
    "the page lacks the permission for this message; check the app's pages_messaging permission"
)
MESSENGER_TOKEN_REASON = "the page access token is invalid or expired; generate a new page_access_token for the asset"

MESSENGER = [
    row("messenger", "sent", PROVIDERS["messenger"].accepted, SendResult(messenger_tests.MID)),
    *transport_rows("messenger", "Messenger send"),
    *server_error_rows("messenger", lambda status: f"Messenger HTTP {status}: HTTP {status}"),
    row("messenger", "502", http(502, "Bad gateway"), RetryableError, "Messenger HTTP 502: HTTP 502"),
    *rate_limit_rows("messenger", messenger_error(613, "Calls to this api have exceeded the rate limit."),
                     messenger_says(613, "Calls to this api have exceeded the rate limit."), 42),
    *[
        row("messenger", f"{code}-{name}", http(400, messenger_error(code, message)), RetryableError,
            messenger_says(code, message))
        for code, name, message in [
            (4, "app-rate-limit", "(#4) Application request limit reached"),
            (17, "user-rate-limit", "(#17) User request limit reached"),
            (32, "page-rate-limit", "(#32) Page request limit reached"),
            (613, "custom-rate-limit", "Calls to this api have exceeded the rate limit."),
            (80006, "messenger-throttle", "There have been too many messages sent to this user"),
            (2, "temporary", "An unexpected error has occurred. Please retry your request later."),
        ]
    ],
    row("messenger", "10-2018278-window-closed",
        http(400, messenger_error(10, "(#10) This message is sent outside of allowed window.", 2018278)), WindowClosed,
        messenger_says(10, "(#10) This message is sent outside of allowed window.; the messaging window is closed "
                       "until the customer writes again")),
    row("messenger", "100-2018001-invalid-recipient",
        http(400, messenger_error(100, "(#100) No matching user found", 2018001)), PermanentError,
        messenger_says(100, "Meta refused a parameter of the message (invalid PSID or attachment URL)")),
    row("messenger", "551-person-unavailable",
        http(400, messenger_error(551, "This person isn't available right now.", 1545041)), PermanentError,
        messenger_says(551, "this person is not available to receive messages right now")),
    row("messenger", "10-no-permission", http(400, messenger_error(10, MESSENGER_NO_PERMISSION)), PermanentError,
        messenger_says(10, MESSENGER_PERMISSION_REASON)),
    row("messenger", "1200-unknown-code-keeps-metas-message", http(400, messenger_error(1200, "Something else")),
        PermanentError, messenger_says(1200, "Something else")),
    row("messenger", "190-invalid-token", http(400, messenger_error(190, "Invalid OAuth access token.")),
        PermanentError, messenger_says(190, MESSENGER_TOKEN_REASON)),
    row("messenger", "401-190-expired-token",
        http(401, messenger_error(190, "Error validating access token: Session has expired", 463)), PermanentError,
        messenger_says(190, MESSENGER_TOKEN_REASON)),
    row("messenger", "403-10-no-permission", http(403, messenger_error(10, MESSENGER_NO_PERMISSION)), PermanentError,
        messenger_says(10, MESSENGER_PERMISSION_REASON)),
]

# -- WhatsApp Cloud: Graph errors with `error_data`; 131047 is the closed 24 h window ---------------


def whatsapp_error(code: int, message: str = "An error", subcode: int | None = None) -> dict[str, Any]:
    return graph_error(code, message, subcode=subcode, whatsapp=True)


def whatsapp_says(code: int, rest: str) -> str:
    return f"WhatsApp error {code}: {rest}"


WHATSAPP_TOKEN_REASON = "the access token is invalid or expired; generate a new access_token for the asset"

WHATSAPP = [
    row("whatsapp", "sent", PROVIDERS["whatsapp"].accepted, SendResult(whatsapp_tests.WAMID)),
    *transport_rows("whatsapp", "WhatsApp send"),
    *server_error_rows("whatsapp", lambda status: f"WhatsApp HTTP {status}: HTTP {status}"),
    *rate_limit_rows("whatsapp", whatsapp_error(130429, "Rate limit hit"), whatsapp_says(130429, "Rate limit hit"),
                     30),
    *[
        row("whatsapp", f"{code}-{name}", http(400, whatsapp_error(code, message)), RetryableError,
            whatsapp_says(code, message))
        for code, name, message in [
            (130429, "throughput", "Rate limit hit"),
            (131056, "pair-rate-limit", "(Business Account, Consumer Account) pair rate limit hit"),
            (80007, "account-rate-limit", "Rate limit issues"),
            (4, "app-rate-limit", "(#4) Application request limit reached"),
            (131000, "generic-temporary", "Something went wrong"),
        ]
    ],
    row("whatsapp", "131047-window-closed", http(400, whatsapp_error(131047, "Re-engagement message")), WindowClosed,
        whatsapp_says(131047, "Re-engagement message; the messaging window is closed until the customer writes "
                      "again")),
    row("whatsapp", "131026-undeliverable", http(400, whatsapp_error(131026, "Message Undeliverable")),
        PermanentError,
        whatsapp_says(131026, "the message is undeliverable (the number is not on WhatsApp, or an old app version)")),
    row("whatsapp", "100-invalid-recipient", http(400, whatsapp_error(100, "(#100) Invalid parameter")),
        PermanentError,
        whatsapp_says(100, "Meta refused a parameter of the message (invalid recipient, media link or id)")),
    row("whatsapp", "131051-unsupported-type", http(400, whatsapp_error(131051, "Unsupported message type")),
        PermanentError, whatsapp_says(131051, "WhatsApp does not support this message type")),
    row("whatsapp", "368-policy-block",
        http(400, whatsapp_error(368, "Temporarily blocked for policies violations")), PermanentError,
        whatsapp_says(368, "the business account is temporarily blocked for policy violations; see WhatsApp "
                      "Manager")),
    row("whatsapp", "131049-unknown-code-keeps-metas-message",
        http(400, whatsapp_error(131049, "This message was not delivered to maintain healthy ecosystem engagement.")),
        PermanentError,
        whatsapp_says(131049, "This message was not delivered to maintain healthy ecosystem engagement.")),
    row("whatsapp", "190-invalid-token", http(400, whatsapp_error(190, "Invalid OAuth access token.")),
        PermanentError, whatsapp_says(190, WHATSAPP_TOKEN_REASON)),
    row("whatsapp", "401-190-expired-token",
        http(401, whatsapp_error(190, "Error validating access token: Session has expired", 463)), PermanentError,
        whatsapp_says(190, WHATSAPP_TOKEN_REASON)),
    row("whatsapp", "403-10-no-permission",
        http(403, whatsapp_error(10, "(#10) Application does not have permission for this action")), PermanentError,
        whatsapp_says(10, "(#10) Application does not have permission for this action")),
]

# -- Apple: status codes only; 429 and 5xx retry, every other 4xx is permanent ----------------------

APPLE_AUTH_REASON = "Apple refused the authorization; check the asset's msp_id and secret"

APPLE = [
    row("apple", "sent", PROVIDERS["apple"].accepted, SendResult(apple_tests.message_id(KEY))),
    *transport_rows("apple", "Apple send"),
    *server_error_rows("apple", lambda status: f"Apple send: HTTP {status}"),
    *rate_limit_rows("apple", "", "Apple send: HTTP 429", 9),
    row("apple", "400-malformed", http(400), PermanentError,
        "Apple send: HTTP 400: Apple refused the request as malformed"),
    row("apple", "401-bad-credentials", http(401), PermanentError, f"Apple send: HTTP 401: {APPLE_AUTH_REASON}"),
    row("apple", "403-bad-credentials", http(403), PermanentError, f"Apple send: HTTP 403: {APPLE_AUTH_REASON}"),
    row("apple", "404-unknown-customer", http(404), PermanentError,
        "Apple send: HTTP 404: Apple does not know this customer or business (the conversation may be deleted)"),
    row("apple", "413-payload-too-large", http(413), PermanentError, "Apple send: HTTP 413: Apple refused the request"),
]

# -- In-app (our contract: docs/protocols/channels.md, "In-app: outbound body"): 408 / 429 / 5xx retry with
# the app's wait, other answers are permanent

INAPP_SECRET_REASON = "the app refused the signature: the asset's secret differs from the app's; make them equal"

INAPP = [
    row("inapp", "sent", PROVIDERS["inapp"].accepted, SendResult(KEY)),  # the relay's key is the message_id
    *transport_rows("inapp", "in-app delivery"),
    *server_error_rows("inapp", lambda status: f"in-app delivery: HTTP {status}"),
    row("inapp", "500-retry-after", http(500, retry_after="5"), RetryableError, "in-app delivery: HTTP 500", wait=5),
    row("inapp", "408-retry-after", http(408, retry_after="5"), RetryableError, "in-app delivery: HTTP 408", wait=5),
    *rate_limit_rows("inapp", "", "in-app delivery: HTTP 429", 5),
    row("inapp", "400-malformed", http(400), PermanentError,
        "in-app delivery: HTTP 400: the app refused the message as malformed"),
    row("inapp", "401-bad-signature", http(401), PermanentError, f"in-app delivery: HTTP 401: {INAPP_SECRET_REASON}"),
    row("inapp", "403-bad-signature", http(403), PermanentError, f"in-app delivery: HTTP 403: {INAPP_SECRET_REASON}"),
    row("inapp", "404-unknown-customer-or-path", http(404), PermanentError,
        "in-app delivery: HTTP 404: the app does not know this customer or its delivery_url path; check the asset's "
        "delivery_url"),
    row("inapp", "409-other-refusal", http(409), PermanentError,
        "in-app delivery: HTTP 409: the app refused the message"),
]

# fmt: on

TABLE = [*SMS, *MESSENGER, *WHATSAPP, *APPLE, *INAPP]


@pytest.mark.parametrize("row", TABLE)
@responses.activate
def test_send_outcome(row: Row) -> None:
    provider = PROVIDERS[row.channel]
    if isinstance(row.answer, Answer):
        row.answer.register(provider.send_url)
    else:
        responses.post(provider.send_url, body=row.answer)
    send = provider.build().send

    if isinstance(row.outcome, SendResult):
        assert send(provider.to, OutboundText("Hi"), key=KEY, now=provider.now) == row.outcome
    else:
        with pytest.raises(row.outcome) as caught:
            send(provider.to, OutboundText("Hi"), key=KEY, now=provider.now)
        error = caught.value
        assert type(error) is row.outcome  # a permanent error is not WindowClosed, nor the reverse
        assert str(error).startswith(row.says), str(error)
        if isinstance(error, RetryableError):
            dated = isinstance(row.answer, Answer) and isinstance(row.answer.retry_after, HttpDate)
            assert error.wait == (pytest.approx(row.wait, abs=DATE_SLACK) if dated else row.wait)
    assert len(responses.calls) == 1  # one attempt: the relay retries, with its backoff


# The cases every channel's rows must have, whatever its provider.
EVERY_CHANNEL = (
    "sent",
    "connection-error",
    "connect-timeout",
    "read-timeout",
    "500",
    "503",
    "503-retry-after",
    "429-retry-after",
    "429-retry-after-http-date",
    "429-no-retry-after",
)


def test_every_channel_has_a_row_for_each_common_outcome() -> None:
    cases = [(param.values[0].channel, param.values[0].case) for param in TABLE]
    assert len(set(cases)) == len(cases), "two rows have the same id"
    assert [(name, case) for name in PROVIDERS for case in EVERY_CHANNEL if (name, case) not in cases] == []
