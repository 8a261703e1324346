"""Editing integrations from the UI and the API alike: "test and save" (the reference saves an
integration only after its test gets a token), and the item as operators see it.

Invariant: nothing is written unless the checks passed (when asked for) and the store accepted it;
secrets sent back as MASK or empty keep the stored ones, so an edit can be tested without retyping.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.backends import Finding, backend_for
from connector.config import raw as raw_shape
from connector.config.model import Integration
from connector.config.overrides import ConfigInvalid, Stored, masked
from connector.runtime import Runtime

KIND = "integrations"
ECE_ONLY = (
    "base_url",
    "version",
    "client_key",
    "client_secret",
    "callback_auth",
    "verify_tls",
    "ca_bundle",
    "api_paths",
    "max_in_flight",
)
"""Fields that are ECE's (its address, its client application, how it calls back): a Hybrid Chat
integration runs in the connector, is never asked for them, and does not show them."""


class TestFailed(Exception):
    """ "Test and save" found a failure: nothing was saved; `findings` say what to fix."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("; ".join(f.message for f in findings if not f.ok))
        self.findings = findings


@dataclass(frozen=True)
class Saved:
    """What `save` wrote, and the findings of the test it passed (empty when not tested)."""

    stored: Stored
    findings: list[Finding]
    callback_token: str | None = None
    """The bearer token generated for a new ECE integration's callbacks: the operator enters it in ECE
    now, since every later answer masks it."""


@dataclass(frozen=True)
class Candidate:
    """An integration as it would be saved: the raw mapping (stored secrets kept) and its model."""

    raw: dict[str, Any]
    item: Integration


def candidate(rt: Runtime, body: Any, *, create: bool) -> Candidate:
    """Validate `body` as it would be saved, every problem at once (the store's `prepared`): its fields,
    its cross-checks, a provisioned or taken name. Secrets sent back as MASK or empty take the stored
    ones (so an edit can be tested without retyping them). No ECE call is made for a write that would
    be refused anyway: the test runs only on a candidate."""
    if not isinstance(body, Mapping):
        raise ConfigInvalid({"_schema": ["send the integration as a JSON object"]})
    raw = copy.deepcopy(dict(body))
    if raw.get("type") == "hybrid":
        raw = without_empty_ece_fields(raw)
    prepared = rt.overrides.prepared(KIND, raw, rt.provisioned, create=create)
    return Candidate(prepared.raw, prepared.item)


def without_empty_ece_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A Hybrid Chat item without the ECE fields it was sent empty (`base_url: ""` as an older answer
    showed it, `callback_auth: {type: none}`), so sending back what the API answered validates."""
    empty: tuple[Any, ...] = (None, "", {}, {"type": "none"})
    return {k: v for k, v in raw.items() if not (k in ECE_ONLY and v in empty)}


def run_test(rt: Runtime, item: Integration) -> list[Finding]:
    """The backend's checks of `item` (none for a type without a backend)."""
    backend = backend_for(item)
    return backend.test(item, rt.redis) if backend is not None else []


def save(rt: Runtime, body: Any, *, create: bool, test: bool) -> Stored:
    """Save an integration, after the backend's checks pass if `test`. Raises TestFailed, ConfigInvalid,
    ConfigConflict or NotFound; nothing is written unless it returns."""
    return save_tested(rt, body, create=create, test=test).stored


def with_callback_token(body: Any) -> tuple[Any, str | None]:
    """A new ECE integration authenticates ECE's calls to its callback URL from the start: without
    `callback_auth`, or bearer without a token, it gets bearer with a generated token (returned, to be
    shown once). `callback_auth: {type: none}` asked for in so many words stays none."""
    if not isinstance(body, Mapping) or body.get("type") != "ece":
        return body, None
    auth = body.get("callback_auth")
    if auth is None or (isinstance(auth, Mapping) and auth.get("type") == "bearer" and not auth.get("token")):
        token = secrets.token_urlsafe(32)
        return {**body, "callback_auth": {**(auth or {}), "type": "bearer", "token": token}}, token
    return body, None


def save_tested(rt: Runtime, body: Any, *, create: bool, test: bool) -> Saved:
    """`save`, with the findings of the test it passed (ECE: token and entry points; Hybrid Chat: what
    the router sees per queue), for the page to show; a new ECE integration's generated callback token
    (`with_callback_token`) comes back once in `callback_token`."""
    generated = None
    if create:
        body, generated = with_callback_token(body)
    found = candidate(rt, body, create=create)
    findings: list[Finding] = []
    if test:
        findings = run_test(rt, found.item)
        if any(not f.ok for f in findings):
            raise TestFailed(findings)
    stored = rt.overrides.save(KIND, found.raw, rt.provisioned, create=create)
    rt.config_changed()
    return Saved(stored, findings, generated)


def callback_url(rt: Runtime, name: str) -> str:
    return f"{rt.settings.public_base_url.rstrip('/')}/ece/{name}/callback"


def shown(rt: Runtime, item: Integration) -> dict[str, Any]:
    """The API's view of an item: YAML shape, secrets masked, source, callback URL (ECE's). A Hybrid
    Chat integration shows its queues' fields and none of ECE's (no callback URL; a queue's id only
    where it is not its name)."""
    data = masked(KIND, raw_shape.of(KIND, item))
    if item.type == "hybrid":
        data = {k: v for k, v in data.items() if k not in ECE_ONLY}
        for entry_point in data.get("entry_points") or []:
            if entry_point.get("id") == entry_point.get("name"):
                entry_point.pop("id")
        data.update(source=item.source, read_only=item.source is not None, callback_url=None)
        return data
    data.update(source=item.source, read_only=item.source is not None, callback_url=callback_url(rt, item.name))
    return data


def test_summary(item: Integration, findings: list[Finding]) -> str:
    """A passed test in one sentence, for the page that saved it: Hybrid Chat says what the router sees
    per queue (free slots among READY agents with its skills, chats waiting)."""
    if item.type != "hybrid" or not findings:
        return ""
    return " ".join(f"{f.check}: {f.message}." for f in findings)
