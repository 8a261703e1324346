"""XMPP notifications end to end: the unmodified slixmpp client logged in as the agent against the
simulator's notification service (STARTTLS, its certificate trusted, as by default), scripted calls
in, blending events out; reconnects, pings, failover moves, and passwords kept out of the logs. The
transport's security (STARTTLS, direct TLS, refusals, plain TCP) is in test_xmpp_tls.py."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Iterator

import pytest
import slixmpp
from slixmpp.exceptions import IqError

from connector.blending.events import DialogChanged, FinesseRefused, VoiceStateChanged
from connector.blending.finesse.client import FinesseClient
from connector.blending.finesse.failover import Failover
from connector.blending.finesse.xmpp import (
    XmppEndpoint,
    XmppNotifications,
    _RedactSasl,
    backoff_delay,
    endpoint_provider,
)
from connector.sandbox.finesse import FinesseSandbox
from tests.blending.finesse_helpers import (
    AGENT,
    AGENT_PASSWORD,
    CHAT_REASON,
    OTHER,
    OTHER_PASSWORD,
    finesse_config,
    provision,
    running_sandbox,
)
from tests.blending.xmpp_helpers import Listener, connected, endpoint_of, listen, listeners
from tests.helpers import wait_for

__all__ = ["listeners"]  # the fixture


@pytest.fixture
def sandbox() -> Iterator[FinesseSandbox]:
    with running_sandbox() as sb:
        provision(sb)
        yield sb


# -- events ---------------------------------------------------------------------------------------


def test_routed_call_becomes_dialog_and_voice_events(sandbox: FinesseSandbox, listeners: list[Listener]) -> None:
    listener = listen(listeners, endpoint_of(sandbox))
    listener.source.add_agent(AGENT, AGENT_PASSWORD, extension=AGENT)
    connected(listener)
    bare = f"{AGENT}@{sandbox.xmpp_domain}"
    assert bare in sandbox.xmpp.subscriptions[f"/finesse/api/User/{AGENT}"]
    assert bare in sandbox.xmpp.subscriptions[f"/finesse/api/User/{AGENT}/Dialogs"]

    dialog = sandbox.switch.start_call(AGENT, "PREROUTE_ACD_IN")
    sandbox.switch.answer(dialog.id)
    sandbox.switch.end(dialog.id, wrapup="WORK_READY")
    sandbox.model.end_wrapup(AGENT)
    expected = [
        ("PREROUTE_ACD_IN", "ALERTING", False),
        ("voice", "RESERVED", False),
        ("PREROUTE_ACD_IN", "ACTIVE", False),
        ("voice", "TALKING", False),
        ("PREROUTE_ACD_IN", "DROPPED", True),
        ("PREROUTE_ACD_IN", "DROPPED", True),
        ("voice", "WORK_READY", False),
        ("voice", "READY", False),
    ]
    wait_for(lambda: len(listener.events) >= len(expected), timeout=5, what="the call's events")
    assert listener.kinds() == expected
    assert {e.agent_id for e in listener.events} == {AGENT}
    assert {e.dialog_id for e in listener.events if isinstance(e, DialogChanged)} == {dialog.id}


def test_consult_leg_carries_the_held_call(sandbox: FinesseSandbox, listeners: list[Listener]) -> None:
    listener = listen(listeners, endpoint_of(sandbox))
    listener.source.add_agent(AGENT, AGENT_PASSWORD)  # extension learnt from the first User update
    connected(listener)
    original = sandbox.switch.start_call(AGENT, "ACD_IN")
    sandbox.switch.answer(original.id)
    consult = sandbox.switch.start_call(AGENT, "CONSULT", to_address=OTHER)
    wait_for(
        lambda: any(isinstance(e, DialogChanged) and e.call_type == "CONSULT" for e in listener.events),
        timeout=5,
        what="consult dialog",
    )
    held = [e for e in listener.events if isinstance(e, DialogChanged) and e.dialog_id == original.id][-1]
    leg = next(e for e in listener.events if isinstance(e, DialogChanged) and e.dialog_id == consult.id)
    assert held.state == "HELD"
    assert (leg.state, leg.associated_dialog_id) == ("INITIATED", original.id)


def test_request_id_and_asynchronous_refusal(sandbox: FinesseSandbox, listeners: list[Listener]) -> None:
    listener = listen(listeners, endpoint_of(sandbox))
    listener.source.add_agent(AGENT, AGENT_PASSWORD)
    connected(listener)
    client = FinesseClient(finesse_config(sandbox), credentials={AGENT: (AGENT, AGENT_PASSWORD)}.get)
    client.set_state(AGENT, "NOT_READY", reason_code_id=CHAT_REASON, request_id="cc-1001-1")
    sandbox.model.refuse_next(AGENT, "Invalid State", "CF_INVALID_AGENT_STATE_TRANSITION")
    client.set_state(AGENT, "READY", request_id="cc-1001-2")
    wait_for(lambda: len(listener.events) >= 2, timeout=5, what="state change and refusal")
    voice, refused = listener.events[:2]
    assert isinstance(voice, VoiceStateChanged)
    assert (voice.state, voice.reason_code_id, voice.reason_label, voice.request_id) == (
        "NOT_READY",
        CHAT_REASON,
        "Handling Chat",
        "cc-1001-1",
    )
    assert isinstance(refused, FinesseRefused)
    assert (refused.agent_id, refused.error_type, refused.request_id) == (AGENT, "Invalid State", "cc-1001-2")


def test_an_agent_gets_only_its_own_events(sandbox: FinesseSandbox, listeners: list[Listener]) -> None:
    listener = listen(listeners, endpoint_of(sandbox))
    listener.source.add_agent(AGENT, AGENT_PASSWORD)
    listener.source.add_agent(OTHER, OTHER_PASSWORD)
    connected(listener, AGENT)
    connected(listener, OTHER)
    sandbox.switch.start_call(OTHER, "OTHER_IN")
    wait_for(lambda: listener.events, timeout=5, what="the other agent's event")
    listener.source.remove_agent(OTHER)
    sandbox.switch.start_call(AGENT, "OTHER_IN")
    wait_for(lambda: any(e.agent_id == AGENT for e in listener.events), timeout=5, what="the agent's event")
    assert [e.agent_id for e in listener.events] == [OTHER, AGENT]
    assert sandbox.xmpp.connected(OTHER) == []


# -- failures and recovery ------------------------------------------------------------------------


def test_wrong_password_never_connects_and_is_not_logged(
    sandbox: FinesseSandbox, listeners: list[Listener], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "not-the-password-42"
    with caplog.at_level(logging.DEBUG):
        listener = listen(listeners, endpoint_of(sandbox))
        listener.source.add_agent(AGENT, wrong)
        wait_for(lambda: caplog.text.count("authentication failed") >= 2, timeout=5, what="two refused logins")
        listener.source.remove_agent(AGENT)
    assert not listener.source.connected(AGENT)
    assert sandbox.xmpp.connected() == []
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "SEND:" in text  # slixmpp's wire trace is there, redacted
    for secret in (wrong, base64.b64encode(f"\x00{AGENT}\x00{wrong}".encode()).decode()):
        assert secret not in text


def test_reconnects_after_the_server_drops_the_stream(sandbox: FinesseSandbox, listeners: list[Listener]) -> None:
    listener = listen(listeners, endpoint_of(sandbox))
    listener.source.add_agent(AGENT, AGENT_PASSWORD)
    connected(listener)
    session = listener.source.sessions[AGENT]
    sandbox.xmpp.disconnect_all()
    wait_for(lambda: session.sessions_started == 2 and session.connected, timeout=5, what="reconnect")
    assert len(sandbox.xmpp.connected(AGENT)) == 1  # one session at a time, never two
    sandbox.switch.start_call(AGENT, "OTHER_IN")
    wait_for(lambda: listener.events, timeout=5, what="events after the reconnect")


def test_pings_and_reconnects_when_a_ping_goes_unanswered(sandbox: FinesseSandbox, listeners: list[Listener]) -> None:
    listener = listen(listeners, endpoint_of(sandbox), ping_interval=0.1, ping_timeout=0.3)
    listener.source.add_agent(AGENT, AGENT_PASSWORD)
    connected(listener)
    wait_for(lambda: sandbox.xmpp.pings >= 2, timeout=5, what="two keep-alive pings")
    session = listener.source.sessions[AGENT]
    sandbox.xmpp.answer_pings = False  # the TCP stream stays up, the server hangs
    wait_for(lambda: session.sessions_started >= 2, timeout=5, what="reconnect after an unanswered ping")
    sandbox.xmpp.answer_pings = True
    connected(listener)


def test_default_ping_interval_is_20_seconds() -> None:
    assert XmppNotifications(lambda: None, print).settings["ping_interval"] == 20.0


def test_reconnect_all_moves_now_to_the_current_endpoint(sandbox: FinesseSandbox, listeners: list[Listener]) -> None:
    good = endpoint_of(sandbox)
    current: list[XmppEndpoint | None] = [None]  # halted: no node in service
    # A long backoff: only reconnect_all() can make this connect within the test's timeout.
    listener = listen(listeners, lambda: current[0], backoff_initial=60.0, backoff_max=60.0)
    listener.source.add_agent(AGENT, AGENT_PASSWORD)
    current[0] = good
    listener.source.reconnect_all()
    connected(listener)
    session = listener.source.sessions[AGENT]
    listener.source.reconnect_all()  # e.g. failover back to the publisher: a fresh session
    wait_for(lambda: session.sessions_started == 2 and session.connected, timeout=5, what="move")


def test_connection_refused_backs_off_then_connects(sandbox: FinesseSandbox, listeners: list[Listener]) -> None:
    closed_port = sandbox.nodes["publisher"].port
    sandbox.node_down("publisher")  # its port is closed now: connection refused
    current = [endpoint_of(sandbox, port=closed_port)]
    listener = listen(listeners, lambda: current[0])
    listener.source.add_agent(AGENT, AGENT_PASSWORD)
    session = listener.source.sessions[AGENT]
    wait_for(lambda: session.failures >= 3, timeout=5, what="three refused attempts")
    assert not session.connected
    current[0] = endpoint_of(sandbox)
    connected(listener)  # the backoff retries on its own
    assert session.failures == 0


def test_endpoint_follows_the_failover(sandbox: FinesseSandbox) -> None:
    config = finesse_config(sandbox)
    client = FinesseClient(config, probe_timeout=1.0)
    failover = Failover.for_client(client, config)
    provider = endpoint_provider(config, client)
    failover.check_once()
    endpoint = provider()
    assert endpoint == XmppEndpoint(
        host="127.0.0.1",
        port=sandbox.xmpp_port,
        domain=sandbox.xmpp_domain,
        pubsub=f"pubsub.{sandbox.xmpp_domain}",
        tls="starttls",
        ca_bundle=str(sandbox.xmpp_ca_file),
    )
    sandbox.node_down("publisher")
    sandbox.node_down("subscriber")
    failover.check_once()
    assert provider() is None


# -- the simulator's XMPP service with slixmpp used directly -------------------------------------


def test_simulator_refuses_subscriptions_to_another_agents_nodes(sandbox: FinesseSandbox) -> None:
    async def scenario() -> tuple[str, str]:
        context = ssl.create_default_context(cafile=str(sandbox.xmpp_ca_file))
        client = slixmpp.ClientXMPP(f"{AGENT}@{sandbox.xmpp_domain}/probe", AGENT_PASSWORD, ssl_context=context)
        client.enable_direct_tls = client.enable_plaintext = False  # STARTTLS, slixmpp's own defaults otherwise
        client.register_plugin("xep_0060")
        client.register_plugin("xep_0199")
        started = asyncio.Event()
        client.add_event_handler("session_start", lambda _e: started.set())
        client.connect(sandbox.xmpp_host, sandbox.xmpp_port)
        await asyncio.wait_for(started.wait(), 5)
        pubsub = f"pubsub.{sandbox.xmpp_domain}"
        own = await client.plugin["xep_0060"].subscribe(pubsub, f"/finesse/api/User/{AGENT}", timeout=5)
        try:
            await client.plugin["xep_0060"].subscribe(pubsub, f"/finesse/api/User/{OTHER}", timeout=5)
            other = "subscribed"
        except IqError as exc:
            other = exc.iq["error"]["condition"]
        await client.plugin["xep_0199"].ping(timeout=5)
        client.disconnect()
        return own["pubsub"]["subscription"]["subscription"], other

    assert asyncio.run(asyncio.wait_for(scenario(), 15)) == ("subscribed", "forbidden")


# -- pieces ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("failures", [0, 1, 3, 10, 50])
def test_backoff_is_exponential_jittered_and_capped(failures: int) -> None:
    ceiling = min(60.0, 1.0 * 2**failures)
    delays = [backoff_delay(failures, 1.0, 60.0) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len(set(delays)) > 1  # jittered


def test_sasl_payloads_are_redacted_in_slixmpp_traces() -> None:
    secret = base64.b64encode(b"\x001001\x00hunter2").decode()
    record = logging.LogRecord(
        "slixmpp.xmlstream.xmlstream",
        logging.DEBUG,
        __file__,
        1,
        "SEND: %s",
        (f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{secret}</auth>",),
        None,
    )
    assert _RedactSasl().filter(record)
    assert secret not in record.getMessage()
    assert "[redacted]" in record.getMessage()
