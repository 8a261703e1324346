"""The outside services a conversation flow calls, simulated for the sandbox and the tests: a sample
identity service (`identity.py`, the `verify` step) and a small FAQ bot (`bot.py`, the `bot` step),
both speaking the contracts of docs/protocols/bots.md.

    identity = IdentityService(secret=IDENTITY_SECRET)
    app.register_blueprint(identity.blueprint(), url_prefix="/identity")   # POST /identity/verify
    identity.faults.set(down=True)         # every call answers 503 until set(down=False)
    identity.faults.set(delay_seconds=2)   # every call answers 2 s late (the step's timeout fires)
    identity.faults.received               # the bodies of the calls received, oldest first
    identity.faults.keys()                 # their X-Connector-Idempotency-Key headers, oldest first
    identity.replays.acted()               # the keys the service acted on (a repeat is answered from memory)


Both check the connector's signature (X-Connector-Timestamp / X-Connector-Signature) with the
scheme read from the contract in connector/sandbox/signing.py, not the connector's own code, so a
call that passes shows two readings agree. A missing or wrong signature is 401.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Request, Response, jsonify, request

from connector.sandbox.signing import inapp_signature

IDENTITY_SECRET = "sandbox-identity-secret-0123456789"  # noqa: S105  # a public demo value
"""The demo secret of the sandbox identity service; a `verify` step that calls it signs with this."""
BOT_SECRET = "sandbox-bot-secret-0123456789"  # noqa: S105  # a public demo value
"""The demo secret of the sandbox bot; a `bot` step of kind `connector` that calls it signs with this."""
TIMESTAMP_HEADER = "X-Connector-Timestamp"
SIGNATURE_HEADER = "X-Connector-Signature"
IDEMPOTENCY_HEADER = "X-Connector-Idempotency-Key"
KEYS_KEPT_SECONDS = 300.0
"""How long the services remember a key's answer: longer than a worker's lease and the retries that
follow a kill, as docs/protocols/bots.md suggests an operator's service keep them."""
MAX_SKEW_SECONDS = 300
MAX_DELAY_SECONDS = 60.0
RECEIVED_KEPT = 1000
"""Calls whose bodies the services keep for tests and demos (the oldest are forgotten first)."""


@dataclass
class Faults:
    """Failures switched on through the control endpoint: down (503), slow (answers late), or the next
    `count` calls answering `status` (with `Retry-After` when given). Also counts the calls received
    and keeps their bodies (`received`), recorded when the call arrives, before any delay: a test
    reads which customer message a call carried, including a call its caller gave up on."""

    down: bool = False
    delay_seconds: float = 0.0
    fail_status: int = 0
    fail_count: int = 0
    retry_after: float | None = None
    calls: int = 0
    received: deque[Any] = field(default_factory=lambda: deque(maxlen=RECEIVED_KEPT))
    received_keys: deque[str | None] = field(default_factory=lambda: deque(maxlen=RECEIVED_KEPT))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, **changes: Any) -> None:
        """down?, delay_seconds? (0 to 60), fail_next? {"count", "status", "retry_after"?}; ValueError if bad."""
        with self._lock:
            if "down" in changes:
                self.down = bool(changes["down"])
            if "delay_seconds" in changes:
                delay = changes["delay_seconds"]
                if not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_SECONDS:
                    raise ValueError(f"delay_seconds must be a number from 0 to {MAX_DELAY_SECONDS:g}")
                self.delay_seconds = float(delay)
            if "fail_next" in changes:
                spec = changes["fail_next"]
                if not isinstance(spec, dict):
                    raise ValueError("fail_next must be an object {count, status, retry_after?}")
                status, count = spec.get("status"), spec.get("count", 1)
                if not isinstance(status, int) or not 400 <= status <= 599:
                    raise ValueError("fail_next.status must be an HTTP error status (400 to 599)")
                if not isinstance(count, int) or count < 0:
                    raise ValueError("fail_next.count must be a number of calls")
                self.fail_status, self.fail_count, self.retry_after = status, count, spec.get("retry_after")

    def reset(self) -> None:
        with self._lock:
            self.down, self.delay_seconds, self.fail_count, self.fail_status, self.retry_after = False, 0.0, 0, 0, None
            self.calls = 0
            self.received.clear()
            self.received_keys.clear()

    def state(self) -> dict[str, Any]:
        return {
            "down": self.down,
            "delay_seconds": self.delay_seconds,
            "fail_next": {"count": self.fail_count, "status": self.fail_status, "retry_after": self.retry_after},
            "calls": self.calls,
        }

    def bodies(self) -> list[Any]:
        """The bodies of the calls received, oldest first (None for a body that is not JSON)."""
        with self._lock:
            return list(self.received)

    def keys(self) -> list[str | None]:
        """The idempotency key of each call received (None: the call had none), oldest first."""
        with self._lock:
            return list(self.received_keys)

    def injected(self, body: Any = None, key: str | None = None) -> tuple[Response, int] | None:
        """Count the call and keep its `body` and idempotency `key`, wait the delay, and return the
        failure to answer with, if any."""
        with self._lock:
            self.calls += 1
            self.received.append(body)
            self.received_keys.append(key)
            delay = self.delay_seconds
            failure: tuple[int, float | None] | None = None
            if self.down:
                failure = (503, None)
            elif self.fail_count > 0:
                self.fail_count -= 1
                failure = (self.fail_status, self.retry_after)
        if delay:
            time.sleep(delay)
        if failure is None:
            return None
        status, retry_after = failure
        response = jsonify(error="injected", message=f"the sandbox service answers {status} on request")
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response, status


@dataclass
class Replays:
    """The answers a service gave, by the caller's idempotency key, kept KEYS_KEPT_SECONDS: a call
    made again with the same key gets the first answer, and the service does not act twice (no second
    verification, no second step of the bot's conversation). A call without a key is always acted on."""

    seconds: float = KEYS_KEPT_SECONDS
    replayed: int = 0
    _answers: OrderedDict[str, tuple[float, Any]] = field(default_factory=OrderedDict, repr=False)
    _acted: deque[str] = field(default_factory=lambda: deque(maxlen=RECEIVED_KEPT), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, key: str | None, act: Callable[[], Any]) -> Any:
        """The remembered answer of `key`, else `act()`'s, remembered (the first answer wins a race)."""
        if not key:
            return act()
        with self._lock:
            self._forget_old(time.monotonic())
            if key in self._answers:
                self.replayed += 1
                return self._answers[key][1]
        answer = act()
        with self._lock:
            if key in self._answers:  # a repeat that arrived while this one was acting answered first
                return self._answers[key][1]
            self._answers[key] = (time.monotonic(), answer)
            self._acted.append(key)
        return answer

    def acted(self) -> list[str]:
        """The keys the service acted on, oldest first (each once)."""
        with self._lock:
            return list(self._acted)

    def reset(self) -> None:
        with self._lock:
            self._answers.clear()
            self._acted.clear()
            self.replayed = 0

    def _forget_old(self, now: float) -> None:
        while self._answers and now - next(iter(self._answers.values()))[0] > self.seconds:
            self._answers.popitem(last=False)


def idempotency_key(req: Request) -> str | None:
    return (req.headers.get(IDEMPOTENCY_HEADER) or "").strip() or None


def signature_refusal(secret: str, req: Request) -> tuple[Response, int] | None:
    """401 with the reason when the request is not signed with `secret` within the skew window."""
    stamp = (req.headers.get(TIMESTAMP_HEADER) or "").strip()
    signature = (req.headers.get(SIGNATURE_HEADER) or "").strip().lower()
    if not stamp or not signature:
        return jsonify(error="missing_signature", message=f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} required"), 401
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW_SECONDS:
        return jsonify(error="invalid_signature", message=f"{TIMESTAMP_HEADER} is not within 5 minutes"), 401
    if signature != inapp_signature(secret, stamp, req.get_data()):
        return jsonify(error="invalid_signature", message=f"{SIGNATURE_HEADER} does not match"), 401
    return None


def signed_answer(
    secret: str, faults: Faults, replays: Replays, field: str, answer: Callable[[dict[str, Any]], Any]
) -> tuple[Response, int] | Response:
    """What both services do with a call: injected faults, the connector's signature, a JSON object
    holding `field` as an object, then `answer(body)`, or the first answer again for a repeated
    idempotency key."""
    key = idempotency_key(request)
    failure = faults.injected(request.get_json(silent=True), key) or signature_refusal(secret, request)
    if failure is not None:
        return failure
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get(field), dict):
        return jsonify(error="bad_request", message=f"the body must be an object with {field}"), 400
    return jsonify(replays.answer(key, lambda: answer(body)))


def add_control(bp: Blueprint, faults: Faults, reset: Any = None) -> None:
    """`GET /control` (the faults and calls), `POST /control` (set faults), `POST /control/reset`.

    No authentication: the sandbox serves it on loopback only, for tests and demos."""

    @bp.get("/control")
    def control_state() -> Response:
        return jsonify(faults.state())

    @bp.post("/control")
    def control() -> tuple[Response, int] | Response:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return jsonify(error="bad_request", message="the body must be a JSON object"), 400
        try:
            faults.set(**{k: v for k, v in data.items() if k in ("down", "delay_seconds", "fail_next")})
        except ValueError as exc:
            return jsonify(error="bad_request", message=str(exc)), 400
        return jsonify(faults.state())

    @bp.post("/control/reset")
    def control_reset() -> Response:
        faults.reset()
        if reset is not None:
            reset()
        return Response(status=204)
