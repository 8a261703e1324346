"""The HMAC scheme of our own contracts, in one place: the in-app channel (both directions) and the
conversation flows' calls to the operator's identity service and chatbot (docs/protocols/bots.md).

    signature = "sha256=" + lowercase hex of HMAC-SHA256(secret, timestamp + "." + raw body)

The timestamp (unix seconds) is inside the MAC, so a captured request replays only within the
receiver's skew window. Only the header names differ per contract (`X-Timestamp` / `X-Signature`
for in-app, `X-Connector-Timestamp` / `X-Connector-Signature` for the flows' services).
"""

from __future__ import annotations

import hashlib
import hmac
import time


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`; the receiver signs the raw bytes it got."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signature_matches(secret: str, timestamp: str, body: bytes, received: str) -> bool:
    """A constant-time compare of `received` (case and surrounding blanks ignored) with the expected one."""
    return hmac.compare_digest(received.strip().lower().encode(), signature(secret, timestamp, body).encode())


def signed_headers(
    secret: str, body: bytes, *, timestamp_header: str, signature_header: str, now: float | None = None
) -> dict[str, str]:
    """The two headers of a signed request made now (or at `now`)."""
    stamp = str(int(time.time() if now is None else now))
    return {timestamp_header: stamp, signature_header: signature(secret, stamp, body)}
