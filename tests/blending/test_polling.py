"""The REST polling source against the simulator: the admin account reads User + Dialogs per agent
and events come out only on change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.blending.events import DialogChanged, VoiceStateChanged
from connector.blending.finesse.client import FinesseClient
from connector.blending.finesse.polling import PollingSource
from connector.sandbox.finesse import FinesseSandbox
from tests.blending.finesse_helpers import (
    AGENT,
    AGENT_PASSWORD,
    CHAT_REASON,
    OTHER,
    finesse_config,
    provision,
    running_sandbox,
)
from tests.helpers import wait_for

NOW = 1_790_000_000.0


@pytest.fixture
def sandbox() -> Iterator[FinesseSandbox]:
    with running_sandbox() as sb:
        provision(sb)
        yield sb


@pytest.fixture
def source(sandbox: FinesseSandbox) -> PollingSource:
    client = FinesseClient(finesse_config(sandbox), timeout=(1.0, 2.0))
    return PollingSource(client, lambda: [AGENT, OTHER], lambda _event: None, now=lambda: NOW)


def test_first_round_reports_every_agent_then_silence(sandbox: FinesseSandbox) -> None:
    emitted: list[object] = []
    client = FinesseClient(finesse_config(sandbox))
    source = PollingSource(client, lambda: [AGENT, OTHER], emitted.append, now=lambda: NOW)
    first = source.poll_once()
    assert first == [
        VoiceStateChanged(agent_id=AGENT, state="READY", at=NOW, extension=AGENT),
        VoiceStateChanged(agent_id=OTHER, state="READY", at=NOW, extension=OTHER),
    ]
    assert emitted == first
    assert source.poll_once() == []
    assert emitted == first
    # polled with the admin account: one User and one Dialogs read per agent per round
    received = sandbox.model.requests_to(api_only=True)
    assert {r.user for r in received} == {"admin"}
    assert len(received) == 2 * 2 * 2


def test_state_and_reason_changes(sandbox: FinesseSandbox, source: PollingSource) -> None:
    source.poll_once()
    sandbox.model.change_state(
        sandbox.model.authenticate(AGENT, AGENT_PASSWORD),  # type: ignore[arg-type]  # the agent itself
        AGENT,
        state="NOT_READY",
        reason_code_id=CHAT_REASON,
    )
    assert source.poll_once() == [
        VoiceStateChanged(
            agent_id=AGENT,
            state="NOT_READY",
            reason_code_id=CHAT_REASON,
            reason_label="Handling Chat",
            at=NOW,
            extension=AGENT,
        )
    ]


def test_a_call_from_ring_to_end(sandbox: FinesseSandbox, source: PollingSource) -> None:
    source.poll_once()
    dialog = sandbox.switch.start_call(AGENT, "ACD_IN")
    assert source.poll_once() == [
        VoiceStateChanged(agent_id=AGENT, state="RESERVED", at=NOW, extension=AGENT),
        DialogChanged(agent_id=AGENT, dialog_id=dialog.id, call_type="ACD_IN", state="ALERTING", at=NOW),
    ]
    sandbox.switch.answer(dialog.id)
    sandbox.switch.hold(dialog.id)
    # two changes between polls: polling sees only where they led
    assert source.poll_once() == [
        VoiceStateChanged(agent_id=AGENT, state="HOLD", at=NOW, extension=AGENT),
        DialogChanged(agent_id=AGENT, dialog_id=dialog.id, call_type="ACD_IN", state="HELD", at=NOW),
    ]
    sandbox.switch.retrieve(dialog.id)
    sandbox.switch.end(dialog.id)
    assert source.poll_once() == [
        VoiceStateChanged(agent_id=AGENT, state="READY", at=NOW, extension=AGENT),
        DialogChanged(agent_id=AGENT, dialog_id=dialog.id, call_type="ACD_IN", state="DROPPED", ended=True, at=NOW),
    ]
    assert source.poll_once() == []


def test_consult_leg_is_linked(sandbox: FinesseSandbox, source: PollingSource) -> None:
    original = sandbox.switch.start_call(AGENT, "ACD_IN")
    sandbox.switch.answer(original.id)
    source.poll_once()
    consult = sandbox.switch.start_call(AGENT, "CONSULT", to_address=OTHER)
    events = [e for e in source.poll_once() if isinstance(e, DialogChanged)]
    assert {(e.dialog_id, e.call_type, e.state, e.associated_dialog_id) for e in events} == {
        (original.id, "ACD_IN", "HELD", None),
        (consult.id, "CONSULT", "INITIATED", original.id),
    }


def test_outage_keeps_the_snapshot(sandbox: FinesseSandbox, source: PollingSource) -> None:
    source.poll_once()
    sandbox.node_down("publisher", "out_of_service")
    assert source.poll_once() == []  # 503: the round stops, nothing is invented
    sandbox.node_down("publisher", "refused")
    assert source.poll_once() == []
    sandbox.node_up("publisher")
    assert source.poll_once() == []  # nothing changed meanwhile: nothing replayed
    assert AGENT in source.snapshots


def test_unknown_and_removed_agents(sandbox: FinesseSandbox) -> None:
    client = FinesseClient(finesse_config(sandbox))
    agents = ["9999", AGENT]
    polling = PollingSource(client, lambda: list(agents), lambda _e: None, now=lambda: NOW)
    assert [e.agent_id for e in polling.poll_once()] == [AGENT]  # 9999: NotFound, logged, skipped
    agents.remove(AGENT)
    polling.poll_once()
    assert polling.snapshots == {}
    agents.append(AGENT)
    assert [e.agent_id for e in polling.poll_once()] == [AGENT]  # a returning agent is reported afresh


def test_a_failing_consumer_does_not_stop_the_round(sandbox: FinesseSandbox) -> None:
    client = FinesseClient(finesse_config(sandbox))
    seen: list[str] = []

    def consumer(event: object) -> None:
        seen.append(event.agent_id)  # type: ignore[attr-defined]
        raise RuntimeError("consumer bug")

    PollingSource(client, lambda: [AGENT, OTHER], consumer).poll_once()
    assert seen == [AGENT, OTHER]


def test_runner_polls_until_stopped(sandbox: FinesseSandbox) -> None:
    client = FinesseClient(finesse_config(sandbox))
    events: list[object] = []
    polling = PollingSource(client, lambda: [AGENT], events.append, interval=0.05).start()
    try:
        wait_for(lambda: events, timeout=5, what="the first round")
        sandbox.switch.start_call(AGENT, "OTHER_IN")
        wait_for(lambda: any(isinstance(e, DialogChanged) for e in events), timeout=5, what="the call")
    finally:
        polling.stop()
    assert polling._thread is None
