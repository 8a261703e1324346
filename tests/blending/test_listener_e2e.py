"""The blending tables end to end: the listener against the Finesse simulator over real sockets
(REST and XMPP), real Redis, chat events on their stream. One test per table row."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest

from connector import create_app
from connector.blending.agents import AgentRegistry
from connector.blending.chat_events import publish_chat_assigned, publish_chat_ended
from connector.blending.chat_side import RouterChatSide
from connector.blending.listener import Listener
from connector.blending.machine import Chat
from connector.blending.service import ReasonCodeMissing
from connector.runtime import Runtime
from tests.blending.finesse_helpers import (
    AGENT,
    AGENT_PASSWORD,
    BREAK_REASON,
    CHAT_REASON,
    finesse_config,
    provision,
    running_sandbox,
)
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def sandbox():
    with running_sandbox() as sandbox:
        provision(sandbox)
        yield sandbox


@pytest.fixture
def routing_runtime(settings, redis, sandbox) -> Runtime:
    runtime = Runtime(settings)
    config = finesse_config(sandbox, sync_interval_seconds=1.0, liveness_interval_seconds=0.2)
    runtime._config = replace(runtime.config, finesse=config)
    return runtime


@pytest.fixture
def listener(routing_runtime, sandbox) -> Iterator[Listener]:
    client = create_app(runtime=routing_runtime).test_client()
    answer = client.post("/agent/login", json={"username": AGENT, "password": AGENT_PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    listener = Listener(routing_runtime, routing_runtime.config.finesse).start()
    registry = AgentRegistry(routing_runtime.redis)
    wait_for(lambda: registry.profile(AGENT) is not None, timeout=10, what="agent sync")
    wait_for(lambda: listener.xmpp is not None and listener.xmpp.connected(AGENT), timeout=15, what="XMPP session")
    try:
        yield listener
    finally:
        listener.stop()


def voice(sandbox) -> tuple[str, str | None]:
    agent = sandbox.model.agents[AGENT]
    return agent.state, agent.reason_code_id


def chat(redis) -> Chat:
    return AgentRegistry(redis).state(AGENT).chat


def test_ready_for_both_with_no_task(listener, sandbox, redis):
    wait_for(lambda: voice(sandbox)[0] == "READY" and chat(redis) is Chat.READY, what="READY / READY")
    assert not RouterChatSide(redis).is_interrupted(AGENT)


def test_voice_call_interrupts_chat_and_its_end_restores_it(listener, sandbox, redis):
    dialog = sandbox.switch.start_call(AGENT, "ACD_IN")
    wait_for(lambda: chat(redis) is Chat.INTERRUPTED, what="chat INTERRUPTED on a ringing call")
    assert voice(sandbox)[0] == "RESERVED"
    # The machine records the agent's state, then tells the router (its action, a step later).
    wait_for(lambda: RouterChatSide(redis).is_interrupted(AGENT), what="the router told not to route chats")

    sandbox.switch.answer(dialog.id)
    wait_for(lambda: voice(sandbox)[0] == "TALKING", what="TALKING")
    assert chat(redis) is Chat.INTERRUPTED

    sandbox.switch.end(dialog.id, wrapup="WORK_READY")
    wait_for(lambda: voice(sandbox)[0] == "WORK_READY", what="wrap-up")
    assert chat(redis) is Chat.INTERRUPTED, "wrap-up is still voice work"
    sandbox.model.end_wrapup(AGENT)
    wait_for(lambda: chat(redis) is Chat.READY, what="chat restored after the call")
    assert voice(sandbox)[0] == "READY"
    wait_for(lambda: not RouterChatSide(redis).is_interrupted(AGENT), what="the router told to route chats again")


def test_chat_sets_not_ready_handling_chat_busy_at_max_and_all_chats_ending_restores(listener, sandbox, redis):
    publish_chat_assigned(redis, AGENT, "chat-1")
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), what='Finesse NOT_READY "Handling Chat"')
    wait_for(lambda: chat(redis) is Chat.ACTIVE, what="chat ACTIVE")

    for n in range(2, 6):
        publish_chat_assigned(redis, AGENT, f"chat-{n}")
    wait_for(lambda: chat(redis) is Chat.BUSY, what="chat BUSY at the maximum of 5")

    for n in range(1, 6):
        publish_chat_ended(redis, AGENT, f"chat-{n}")
    wait_for(lambda: voice(sandbox)[0] == "READY" and chat(redis) is Chat.READY, what="READY / READY restored")


@pytest.mark.parametrize("call_type", ["TRANSFER", "CONFERENCE", "CONSULT_OFFERED", "OTHER_IN"])
def test_internal_call_interrupts_an_agent_without_chats(listener, sandbox, redis, call_type):
    sandbox.switch.start_call(AGENT, call_type)
    wait_for(lambda: chat(redis) is Chat.INTERRUPTED, what=f"{call_type} interrupts an agent with no chat")


@pytest.mark.parametrize("call_type", ["TRANSFER", "CONFERENCE", "CONSULT_OFFERED", "OTHER_IN"])
def test_internal_call_does_not_interrupt_an_agent_with_chats(listener, sandbox, redis, call_type):
    publish_chat_assigned(redis, AGENT, "chat-1")
    wait_for(lambda: chat(redis) is Chat.ACTIVE and voice(sandbox)[0] == "NOT_READY", what="chatting")
    dialog = sandbox.switch.start_call(AGENT, call_type)
    wait_for(
        lambda: any(d.id == dialog.id for d in AgentRegistry(redis).state(AGENT).dialogs),
        what="the call is known to blending",
    )
    assert chat(redis) is Chat.ACTIVE, "an agent with a chat is not interrupted by an internal call"


def test_missing_reason_label_is_a_clear_error_at_start(routing_runtime, sandbox):
    config = replace(routing_runtime.config.finesse, not_ready_reason="Chatting Away")
    with pytest.raises(ReasonCodeMissing, match=r'"Chatting Away" is not a NOT_READY reason code.*"Handling Chat"'):
        Listener(routing_runtime, config).start()


def requests_since(sandbox, start: int, *, exclude_probe: bool = True) -> list:
    return [r for r in sandbox.model.requests[start:] if not (exclude_probe and r.path.endswith("/SystemInfo"))]


def test_failover_subscriber_then_back_to_publisher_then_halted_and_reconciled(listener, sandbox, redis):
    failover = listener.failover
    wait_for(lambda: voice(sandbox)[0] == "READY", what="ready")

    sandbox.node_down("publisher", "refused")
    wait_for(lambda: failover.active == sandbox.subscriber_url, what="work through the subscriber")
    mark = len(sandbox.model.requests)
    publish_chat_assigned(redis, AGENT, "chat-1")
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), what="NOT_READY applied through the subscriber")
    puts = [r for r in requests_since(sandbox, mark) if r.method == "PUT"]
    assert puts and all(r.node == "subscriber" for r in puts)

    sandbox.node_up("publisher")
    wait_for(lambda: failover.active == sandbox.publisher_url, what="return to the publisher")

    sandbox.node_down("publisher", "out_of_service")
    sandbox.node_down("subscriber", "out_of_service")
    wait_for(lambda: failover.halted, what="halted with both nodes down")
    mark = len(sandbox.model.requests)
    publish_chat_ended(redis, AGENT, "chat-1")
    wait_for(lambda: chat(redis) is Chat.READY, what="the chat side still follows chat events")
    listener.service.reconcile_all()
    assert requests_since(sandbox, mark) == [], "no Finesse call is attempted while halted"
    assert voice(sandbox)[0] == "NOT_READY", "nothing could be sent yet"

    sandbox.node_up("subscriber")
    wait_for(lambda: voice(sandbox)[0] == "READY", timeout=15, what="READY re-applied after recovery")
    assert failover.active == sandbox.subscriber_url


def test_malformed_and_unknown_notifications_are_survived(listener, sandbox, redis):
    node = f"/finesse/api/User/{AGENT}"
    sandbox.model.inject(node, "<Update><event>PUT</event><data><user><state>READY")  # truncated
    sandbox.model.inject(node, "<Update><event>EXPLODE</event><source>/finesse/api/Nowhere</source><data/></Update>")
    sandbox.model.inject(node, "not xml at all")
    sandbox.switch.start_call(AGENT, "ACD_IN")
    wait_for(lambda: chat(redis) is Chat.INTERRUPTED, what="blending still works after bad notifications")
    assert listener.xmpp.connected(AGENT)


def test_agents_api_lists_states_and_sync_runs_on_demand(listener, routing_runtime, sandbox, redis):
    routing_runtime.settings = replace(routing_runtime.settings, api_token="ops-token")
    client = create_app(runtime=routing_runtime).test_client()
    assert client.get("/api/v1/agents").status_code == 401
    headers = {"Authorization": "Bearer ops-token"}
    wait_for(lambda: voice(sandbox)[0] == "READY", what="ready")
    listed = {a["id"]: a for a in client.get("/api/v1/agents", headers=headers).get_json()["agents"]}
    assert listed[AGENT]["voice_state"] == "READY" and listed[AGENT]["chat_state"] == "READY"
    assert listed[AGENT]["logged_in_to_connector"] is True

    sandbox.model.add_agent("1777", "new-agent-pw", extension="1777", state="NOT_READY", login_name="newbie")
    assert client.post("/api/v1/agents/sync", headers=headers).status_code == 202
    wait_for(lambda: AgentRegistry(redis).agent_id_for_login("newbie") == "1777", timeout=5, what="on-demand sync")

    # Operators' own API tokens work too: a viewer reads, only an editor may ask for a sync.
    from connector.auth.tokens import ApiTokens
    from connector.auth.users import Users

    Users(redis).save("watcher", "viewer", "watcher-password")
    viewer = {"Authorization": f"Bearer {ApiTokens(redis).issue('watcher', 'wallboard')}"}
    assert client.get("/api/v1/agents", headers=viewer).status_code == 200
    assert client.post("/api/v1/agents/sync", headers=viewer).status_code == 403


def test_finesse_refusing_the_change_is_recorded_and_reapplied_on_news(listener, sandbox, redis):
    sandbox.model.refuse_next(AGENT, "Invalid State", "CTI refused the state change")
    publish_chat_assigned(redis, AGENT, "chat-1")
    wait_for(lambda: AgentRegistry(redis).state(AGENT).refused == "NOT_READY", what="the refusal recorded")
    assert chat(redis) is Chat.ACTIVE, "the chat is the agent's; only the voice change was refused"
    assert voice(sandbox)[0] == "READY"
    # News from Finesse (here the agent's own READY again) lets blending ask once more.
    sandbox.model.change_state(sandbox.model.authenticate(AGENT, AGENT_PASSWORD), AGENT, state="READY")
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), what="NOT_READY applied after news")


def test_agent_not_ready_themself_while_chatting_is_not_undone(listener, sandbox, redis):
    publish_chat_assigned(redis, AGENT, "chat-1")
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), what="Handling Chat")
    sandbox.model.change_state(
        sandbox.model.authenticate(AGENT, AGENT_PASSWORD), AGENT, state="NOT_READY", reason_code_id=BREAK_REASON
    )
    wait_for(lambda: not AgentRegistry(redis).state(AGENT).voice_hold, what="the agent owns the NOT_READY now")
    publish_chat_ended(redis, AGENT, "chat-1")
    wait_for(lambda: chat(redis) is Chat.READY, what="chat READY")
    listener.service.reconcile_all()
    assert voice(sandbox) == ("NOT_READY", BREAK_REASON), "the agent's break is not turned into READY"


def test_agent_login_is_verified_against_finesse_held_encrypted_and_locked_out(routing_runtime, sandbox, redis):
    from connector.blending.finesse.credentials import CredentialStore
    from connector.store import keys

    client = create_app(runtime=routing_runtime).test_client()
    wrong = {"username": AGENT, "password": "not-it"}
    assert client.post("/agent/login", json=wrong).status_code == 401
    assert CredentialStore(redis, routing_runtime.settings.secret_key).get(AGENT) is None

    answer = client.post("/agent/login", json={"username": AGENT, "password": AGENT_PASSWORD})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["agent_id"] == AGENT and body["token"] and body["expires_at"], "the agent API's login answer"
    stored = redis.hget(keys.agent_credentials(), AGENT)
    assert stored and AGENT_PASSWORD.encode() not in stored, "never stored in clear"
    assert CredentialStore(redis, routing_runtime.settings.secret_key).get(AGENT) == (AGENT, AGENT_PASSWORD)

    for _ in range(5):
        client.post("/agent/login", json=wrong)
    locked = client.post("/agent/login", json={"username": AGENT, "password": AGENT_PASSWORD})
    assert locked.status_code == 429, "five failures lock the login out for a while"


# -- the XMPP transport ----------------------------------------------------------------------------


def test_the_listener_logs_agents_in_over_starttls_by_default(listener, routing_runtime, sandbox):
    assert routing_runtime.config.finesse.xmpp_tls == "starttls"
    assert routing_runtime.config.finesse.ca_bundle == str(sandbox.xmpp_ca_file)  # verification stays on
    sessions = [list(c.steps) for c in sandbox.xmpp.connections]
    assert sessions and all(s[:5] == ["tcp", "starttls", "tls", "auth", "authenticated"] for s in sessions), sessions


def test_plain_tcp_only_when_configured_and_warned_at_every_start(settings, redis, caplog):
    """`xmpp_tls: false`: the listener warns at every start, before any agent has a session, and the
    sessions are plain TCP."""
    caplog.set_level(logging.INFO, "connector")
    with running_sandbox(xmpp_tls="plain") as sandbox:
        provision(sandbox)
        runtime = Runtime(settings)
        config = finesse_config(sandbox, xmpp_tls="plain", sync_interval_seconds=1.0, liveness_interval_seconds=0.2)
        runtime._config = replace(runtime.config, finesse=config)
        for start in (1, 2):
            listener = Listener(runtime, config).start()
            try:
                warned = [r for r in caplog.records if r.levelno == logging.WARNING and "plain TCP" in r.getMessage()]
                assert len(warned) == start, "one WARNING per start, before any session"
                assert "finesse.xmpp_tls: false" in warned[-1].getMessage()
                if start == 1:
                    login = {"username": AGENT, "password": AGENT_PASSWORD}
                    assert create_app(runtime=runtime).test_client().post("/agent/login", json=login).status_code == 200
                xmpp = listener.xmpp
                assert xmpp is not None
                wait_for(lambda: xmpp.connected(AGENT), timeout=15, what="the agent's XMPP session")  # noqa: B023
            finally:
                listener.stop()
        sessions = [list(c.steps) for c in sandbox.xmpp.connections]
        assert len(sessions) >= 2 and all(s[0] == "tcp" and "tls" not in s for s in sessions), sessions
