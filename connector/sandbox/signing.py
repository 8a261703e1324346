"""How each provider signs the requests it sends the connector, written once from the providers'
documentation (docs/protocols/channels.md) for the simulators, the customer emulator, the tests
and the benchmarks.

It shares no code with the connector's own checks (`channels/*.verify`), so a test that signs here
and is accepted there shows that two readings of the spec agree; the Twilio signature is also held
against twilio's own `RequestValidator` (tests/sandbox/test_customer_emulator.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import Any

import jwt


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """`X-Twilio-Signature`: Base64(HMAC-SHA1(auth token, URL + name+value of every parameter,
    sorted by name, then value))."""
    data = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def meta_signature(app_secret: str | bytes, body: bytes) -> str:
    """`X-Hub-Signature-256`: Meta signs the raw bytes of the body with the app secret."""
    key = app_secret if isinstance(app_secret, bytes) else app_secret.encode()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def inapp_signature(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The in-app contract's `X-Signature`: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>."""
    key = secret if isinstance(secret, bytes) else secret.encode()
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def inapp_headers(secret: str | bytes, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """`X-Timestamp` (unix seconds) and its `X-Signature`."""
    timestamp = str(int(time.time() if now is None else now))
    return {"X-Timestamp": timestamp, "X-Signature": inapp_signature(secret, timestamp, body)}


def apple_jwt(secret_base64: str, msp_id: str, *, expires_in: float | None = 300, **claims: Any) -> str:
    """What Apple sends the MSP: HS256 keyed with the base64-decoded API secret, `aud` = the MSP id."""
    now = int(time.time())
    payload: dict[str, Any] = {"aud": msp_id, "iat": now, **claims}
    if expires_in is not None:
        payload["exp"] = now + int(expires_in)
    return jwt.encode(payload, base64.b64decode(secret_base64), algorithm="HS256")
