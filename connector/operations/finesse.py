"""The media-blending section (`finesse:`) as the operator UI and the REST API both show and change it:
the section in effect, "test" (each configured node's SystemInfo) and "test and save".

A provisioned section is read-only (it names its file); without one, an admin may make the section
here. It is kept in Redis beside the files (`ConfigOverrides.save_singleton`), validated by the same
`FinesseSchema`, with the admin password masked as every secret is.

Invariants:
- nothing is written unless the store accepted the section and, for "test and save", every configured
  node answered SystemInfo IN_SERVICE;
- a password sent back as MASK, or empty, keeps the stored one, so an edit can be tested without
  retyping it;
- only `check_nodes` calls Finesse (SystemInfo, which needs no login), both nodes side by side with a
  short timeout; no page calls Finesse while rendering.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import requests

from connector.blending.finesse.client import FinesseClient, FinesseError, FinesseUnavailable, SystemInfo
from connector.config.model import FinesseConfig
from connector.config.overrides import Stored, masked
from connector.runtime import Runtime

SECTION = "finesse"
PROBE_SECONDS = 3.0
"""How long a test waits for each node's SystemInfo (both nodes are asked at once)."""
RESTART_NOTE = (
    "The listener (python -m connector listen) notices the change within a second and restarts itself "
    "with it (under `python -m connector run`; run a standalone listener with a restart policy)."
)


class NotConfigured(Exception):
    """There is no `finesse:` section: media blending is off."""

    def __init__(self) -> None:
        super().__init__("media blending is not configured: there is no finesse: section")


# -- the section as operators see it ----------------------------------------------------------------


def raw_of(item: FinesseConfig) -> dict[str, Any]:
    """The section in its YAML shape (defaults included: it states what is in effect), secrets in clear."""
    return {k: v for k, v in asdict(item).items() if v is not None and k != "source"}


def shown(item: FinesseConfig) -> dict[str, Any]:
    """The section for the API and the page: YAML shape, the password masked, and where it comes from."""
    data = masked(SECTION, raw_of(item))
    data.update(source=item.source, read_only=item.source is not None)
    return data


def current(rt: Runtime) -> FinesseConfig:
    """The section in effect; NotConfigured without one."""
    found = rt.config.finesse
    if found is None:
        raise NotConfigured()
    return found


def editable(rt: Runtime) -> bool:
    """True unless a provisioning file defines the section (then it is read-only here)."""
    return rt.provisioned.finesse is None


# -- testing the nodes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCheck:
    """What one node's SystemInfo said, or why it could not be read."""

    role: str
    """publisher | subscriber"""
    url: str
    reachable: bool
    status: str | None = None
    """IN_SERVICE, OUT_OF_SERVICE, PARTIAL_SERVICE (as Finesse names it); None when unreachable."""
    status_reason: str | None = None
    deployment_type: str | None = None
    error: str | None = None
    """In words an operator can act on; None when the node is in service."""

    @property
    def in_service(self) -> bool:
        return self.status == "IN_SERVICE"


@dataclass(frozen=True)
class NodeTest:
    """Every configured node checked at `checked_at`, and the node blending would work through."""

    nodes: tuple[NodeCheck, ...]
    active: str | None
    """The role of the node the listener's failover rule picks from these answers (the publisher
    when it is in service, else the subscriber when it is); None: both down, blending halts."""
    checked_at: float

    @property
    def ok(self) -> bool:
        """Every configured node is reachable and IN_SERVICE."""
        return all(n.in_service for n in self.nodes)

    def summary(self) -> str:
        if self.ok:
            return "every node is in service"
        return "; ".join(f"{n.role}: {n.error}" for n in self.nodes if n.error)


class TestFailed(Exception):
    """ "Test and save" found a node that is not in service: nothing was saved."""

    def __init__(self, result: NodeTest) -> None:
        super().__init__(result.summary())
        self.result = result


def _words(exc: FinesseError, url: str) -> str:
    """A failed SystemInfo read in words an operator can act on."""
    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.SSLError):
        return "the TLS handshake failed: is the certificate trusted? (set ca_bundle to the cluster's CA)"
    if exc.error_type == "Timeout":
        return f"no answer within {PROBE_SECONDS:g} s: is the host and port right, and reachable from the connector?"
    if exc.error_type == "Connection":
        text = str(cause or exc)
        if "Name or service not known" in text or "nodename nor servname" in text or "NameResolution" in text:
            return f"the host name of {url} is not known (DNS)"
        if "refused" in text.lower():
            return f"connection refused at {url}: nothing listens there (on UCCX the port is usually 8445)"
        return f"cannot connect to {url}: {text}"
    if exc.status == 404:
        return f"{url} answered 404: no Finesse API there (use the node's base URL, e.g. https://finesse1:8445)"
    if exc.error_type == "Malformed Response":
        return f"{url} answered, but not with Finesse's SystemInfo document: is it a Finesse node?"
    if isinstance(exc, FinesseUnavailable):
        return f"{url} is unavailable: {exc}"
    return f"{url} refused SystemInfo: {exc}"


def check_nodes(config: FinesseConfig, *, timeout: float = PROBE_SECONDS) -> NodeTest:
    """Ask each configured node's SystemInfo now, side by side; never raises for a node's failure."""
    client = FinesseClient(config, probe_timeout=timeout)
    nodes = [("publisher", config.publisher.rstrip("/"))]
    if config.subscriber:
        nodes.append(("subscriber", config.subscriber.rstrip("/")))

    def probe(url: str) -> SystemInfo | FinesseError:
        try:
            return client.system_info(url)
        except FinesseError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix="finesse-test") as pool:
        answers = dict(zip((url for _, url in nodes), pool.map(probe, (url for _, url in nodes)), strict=True))
    checks = []
    for role, url in nodes:
        answer = answers[url]
        if isinstance(answer, FinesseError):
            checks.append(NodeCheck(role, url, reachable=False, error=_words(answer, url)))
            continue
        error = None
        if not answer.in_service:
            error = f"{answer.status}" + (f": {answer.status_reason}" if answer.status_reason else "")
            error += " (only IN_SERVICE counts: a node out of service answers nothing else)"
        checks.append(
            NodeCheck(role, url, True, answer.status, answer.status_reason, answer.deployment_type, error=error)
        )

    # The rule of the listener's failover (connector/blending/finesse/failover.py), applied to these
    # answers: the publisher while it is in service, else the subscriber, else none (halted). Not
    # Failover itself: its log lines would read as if the listener had switched or halted.
    active = next((c.role for c in checks if c.in_service), None)
    return NodeTest(tuple(checks), active, time.time())


# -- changing the section ---------------------------------------------------------------------------


def candidate(rt: Runtime, body: Any) -> Stored:
    """The section as it would be saved, validated (ConfigInvalid naming each field), refused while a
    file defines it (ConfigConflict); a masked or empty password takes the stored one."""
    return rt.overrides.prepared_singleton(SECTION, body, rt.provisioned)


def save(rt: Runtime, body: Any, *, test: bool) -> Stored:
    """Save the section, after every configured node answers IN_SERVICE if `test`. Raises TestFailed,
    ConfigInvalid or ConfigConflict; nothing is written unless it returns."""
    found = candidate(rt, body)
    if test:
        result = check_nodes(found.item)
        if not result.ok:
            raise TestFailed(result)
    stored = rt.overrides.save_singleton(SECTION, found.raw, rt.provisioned)
    rt.config_changed()
    return stored


def delete(rt: Runtime) -> None:
    """Remove the section made in the UI or API (NotFound, or ConfigConflict when a file defines it)."""
    rt.overrides.delete_singleton(SECTION, rt.provisioned)
    rt.config_changed()
