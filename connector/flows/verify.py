"""The `verify` step's call: the answers so far go to the operator's identity service, whose answer
either sets custom attributes or fails the step (docs/protocols/bots.md, "Identity service").

    request  {"conversation_id", "channel", "locale", "customer": {"id", "name"?}, "answers": {...}}
    answer   {"verified": true, "attributes"?: {"customer_tier": "gold", ...}}
           | {"verified": false, "reason"?: "..."}

The call is signed like the in-app contract (connector/signing.py); timeouts, 5xx and 429 are
RetryableError, so the drain's retry machinery repeats the step, never this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.flows.service import InvalidAnswer, answer_attributes, post_json

WHAT = "identity service"
MAX_REASON_CHARS = 500
VERIFIED_ATTRIBUTE = "verified"
"""Set to "true" on every successful verification (unless the service sets it itself), so rules and
the agent see that the customer was verified."""


class VerificationFailed(Exception):
    """The service answered and said no (`{"verified": false}`): not an error of the call, the step's
    outcome. `reason` is the service's (bounded), or None."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason or "the identity service did not verify the customer")
        self.reason = reason


def verify_request(
    *,
    conversation_id: str,
    channel: str,
    locale: str,
    customer_id: str,
    customer_name: str | None = None,
    answers: Mapping[str, str],
) -> dict[str, Any]:
    """The documented request body, built in one place for the engine and the tests."""
    customer: dict[str, str] = {"id": customer_id}
    if customer_name:
        customer["name"] = customer_name
    return {
        "conversation_id": conversation_id,
        "channel": channel,
        "locale": locale,
        "customer": customer,
        "answers": dict(answers),
    }


def verify(
    url: str, secret: str, body: Mapping[str, Any], *, timeout: float, idempotency_key: str | None = None
) -> dict[str, Any]:
    """POST `body` to the identity service; the attributes to set (values as text), `verified` included.
    `idempotency_key` (service.idempotency_key) travels as X-Connector-Idempotency-Key.

    Raises RetryableError (ServiceTimeout, ServiceUnavailable), PermanentError (ServiceRefused,
    InvalidAnswer) or VerificationFailed.
    """
    answer = post_json(WHAT, url, body, secret=secret, timeout=timeout, idempotency_key=idempotency_key)
    return parse_answer(answer)


def parse_answer(answer: Any) -> dict[str, Any]:
    """The attributes of a positive answer; VerificationFailed for a negative one; InvalidAnswer
    (naming the field) for anything else."""
    if not isinstance(answer, dict):
        raise InvalidAnswer(f"{WHAT}: the answer must be a JSON object")
    unknown = sorted(set(answer) - {"verified", "attributes", "reason"})
    if unknown:
        raise InvalidAnswer(f"{WHAT}: unknown field(s) {', '.join(unknown)}; expected verified, attributes, reason")
    verified = answer.get("verified")
    if not isinstance(verified, bool):
        raise InvalidAnswer(f"{WHAT}: verified must be true or false")
    if not verified:
        reason = answer.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidAnswer(f"{WHAT}: reason must be text")
        raise VerificationFailed(reason[:MAX_REASON_CHARS] if reason else None)
    return {VERIFIED_ATTRIBUTE: "true", **answer_attributes(answer.get("attributes"), where=f"{WHAT}: attributes")}
