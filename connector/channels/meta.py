"""What Messenger and WhatsApp Cloud share: Meta's verify handshake, `X-Hub-Signature-256`, and
the Graph API calls with their error body `{"error": {"message", "type", "code", "error_subcode"}}`."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import requests
from flask import Request, Response
from urllib3.util import Timeout

from connector.channels import media
from connector.channels.base import Channel
from connector.channels.sending import call, json_body
from connector.errors import (
    MissingSignature,
    PayloadError,
    PermanentError,
    RetryableError,
    SignatureError,
    WindowClosed,
)
from connector.http_session import retry_after

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT_SECONDS = 3.0
"""The most a Graph lookup (a customer's profile) may take, connecting and answering together: it runs
while the customer's message waits, so a slow Graph costs the message at most this."""


class MetaChannel(Channel):
    """Base of the Graph API channels; subclasses set `object_type`, the error tables, and implement `parse`."""

    object_type: str
    label: ClassVar[str]
    """The product name operators know, in error reasons."""
    bearer_option: ClassVar[str]
    """The asset option holding the bearer token of the Graph API."""
    window_errors: ClassVar[frozenset[tuple[int, int | None]]]
    """(code, subcode) pairs meaning "outside the messaging window"; subcode None matches any."""
    retryable_codes: ClassVar[frozenset[int]]
    """Rate limits and temporary failures: the same call may succeed later."""
    permanent_reasons: ClassVar[Mapping[int, str]]
    """What an operator can do about the codes that repeating cannot fix."""
    absent_errors: ClassVar[frozenset[tuple[int, int | None]]] = frozenset()
    """(code, subcode) pairs that mean a lookup has nothing for us (no such object, no permission to
    read it): an answer, not a failure. Subcode None matches any."""

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

    # -- Graph API -----------------------------------------------------------------------------

    def graph(self, method: str, path: str, *, what: str, json: Any = None) -> dict[str, Any]:
        """`{api_base_url}/{graph_version}/{path}` with the asset's bearer token → the answer's JSON."""
        base = str(self.asset["api_base_url"]).rstrip("/")
        response = call(
            self.session,
            method,
            f"{base}/{self.asset['graph_version']}/{path}",
            what=f"{self.label} {what}",
            headers=self.bearer,
            json=json,
        )
        self.raise_for_graph(response)
        return json_body(response)

    def graph_lookup(
        self, path: str, *, what: str, fields: tuple[str, ...], timeout: float | None = None
    ) -> dict[str, Any] | None:
        """GET `{api_base_url}/{graph_version}/{path}?fields=…` with the asset's bearer token → the
        answer's JSON object, or None. Never raises and never retries: the caller goes on without it.

        An `absent_errors` answer is None, logged at INFO. A failure is None, logged at WARNING
        without the token (it travels in the header, never in the URL): no connection, no complete
        answer within `timeout` seconds in all, 429, 5xx, any other Graph error, or a 2xx whose body
        is not a JSON object. `timeout` defaults to LOOKUP_TIMEOUT_SECONDS.
        """
        timeout = LOOKUP_TIMEOUT_SECONDS if timeout is None else timeout
        base = str(self.asset["api_base_url"]).rstrip("/")
        url = f"{base}/{self.asset['graph_version']}/{quote(path, safe='')}"
        about = {"asset": self.asset.name, "lookup": what}
        try:
            response = self.session.get(
                url,
                params={"fields": ",".join(fields)},
                headers=self.bearer,
                # `total` bounds connecting and answering together, where a (connect, read) pair
                # would allow each its own time; requests passes a urllib3 Timeout through as is.
                timeout=Timeout(total=timeout),  # type: ignore[arg-type]  # the stubs list floats only
            )
        except requests.Timeout:
            log.warning(
                "graph lookup failed; going on without it", extra={**about, "error": f"no answer within {timeout:g} s"}
            )
            return None
        except requests.RequestException as exc:
            log.warning("graph lookup failed; going on without it", extra={**about, "error": type(exc).__name__})
            return None
        if not 200 <= response.status_code < 300:
            code, subcode, message = self.graph_error(response)
            if code is not None and ((code, subcode) in self.absent_errors or (code, None) in self.absent_errors):
                log.info(
                    "graph lookup: nothing to read", extra={**about, "error": f"{self.label} error {code}: {message}"}
                )
                return None
            try:
                self.raise_for_graph(response)
            except (RetryableError, PermanentError) as exc:
                log.warning("graph lookup failed; going on without it", extra={**about, "error": str(exc)})
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.warning(
                "graph lookup failed; going on without it", extra={**about, "error": "the answer is not a JSON object"}
            )
            return None
        return body

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.asset[self.bearer_option]}"}

    def graph_error(self, response: requests.Response) -> tuple[int | None, int | None, str]:
        """(code, error_subcode, message) of a Graph error answer; None where the body lacks one."""
        error = json_body(response).get("error")
        error = error if isinstance(error, dict) else {}
        code, subcode, message = error.get("code"), error.get("error_subcode"), error.get("message")
        return (
            code if isinstance(code, int) else None,
            subcode if isinstance(subcode, int) else None,
            message if isinstance(message, str) else f"HTTP {response.status_code}",
        )

    def raise_for_graph(self, response: requests.Response) -> None:
        """2xx passes; the window error → WindowClosed; rate limits, temporary codes, 429, 5xx →
        RetryableError; anything else → PermanentError with the reason."""
        status = response.status_code
        if 200 <= status < 300:
            return
        code, subcode, message = self.graph_error(response)
        label = f"{self.label} error {code}" if code is not None else f"{self.label} HTTP {status}"
        if code is not None and ((code, subcode) in self.window_errors or (code, None) in self.window_errors):
            raise WindowClosed(f"{label}: {message}; the messaging window is closed until the customer writes again")
        if status == 429 or status >= 500 or code in self.retryable_codes:
            raise RetryableError(f"{label}: {message}", wait=retry_after(response))
        reason = self.permanent_reasons.get(code) if code is not None else None
        raise PermanentError(f"{label}: {reason}" if reason else f"{label}: {message}")

    def media_hosts(self) -> tuple[str, ...]:
        """Meta's CDN and download hosts, plus the configured API host (the sandbox serves files there)."""
        return (*media.META_MEDIA_HOSTS, media.host_of(str(self.asset["api_base_url"])))

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
