"""The error hierarchy, and its mapping to HTTP answers in one place (docs/architecture.md, "Webhook answers").

Inbound errors carry what an operator or a provider's developer console needs to fix the call;
outbound errors tell retryable from permanent.
"""

from __future__ import annotations


class WebhookError(Exception):
    """A webhook request the connector refuses; `status` is the HTTP answer."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class PayloadError(WebhookError):
    """The body is malformed or lacks a field the channel requires (400, names the field)."""

    status = 400
    code = "invalid_payload"


class UnsupportedMediaType(WebhookError):
    """The body is not in the content type the provider sends (415)."""

    status = 415
    code = "unsupported_media_type"


class MissingSignature(WebhookError):
    """No signature header at all (401): the caller did not authenticate."""

    status = 401
    code = "missing_signature"


class SignatureError(WebhookError):
    """A signature that does not verify (403): wrong secret, changed body, wrong URL, stale timestamp."""

    status = 403
    code = "invalid_signature"


class UnknownAsset(WebhookError):
    """No configured asset of that channel and name (404)."""

    status = 404
    code = "unknown_asset"


class BodyTooLarge(WebhookError):
    """The body exceeds the configured limit (413)."""

    status = 413
    code = "body_too_large"


class RetryableError(Exception):
    """An outbound call that may succeed later (timeout, 5xx, 429); `wait` is the server's hint.

    `outage`: the service as a whole failed (no connection, no answer in time, 5xx), not this one
    request, so the failure counts toward the service's circuit breaker (connector/relay/breaker.py).
    The drain sets `service` (the breaker's name: the thread waits for it) and `retry_at` (when
    this thread probes the service again, earlier than its own backoff).
    """

    def __init__(self, message: str, *, wait: float | None = None, outage: bool = False) -> None:
        super().__init__(message)
        self.wait = wait
        self.outage = outage
        self.service: str | None = None
        self.retry_at: float | None = None


class PermanentError(Exception):
    """An outbound call that will not succeed by repeating it; `reason` is what an operator reads."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WindowClosed(PermanentError):
    """The channel's messaging window is closed: a free-form send is refused until the customer
    writes again (WhatsApp 131047, Messenger outside 24 h without the HUMAN_AGENT tag). Never retried;
    the agent is told in the contact-center conversation."""


class ConversationGone(PermanentError):
    """The contact center no longer knows the conversation (ended, unknown): the next customer
    message starts a new one."""
