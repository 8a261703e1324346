"""What Messenger and WhatsApp Cloud share: Meta's verify handshake and `X-Hub-Signature-256`."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import Request, Response

from connector.channels.base import Channel
from connector.errors import MissingSignature, PayloadError, SignatureError


class MetaChannel(Channel):
    """Base of the Graph API channels; subclasses set `object_type` and implement `parse`."""

    object_type: str

    def handshake(self, request: Request) -> Response:
        """GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=… → the raw challenge, else 403."""
        mode = request.args.get("hub.mode", "")
        token = request.args.get("hub.verify_token", "")
        challenge = request.args.get("hub.challenge", "")
        expected = str(self.asset["verify_token"])
        if mode != "subscribe" or not challenge:
            raise PayloadError("expected hub.mode=subscribe and a hub.challenge", field="hub.mode")
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise SignatureError("hub.verify_token does not match the asset's verify token", field="hub.verify_token")
        return Response(challenge, status=200, mimetype="text/plain")

    def verify(self, request: Request) -> None:
        # Meta signs the raw bytes; re-serialised JSON fails on non-ASCII text.
        header = request.headers.get("X-Hub-Signature-256")
        if not header:
            raise MissingSignature("X-Hub-Signature-256 header is missing")
        digest = hmac.new(str(self.asset["app_secret"]).encode(), request.get_data(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(header.strip().lower().encode(), f"sha256={digest}".encode()):
            raise SignatureError("X-Hub-Signature-256 does not match the body signed with the app secret")

    def load_json(self, request: Request) -> dict[str, Any]:
        body = self.json_object(request)
        if body.get("object") != self.object_type:
            raise PayloadError(f"expected object {self.object_type!r}", field="object")
        entries = body.get("entry")
        if not isinstance(entries, list):
            raise PayloadError("entry must be a list", field="entry")
        return body


def require(mapping: Any, key: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    """`mapping[key]` of the expected type, or a PayloadError naming `where.key`; an empty string is missing."""
    if (
        not isinstance(mapping, dict)
        or key not in mapping
        or not isinstance(mapping[key], kind)
        or mapping[key] == ""  # an empty id or type is as good as none (and would key an anonymous thread)
    ):
        raise PayloadError(f"{where}.{key} is missing or has the wrong type", field=f"{where}.{key}")
    return mapping[key]


def optional(mapping: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    """`mapping[key]` when present and not null, of the expected type; `default` when absent or null.

    A field of the wrong type is a PayloadError naming `where.key`, never an AttributeError later.
    """
    value = mapping.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise PayloadError(f"{where}.{key} has the wrong type", field=f"{where}.{key}")
    return value
