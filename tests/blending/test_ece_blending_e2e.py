"""Blending with ECE end to end: a real listener, the Finesse simulator over real sockets (REST and
XMPP), real Redis, and chat events on their stream as the relay writes them for an ECE integration
(tests/blending/test_relay_chat_agents.py shows the relay writing them).

ECE's chat MRD is found by name at start (`finesse.chat_mrd_name`, Finesse's media list); a voice
call sets it NOT_READY through Finesse's Media API and the call's end sets it READY again, beside
the built-in router's flag; the agent's own choice on the MRD is their chat readiness, which a call
does not override; ECE's agents are mapped to Finesse logins (`ece_agent_field`, `ece_agents`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from connector import create_app, logs
from connector.blending.agents import AgentRegistry
from connector.blending.chat_events import ChatAgent, publish_chat_assigned, publish_chat_ended
from connector.blending.chat_side import RouterChatSide
from connector.blending.listener import Listener
from connector.blending.machine import Chat
from connector.runtime import Runtime
from connector.sandbox.finesse.model import RequestRecord
from tests.blending.finesse_helpers import (
    AGENT,
    AGENT_PASSWORD,
    BREAK_REASON,
    CHAT_MRD,
    CHAT_REASON,
    finesse_config,
    provision,
    running_sandbox,
)
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

LOGIN = "ada"  # the agent's Finesse login
MEDIA = f"/finesse/api/User/{AGENT}/Media/{CHAT_MRD}"


@pytest.fixture(autouse=True)
def json_logs() -> None:
    """The app's first start puts its JSON handler on the root logger in place of the handlers there,
    caplog's among them: put it there before the test, so caplog sees the listener's records."""
    logs.configure()


@pytest.fixture
def sandbox():
    with running_sandbox() as sandbox:
        provision(sandbox)  # the agent's chat MRD is CHAT_MRD, named "Chat", READY like the agent
        sandbox.model.agents[AGENT].login_name = LOGIN
        yield sandbox


def ece_runtime(settings, sandbox, **finesse: object) -> Runtime:
    """The test configuration with its integration an ECE one, and a finesse: section that names ECE's
    chat MRD (as check-config requires with ECE)."""
    runtime = Runtime(settings)
    section = {"chat_mrd_name": "Chat", "sync_interval_seconds": 1.0, "liveness_interval_seconds": 0.2, **finesse}
    base = runtime.config
    runtime._config = replace(
        base,
        finesse=finesse_config(sandbox, **section),
        integrations=tuple(replace(i, type="ece") for i in base.integrations),
    )
    return runtime


@contextmanager
def running_listener(runtime: Runtime) -> Iterator[Listener]:
    login = {"username": AGENT, "password": AGENT_PASSWORD}
    answer = create_app(runtime=runtime).test_client().post("/agent/login", json=login)
    assert answer.status_code == 200, answer.get_json()
    assert runtime.config.finesse is not None
    listener = Listener(runtime, runtime.config.finesse).start()
    try:
        registry = AgentRegistry(runtime.redis)
        wait_for(lambda: registry.agent_id_for_login(LOGIN) == AGENT, timeout=10, what="agent sync")
        wait_for(lambda: listener.xmpp is not None and listener.xmpp.connected(AGENT), timeout=15, what="XMPP")
        yield listener
    finally:
        listener.stop()


def voice(sandbox) -> tuple[str, str | None]:
    agent = sandbox.model.agents[AGENT]
    return agent.state, agent.reason_code_id


def mrd(sandbox) -> tuple[str, str | None]:
    media = sandbox.model.agents[AGENT].media[CHAT_MRD]
    return media.state, media.reason_code_id


def chat(redis) -> Chat:
    return AgentRegistry(redis).state(AGENT).chat


def media_puts(sandbox, since: int) -> list[RequestRecord]:
    return [r for r in sandbox.model.requests[since:] if r.method == "PUT" and r.path == MEDIA]


def failures(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "blending event failed" in r.getMessage()]


MAPPINGS = [
    ("ECE's name is the Finesse login", "name", {}, ChatAgent("e-17", "Ada", "ece")),
    ("the table maps ECE's name", "name", {"Ada Lovelace": LOGIN}, ChatAgent("e-17", "Ada Lovelace", "ece")),
    ("ece_agent_field: id and the table", "id", {"e-17": LOGIN}, ChatAgent("e-17", "A. Lovelace", "ece")),
]


@pytest.mark.parametrize(("field", "table", "ece_agent"), [m[1:] for m in MAPPINGS], ids=[m[0] for m in MAPPINGS])
def test_ece_assigned_sets_voice_not_ready_and_complete_restores_ready(
    settings, redis, sandbox, caplog, field, table, ece_agent
):
    caplog.set_level(logging.WARNING, "connector.blending")
    runtime = ece_runtime(settings, sandbox, ece_agent_field=field, ece_agents=table)
    with running_listener(runtime):
        wait_for(lambda: voice(sandbox) == ("READY", None) and chat(redis) is Chat.READY, what="READY / READY")
        stranger = ChatAgent("e-99", "Zed", "ece")
        publish_chat_assigned(redis, stranger, "conv-0")  # no Finesse agent: warned, not blended
        publish_chat_assigned(redis, ece_agent, "conv-1")  # as the relay writes ECE's `assigned`
        wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), what='Finesse NOT_READY "Handling Chat"')
        assert chat(redis) is Chat.ACTIVE
        assert set(AgentRegistry(redis).ids()) == {"1001", "1002", "2001"}, "no agent made up for the stranger"
        assert any("no synced Finesse agent matches" in r.getMessage() for r in caplog.records)

        publish_chat_ended(redis, ece_agent, "conv-1")  # ECE's `complete`
        wait_for(lambda: voice(sandbox) == ("READY", None) and chat(redis) is Chat.READY, what="READY restored")
    assert failures(caplog) == []


def test_a_voice_call_sets_eces_chat_mrd_not_ready_and_its_end_ready(settings, redis, sandbox, caplog):
    caplog.set_level(logging.INFO, "connector.blending")
    with running_listener(ece_runtime(settings, sandbox)) as listener:
        assert listener.service is not None and listener.service.chat_mrd_id == CHAT_MRD, "found by name"
        wait_for(lambda: chat(redis) is Chat.READY and mrd(sandbox) == ("READY", None), what="ready for chat")
        mark = len(sandbox.model.requests)

        dialog = sandbox.switch.start_call(AGENT, "ACD_IN")  # Finesse interrupts the MRD; the connector holds it
        wait_for(lambda: mrd(sandbox) == ("NOT_READY", CHAT_REASON), what="the connector's NOT_READY on the MRD")
        assert chat(redis) is Chat.INTERRUPTED
        assert RouterChatSide(redis).is_interrupted(AGENT), "and the built-in router's flag"
        sandbox.switch.answer(dialog.id)
        sandbox.switch.end(dialog.id)

        wait_for(lambda: mrd(sandbox) == ("READY", None), what="the MRD READY after the call")
        wait_for(lambda: chat(redis) is Chat.READY, what="chat READY")
        assert not RouterChatSide(redis).is_interrupted(AGENT)
        puts = media_puts(sandbox, mark)
        assert [p.status for p in puts] == [202, 202]
        assert all((p.request_id or "").startswith(f"cc-{AGENT}-") for p in puts), "the connector's requests"
        assert all(p.user == AGENT for p in puts), "with the agent's own credentials"
    assert failures(caplog) == [], "Media notifications (INTERRUPTED, the connector's own) reach no blend()"


def test_the_agents_own_chat_mrd_not_ready_is_respected(settings, redis, sandbox, caplog):
    caplog.set_level(logging.INFO, "connector.blending")
    with running_listener(ece_runtime(settings, sandbox)) as listener:
        wait_for(lambda: chat(redis) is Chat.READY, what="chat READY")
        agent = sandbox.model.authenticate(AGENT, AGENT_PASSWORD)
        sandbox.model.change_media_state(
            agent, AGENT, CHAT_MRD, state="NOT_READY", reason_code_id=BREAK_REASON, request_id="desktop-1"
        )
        wait_for(lambda: chat(redis) is Chat.NOT_READY, what="the agent's MRD NOT_READY is their chat readiness")
        mark = len(sandbox.model.requests)

        dialog = sandbox.switch.start_call(AGENT, "ACD_IN")
        wait_for(lambda: AgentRegistry(redis).state(AGENT).dialogs, what="the call known to blending")
        assert chat(redis) is Chat.NOT_READY, "a call does not override the agent's choice"
        sandbox.switch.answer(dialog.id)
        sandbox.switch.end(dialog.id)
        wait_for(lambda: not AgentRegistry(redis).state(AGENT).dialogs, what="the call's end known to blending")
        assert listener.service is not None
        listener.service.reconcile_all()
        assert media_puts(sandbox, mark) == [], "the connector neither holds nor restores the MRD"
        assert mrd(sandbox) == ("NOT_READY", BREAK_REASON)

        sandbox.model.change_media_state(agent, AGENT, CHAT_MRD, state="READY", request_id="desktop-2")
        wait_for(lambda: chat(redis) is Chat.READY, what="the agent's MRD READY again")
    assert failures(caplog) == []


def test_a_chat_mrd_name_finesse_does_not_list_is_an_error_and_blending_goes_on(settings, redis, sandbox, caplog):
    caplog.set_level(logging.INFO, "connector.blending")
    with running_listener(ece_runtime(settings, sandbox, chat_mrd_name="Email")) as listener:
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any('finesse.chat_mrd_name "Email"' in e and f'"Chat" (id {CHAT_MRD})' in e for e in errors), errors
        assert listener.service is not None and listener.service.chat_mrd_id is None
        mark = len(sandbox.model.requests)
        sandbox.switch.start_call(AGENT, "ACD_IN")
        wait_for(lambda: chat(redis) is Chat.INTERRUPTED, what="blending runs: chat INTERRUPTED")
        # The router's side is told after the state is written: wait for it, do not race it.
        wait_for(lambda: RouterChatSide(redis).is_interrupted(AGENT), what="the router told of the interruption")
        assert media_puts(sandbox, mark) == []
