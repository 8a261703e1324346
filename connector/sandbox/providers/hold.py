"""Test-only: hold one channel's next send until the test releases it (connector/sandbox/holds.py).

A provider blueprint calls `checkpoint(state, channel)` once a send is accepted for processing
(credentials checked, injected failures applied) and before it takes effect. A test arms a hold:

    hold = send_holds(providers.state).hold_next("sms", lambda send: "ships today" in (send.text or ""))
    ... the agent writes; the connector's worker sends ...
    hold.wait_held(10)      # the provider received the send and has not answered
    worker.kill()
    hold.release()          # the provider delivers it to the customer, as it would have

Wired into the Twilio (SMS) and in-app simulators: one channel without an idempotency field and
one whose receiver dedupes on the connector's id (docs/architecture.md, "Idempotent effects").
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

from flask import request

from connector.sandbox.holds import Holds
from connector.sandbox.providers.store import ProviderState

_holds: dict[int, Holds] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class HeldSend:
    """What a hold's matcher sees of a send: its channel and text (Twilio `Body`, in-app `text`)."""

    channel: str
    text: str | None


def send_holds(state: ProviderState) -> Holds:
    """The holds of one set of provider simulators (kept beside its state, forgotten with it)."""
    with _lock:
        holds = _holds.get(id(state))
        if holds is None:
            holds = _holds[id(state)] = Holds()
            weakref.finalize(state, _holds.pop, id(state), None)
        return holds


def checkpoint(state: ProviderState, channel: str) -> None:
    """The hook of a send endpoint: blocks while a hold armed for `channel` takes this send."""
    send_holds(state).checkpoint(channel, HeldSend(channel, _text()))


def _text() -> str | None:
    if request.is_json:
        body: Any = request.get_json(silent=True)
        text = body.get("text") if isinstance(body, dict) else None
        return text if isinstance(text, str) else None
    return request.form.get("Body")
