"""Finesse failover as the reference states it, against the simulator over real HTTP:
publisher down → subscriber; publisher back → publisher; both down → halted, no request reaches
either node; a node back → on_recovered. Plus the decision table with a scripted probe."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from connector.blending.finesse.client import FinesseClient, FinesseUnavailable, SystemInfo
from connector.blending.finesse.failover import Failover
from connector.sandbox.finesse import FinesseSandbox
from tests.blending.finesse_helpers import (
    AGENT,
    AGENT_PASSWORD,
    CHAT_REASON,
    finesse_config,
    provision,
    running_sandbox,
)
from tests.helpers import wait_for


@pytest.fixture
def sandbox() -> Iterator[FinesseSandbox]:
    with running_sandbox() as sb:
        provision(sb)
        yield sb


class Recorder:
    def __init__(self) -> None:
        self.recovered: list[str] = []
        self.switched: list[str | None] = []


@pytest.fixture
def wired(sandbox: FinesseSandbox) -> tuple[FinesseClient, Failover, Recorder]:
    config = finesse_config(sandbox)
    # Agents change their own state (the administrator may not): the client holds AGENT's login.
    client = FinesseClient(
        config,
        credentials=lambda agent: (AGENT, AGENT_PASSWORD) if agent == AGENT else None,
        probe_timeout=1.0,
        timeout=(1.0, 2.0),
    )
    seen = Recorder()
    failover = Failover.for_client(client, config, on_recovered=seen.recovered.append, on_switched=seen.switched.append)
    return client, failover, seen


def api_requests(sandbox: FinesseSandbox, node: str) -> int:
    """Finesse API requests a node received, liveness probes (SystemInfo) left out."""
    return len(sandbox.model.requests_to(node, api_only=True))


@pytest.mark.parametrize("mode", ["refused", "out_of_service"])
def test_publisher_down_then_back(
    sandbox: FinesseSandbox, wired: tuple[FinesseClient, Failover, Recorder], mode: str
) -> None:
    client, failover, seen = wired
    assert failover.check_once() == sandbox.publisher_url
    client.get_user(AGENT)
    assert (api_requests(sandbox, "publisher"), api_requests(sandbox, "subscriber")) == (1, 0)

    sandbox.node_down("publisher", mode)
    assert failover.check_once() == sandbox.subscriber_url
    client.set_state(AGENT, "NOT_READY", reason_code_id=CHAT_REASON)
    assert (api_requests(sandbox, "publisher"), api_requests(sandbox, "subscriber")) == (1, 1)
    assert failover.up == {sandbox.publisher_url: False, sandbox.subscriber_url: True}

    failover.check_once()  # still down: the publisher keeps being polled
    probes = [r for r in sandbox.model.requests_to("publisher") if r.path.endswith("/SystemInfo")]
    assert len(probes) == (0 if mode == "refused" else 2) + 1  # refused probes never arrive

    sandbox.node_up("publisher")
    assert failover.check_once() == sandbox.publisher_url
    assert client.get_user(AGENT).state == "NOT_READY"  # one model behind both nodes
    assert (api_requests(sandbox, "publisher"), api_requests(sandbox, "subscriber")) == (2, 1)
    assert seen.switched == [sandbox.subscriber_url, sandbox.publisher_url]
    assert seen.recovered == []  # never halted


@pytest.mark.parametrize("mode", ["refused", "out_of_service"])
def test_both_down_halts_without_touching_finesse_then_recovers(
    sandbox: FinesseSandbox, wired: tuple[FinesseClient, Failover, Recorder], mode: str
) -> None:
    client, failover, seen = wired
    failover.check_once()
    sandbox.model.requests.clear()
    sandbox.node_down("publisher", mode)
    sandbox.node_down("subscriber", mode)
    assert failover.check_once() is None
    assert failover.halted and failover.active is None

    for call in (
        lambda: client.get_user(AGENT),
        lambda: client.set_state(AGENT, "READY"),
        lambda: client.dialogs(AGENT),
        lambda: client.reason_codes(AGENT),
        lambda: client.users(),
        lambda: client.set_media_state(AGENT, "5000", "READY"),
    ):
        with pytest.raises(FinesseUnavailable) as caught:
            call()
        assert caught.value.error_type == "Halted"
    assert api_requests(sandbox, "publisher") == api_requests(sandbox, "subscriber") == 0
    if mode == "refused":
        assert sandbox.model.requests == []  # not even a probe got through
    assert seen.recovered == []

    sandbox.node_up("subscriber")
    assert failover.check_once() == sandbox.subscriber_url
    assert seen.recovered == [sandbox.subscriber_url]
    assert seen.switched == [None, sandbox.subscriber_url]
    assert client.get_user(AGENT).id == AGENT

    failover.check_once()  # staying up is not a new recovery
    assert seen.recovered == [sandbox.subscriber_url]


def test_partial_service_counts_as_down(
    sandbox: FinesseSandbox, wired: tuple[FinesseClient, Failover, Recorder]
) -> None:
    _client, failover, _seen = wired
    sandbox.model.set_status("publisher", "PARTIAL_SERVICE", "CTI down")
    assert failover.check_once() == sandbox.subscriber_url


def test_runner_follows_the_nodes(sandbox: FinesseSandbox, wired: tuple[FinesseClient, Failover, Recorder]) -> None:
    client, failover, seen = wired
    failover.start()
    try:
        assert failover.active == sandbox.publisher_url  # start() checks before returning
        sandbox.node_down("publisher")
        sandbox.node_down("subscriber")
        wait_for(lambda: failover.halted, timeout=5, what="halt")
        sandbox.node_up("publisher")
        wait_for(lambda: seen.recovered == [sandbox.publisher_url], timeout=5, what="recovery callback")
        assert client.get_user(AGENT).id == AGENT
    finally:
        failover.stop()
    assert failover._thread is None


# -- the decision, with a scripted probe ----------------------------------------------------------

PUB, SUB = "https://a:8445", "https://b:8445"


class ScriptedProbe:
    def __init__(self) -> None:
        self.status: dict[str, str | Exception] = {PUB: "IN_SERVICE", SUB: "IN_SERVICE"}
        self.calls: list[str] = []

    def __call__(self, node: str) -> SystemInfo:
        self.calls.append(node)
        status = self.status[node]
        if isinstance(status, Exception):
            raise status
        return SystemInfo(status=status)


@pytest.mark.parametrize(
    ("publisher", "subscriber", "active"),
    [
        ("IN_SERVICE", "IN_SERVICE", PUB),
        ("IN_SERVICE", FinesseUnavailable("refused"), PUB),
        ("OUT_OF_SERVICE", "IN_SERVICE", SUB),
        (FinesseUnavailable("refused"), "IN_SERVICE", SUB),
        ("PARTIAL_SERVICE", "IN_SERVICE", SUB),
        ("OUT_OF_SERVICE", "OUT_OF_SERVICE", None),
        (FinesseUnavailable("refused"), FinesseUnavailable("timeout"), None),
        (RuntimeError("bug in a probe"), "IN_SERVICE", SUB),  # a broken probe is a down node, not a dead thread
    ],
)
def test_decision_table(publisher: str | Exception, subscriber: str | Exception, active: str | None) -> None:
    probe = ScriptedProbe()
    probe.status = {PUB: publisher, SUB: subscriber}
    failover = Failover(PUB, SUB, probe)
    assert failover.check_once() == active
    assert probe.calls == [PUB, SUB]  # both nodes are polled every round
    if active is None:
        with pytest.raises(FinesseUnavailable):
            failover.active_node()
    else:
        assert failover.active_node() == active


def test_single_node_deployment() -> None:
    probe = ScriptedProbe()
    failover = Failover(PUB, None, probe)
    assert failover.check_once() == PUB
    probe.status[PUB] = "OUT_OF_SERVICE"
    assert failover.check_once() is None
    assert probe.calls == [PUB, PUB]


def test_a_failing_callback_does_not_stop_the_failover() -> None:
    probe = ScriptedProbe()

    def explode(_node: str | None) -> None:
        raise RuntimeError("listener bug")

    failover = Failover(PUB, SUB, probe, on_switched=explode, on_recovered=explode)
    probe.status = {PUB: "OUT_OF_SERVICE", SUB: "OUT_OF_SERVICE"}
    assert failover.check_once() is None
    probe.status[SUB] = "IN_SERVICE"
    assert failover.check_once() == SUB


def test_a_node_reporting_another_deployment_type_is_an_error_named_once(caplog) -> None:
    def probe(node: str) -> SystemInfo:
        return SystemInfo(status="IN_SERVICE", deployment_type="UCCX")

    failover = Failover(PUB, SUB, probe, deployment="ucce")
    with caplog.at_level(logging.ERROR, logger="connector.blending.finesse.failover"):
        failover.check_once()
        failover.check_once()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"finesse.deployment is ucce but node {PUB} reports deploymentType UCCX: set deployment: uccx",
        f"finesse.deployment is ucce but node {SUB} reports deploymentType UCCX: set deployment: uccx",
    ]
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="connector.blending.finesse.failover"):
        Failover(PUB, None, probe, deployment="uccx").check_once()
    assert not [r for r in caplog.records if r.levelno == logging.ERROR], "the right type: nothing to say"
