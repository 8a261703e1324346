"""One call to an operator's service from a flow step (the identity service of `verify`, the chatbot of
`bot`): a signed JSON POST with a timeout, its failures sorted into what the drain retries and what
the engine acts on at once (docs/protocols/bots.md, "Errors").

Operator-configured URLs are trusted (no private-address rule, as for ECE), but TLS is verified:
a certificate that does not verify is a configuration fault, not a passing one.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import requests

from connector.errors import PermanentError, RetryableError
from connector.http_session import outbound_session, retry_after
from connector.signing import signed_headers

TIMESTAMP_HEADER = "X-Connector-Timestamp"
SIGNATURE_HEADER = "X-Connector-Signature"
IDEMPOTENCY_HEADER = "X-Connector-Idempotency-Key"
"""The same for a call made again (a worker died inside it), different for every other call: a service
that keeps keys for a few minutes answers the repeat without acting twice (docs/protocols/bots.md)."""
MAX_ANSWER_BYTES = 256 * 1024
"""An answer beyond this is refused unread: a flow step needs a few kilobytes at most."""
CONNECT_TIMEOUT_SECONDS = 3.05
"""At most this long to connect (a little over a TCP retransmission window), within the step's timeout."""
MAX_ATTRIBUTES = 50
MAX_NAME_CHARS = 64
MAX_VALUE_CHARS = 1024


class ServiceTimeout(RetryableError):
    """The service did not answer within the step's timeout (an outage: it counts toward a breaker)."""


class ServiceUnavailable(RetryableError):
    """No connection, a 5xx or 408 (an outage), or a 429 (this request only), with the server's wait."""


class ServiceRefused(PermanentError):
    """A 4xx other than 408/429: repeating the same request cannot help; `status` is the HTTP answer."""

    def __init__(self, reason: str, *, status: int) -> None:
        super().__init__(reason)
        self.status = status


class InvalidAnswer(PermanentError):
    """A 2xx whose body is not what the contract says; the reason names what is wrong."""


@functools.cache
def _session() -> requests.Session:
    """One pooled session per process for every flow service (sessions are shared by the drain's loops)."""
    return outbound_session()


def idempotency_key(conversation_id: str, item: str, step: str) -> str:
    """The key of the call `step` makes for the inbox item `item` (the customer message's provider id)
    of conversation `conversation_id`: a repeat of that item after a crash derives the same key, any
    other message or step another. A hash, so no customer text or id leaves in it."""
    return hashlib.sha256(f"{conversation_id}\x1f{item}\x1f{step}".encode()).hexdigest()[:32]


def post_json(
    what: str,
    url: str,
    body: Mapping[str, Any] | list[Any],
    *,
    secret: str | None,
    timeout: float,
    idempotency_key: str | None = None,
) -> Any:
    """POST `body` as JSON (signed when `secret` is given; with IDEMPOTENCY_HEADER when a key is
    given) and return the decoded JSON answer.

    `what` names the service in every error ("identity service", "bot"). Raises ServiceTimeout,
    ServiceUnavailable, ServiceRefused or InvalidAnswer (the body is not JSON or too large).
    """
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if secret:
        headers |= signed_headers(secret, raw, timestamp_header=TIMESTAMP_HEADER, signature_header=SIGNATURE_HEADER)
    if idempotency_key:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    try:
        with _session().post(
            url, data=raw, headers=headers, timeout=(min(CONNECT_TIMEOUT_SECONDS, timeout), timeout), stream=True
        ) as response:
            _raise_for_status(what, response)
            content = _bounded_content(what, response)
    except requests.Timeout:
        raise ServiceTimeout(f"{what}: no answer within {timeout:g} s", outage=True) from None
    except requests.exceptions.SSLError as exc:
        raise PermanentError(
            f"{what}: TLS to {url} failed ({exc.__class__.__name__}): check the service's certificate, "
            "or REQUESTS_CA_BUNDLE for a private CA"
        ) from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise ServiceUnavailable(f"{what}: connection failed ({type(exc).__name__})", outage=True) from None
    except requests.RequestException as exc:  # a malformed URL: configuration, not a passing fault
        raise PermanentError(f"{what}: the request could not be made ({exc}); check the step's url") from None
    try:
        return json.loads(content)
    except ValueError:
        raise InvalidAnswer(f"{what}: the answer is not JSON") from None


def _raise_for_status(what: str, response: requests.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        raise ServiceUnavailable(f"{what}: HTTP 429 (too many requests)", wait=retry_after(response))
    if status == 408 or status >= 500:
        raise ServiceUnavailable(f"{what}: HTTP {status}", wait=retry_after(response), outage=True)
    hint = {
        401: "the service refused the signature: the step's secret differs from the service's; make them equal",
        403: "the service refused the signature: the step's secret differs from the service's; make them equal",
        404: "no such path on the service: check the step's url",
    }.get(status, "the service refused the request")
    raise ServiceRefused(f"{what}: HTTP {status}: {hint}", status=status)


def _bounded_content(what: str, response: requests.Response) -> bytes:
    """The body, read only up to MAX_ANSWER_BYTES (a runaway answer never fills the worker's memory)."""
    content = bytearray()
    for chunk in response.iter_content(chunk_size=65536):
        content += chunk
        if len(content) > MAX_ANSWER_BYTES:
            raise InvalidAnswer(f"{what}: the answer is larger than {MAX_ANSWER_BYTES} bytes")
    return bytes(content)


def answer_attributes(raw: Any, *, where: str) -> dict[str, str]:
    """Custom attributes from a service: an object of at most MAX_ATTRIBUTES names to text, numbers or
    booleans (kept as text: "true", "3"), each bounded: what verify answers and a bot hands over."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidAnswer(f"{where} must be an object of names to values")
    if len(raw) > MAX_ATTRIBUTES:
        raise InvalidAnswer(f"{where} has {len(raw)} entries; at most {MAX_ATTRIBUTES}")
    out: dict[str, str] = {}
    for name, value in raw.items():
        if not name or len(name) > MAX_NAME_CHARS:
            raise InvalidAnswer(f"{where}: a name must be 1 to {MAX_NAME_CHARS} characters")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float | str):
            text = str(value)
        else:
            raise InvalidAnswer(f"{where}.{name} must be text, a number or a boolean")
        if len(text) > MAX_VALUE_CHARS:
            raise InvalidAnswer(f"{where}.{name} is longer than {MAX_VALUE_CHARS} characters")
        out[name] = text
    return out
