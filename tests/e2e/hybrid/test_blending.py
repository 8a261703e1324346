"""Media blending with Hybrid Chat end to end: the Finesse simulator (REST and XMPP over real sockets),
a real listener (as tests/blending/test_ece_blending_e2e.py runs it), the connector's web app, a real
worker, and a Finesse agent at the agent API over HTTP.

A voice call holds the agent from chat offers (their stream hears INTERRUPTED) and its end lets them
resume; a chat they accept sets their Finesse voice state NOT_READY with the configured reason, and
their last chat's end sets it READY again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from connector.blending.agents import AgentRegistry
from connector.blending.listener import Listener
from connector.blending.machine import Chat
from connector.sandbox.finesse import FinesseSandbox
from tests.blending.finesse_helpers import (
    ADMIN,
    AGENT,
    AGENT_PASSWORD,
    CHAT_REASON,
    OTHER,
    provision,
    running_sandbox,
)
from tests.e2e.hybrid.agents import AgentClient
from tests.e2e.hybrid.helpers import AGENT_CLOSED, WELCOME, assigned, router, texts
from tests.e2e.stack import ASSETS, CUSTOMERS, HYBRID, HYBRID_AGENTS, Stack
from tests.helpers import wait_for

LOGIN, NAME = "ada", "Ada Lovelace"
"""The Finesse agent's login, and the name Hybrid Chat shows (not a login: blending finds her by id)."""
ADA = {"login": LOGIN, "name": NAME, "skills": ["english"], "max_chats": 2}  # no password: a Finesse agent
APP, APP_CUSTOMER = ASSETS["inapp"], CUSTOMERS["inapp"]
WA, WA_CUSTOMER = ASSETS["whatsapp"], CUSTOMERS["whatsapp"]


@pytest.fixture
def finesse_sandbox() -> Iterator[FinesseSandbox]:
    with running_sandbox() as sandbox:
        provision(sandbox)  # agent 1001 READY on voice, with the chat MRD "Chat"; 1002 READY too
        yield sandbox


def finesse_section(sandbox: FinesseSandbox) -> dict[str, Any]:
    """The `finesse:` section of the stack's files. ECE's chat MRD is named because the stack has an
    ECE integration too (check-config requires it); Hybrid Chat needs only the router's flag."""
    section: dict[str, Any] = {
        "publisher": sandbox.publisher_url,
        "subscriber": sandbox.subscriber_url,
        "admin_user": ADMIN[0],
        "admin_password": ADMIN[1],
        "xmpp_port": sandbox.xmpp_port,
        "liveness_interval_seconds": 0.2,
        "sync_interval_seconds": 1,
        "chat_mrd_name": "Chat",
    }
    if sandbox.xmpp_ca_file is not None:
        section["ca_bundle"] = str(sandbox.xmpp_ca_file)
    return section


@contextmanager
def running_listener(stack: Stack, login: str) -> Iterator[Listener]:
    finesse = stack.runtime.config.finesse
    assert finesse is not None
    listener = Listener(stack.runtime, finesse).start()
    try:
        registry = AgentRegistry(stack.runtime.redis)
        wait_for(lambda: registry.agent_id_for_login(login) == AGENT, timeout=10, what="agent sync")
        yield listener
    finally:
        listener.stop()


@pytest.fixture
def blended(hybrid_stack, agent_api, finesse_sandbox) -> Iterator[Callable[..., tuple[Stack, AgentClient, Listener]]]:
    """(login, name) → (the stack, Ada logged in at the agent API with her Finesse login and password,
    the listener), once the listener holds her XMPP session. `name`: the name `hybrid_agents` gives her."""
    running = ExitStack()

    def start(login: str = LOGIN, name: str = NAME) -> tuple[Stack, AgentClient, Listener]:
        finesse_sandbox.model.agents[AGENT].login_name = login
        agent = {**ADA, "login": login, "name": name}
        stack = hybrid_stack(agents=(*HYBRID_AGENTS, agent), finesse=finesse_section(finesse_sandbox))
        listener = running.enter_context(running_listener(stack, login))
        ada = agent_api(stack, login, password=AGENT_PASSWORD, auth="cookie")
        assert ada.agent_id == AGENT, "a Finesse agent's id is Finesse's"
        assert listener.xmpp is not None
        wait_for(lambda: listener.xmpp.connected(AGENT), timeout=15, what="the agent's XMPP session")
        return stack, ada, listener

    with running:
        yield start


def voice(sandbox: FinesseSandbox) -> tuple[str, str | None]:
    agent = sandbox.model.agents[AGENT]
    return agent.state, agent.reason_code_id


def blending_chat(stack: Stack) -> Chat:
    return AgentRegistry(stack.runtime.redis).state(AGENT).chat


def test_a_voice_call_holds_offers_back_and_a_chat_sets_voice_not_ready_until_it_ends(
    blended, agent_api, finesse_sandbox
):
    stack, ada, _listener = blended()
    sandbox = finesse_sandbox
    me = ada.ready()
    assert (me["chat_state"], me["name"]) == ("READY", NAME)
    wait_for(lambda: voice(sandbox) == ("READY", None) and blending_chat(stack) is Chat.READY, what="READY / READY")
    assert ada.me()["voice_state"] == "READY"
    zoe = agent_api(stack, "zoe")  # a local agent, NOT_READY for now

    # A voice call: no chat offers to Ada; her stream hears it.
    dialog = sandbox.switch.start_call(AGENT, "ACD_IN")
    ada.wait_event("state_changed", chat_state="INTERRUPTED", timeout=15)
    assert ada.me()["chat_state"] == "INTERRUPTED"
    wait_for(lambda: ada.me()["voice_state"] in ("RESERVED", "TALKING"), what="the call's voice state on the API")

    # A customer writes during the call: the chat waits (Ada is READY with the skill, but on a call) ...
    stack.customer.send_text(APP, APP_CUSTOMER, "Hello during the call")
    stack.wait_text("inapp", WELCOME)
    assert ada.quiet("chat_offered", 0, 1.5) == []
    first = router(stack).chats([c for c, _ in router(stack).waiting(HYBRID, "Support", 10)])
    assert [c.channel for c in first] == ["inapp"]
    # ... until another agent is READY: it goes to her.
    zoe.ready()
    to_zoe = zoe.wait_event("chat_offered")
    zoe.accept(to_zoe["chat_id"])
    zoe.not_ready("Meeting")
    stack.wait_text("inapp", assigned("Zoe"))

    # A second customer waits for Ada alone; the call ends and the offer comes.
    stack.customer.send_text(WA, WA_CUSTOMER, "Hello from WhatsApp")
    stack.wait_text("whatsapp", WELCOME)
    assert ada.quiet("chat_offered", 0, 1.0) == []
    sandbox.switch.answer(dialog.id)
    sandbox.switch.end(dialog.id)
    resumed = ada.wait_event("state_changed", chat_state="READY", reason="voice call ended", timeout=15)
    offer = ada.wait_event("chat_offered", timeout=10)
    assert offer["chat"]["channel"] == "whatsapp" and ada.events.index(offer) > ada.events.index(resumed)
    wait_for(lambda: voice(sandbox) == ("READY", None), what="voice READY after the call")

    # Ada accepts: Finesse NOT_READY with "Handling Chat"; the chat side ACTIVE.
    chat_id = offer["chat_id"]
    ada.accept(chat_id)
    stack.wait_text("whatsapp", assigned(NAME))
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), what='Finesse NOT_READY "Handling Chat"')
    assert blending_chat(stack) is Chat.ACTIVE
    wait_for(lambda: ada.me()["voice_state"] == "NOT_READY", what="the voice state on the agent API")
    requests = [r for r in sandbox.model.requests if r.method == "PUT" and r.path == f"/finesse/api/User/{AGENT}"]
    assert requests and all(r.user in (AGENT, LOGIN) for r in requests), "with the agent's own credentials"

    # Her last chat ends: voice READY again.
    ada.say(chat_id, "All sorted.")
    ada.close(chat_id, wrap_up="sorted")
    stack.wait_text("whatsapp", AGENT_CLOSED)
    wait_for(lambda: voice(sandbox) == ("READY", None), what="Finesse READY after the last chat")
    wait_for(lambda: blending_chat(stack) is Chat.READY, what="chat READY")
    assert texts(stack, "whatsapp") == [WELCOME, assigned(NAME), "All sorted.", AGENT_CLOSED]


def test_a_customer_who_leaves_an_active_chat_gives_the_agent_back_to_voice(blended, finesse_sandbox):
    stack, ada, _listener = blended()
    sandbox = finesse_sandbox
    ada.ready()
    wait_for(lambda: voice(sandbox) == ("READY", None) and blending_chat(stack) is Chat.READY, what="READY / READY")
    stack.customer.send_text(APP, APP_CUSTOMER, "Hello")
    chat_id = ada.wait_event("chat_offered")["chat_id"]
    ada.accept(chat_id)
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), what='Finesse NOT_READY "Handling Chat"')

    # The customer closes the conversation in the app: the agent hears it, the chat is over ...
    stack.customer.send_close(APP, APP_CUSTOMER)
    ada.wait_event("chat_closed", chat_id, by="customer")
    assert ada.me()["chats"] == []
    # ... and with her last chat gone, Finesse gives her back to voice.
    wait_for(lambda: blending_chat(stack) is Chat.READY, timeout=6, what="blending: no chat left")
    assert AgentRegistry(stack.runtime.redis).state(AGENT).chats == ()
    wait_for(lambda: voice(sandbox) == ("READY", None), timeout=5, what="Finesse READY after the customer left")


def test_blending_finds_the_finesse_agent_by_id_whatever_name_hybrid_chat_shows(blended, finesse_sandbox):
    sandbox = finesse_sandbox
    sandbox.model.agents[OTHER].login_name = "ada"  # another agent, whose login is Ada's shown name
    stack, ada, _listener = blended(login="ada.lovelace", name="Ada")
    ada.ready()
    wait_for(lambda: voice(sandbox) == ("READY", None) and blending_chat(stack) is Chat.READY, what="READY / READY")
    stack.customer.send_text(APP, APP_CUSTOMER, "Hello")
    chat_id = ada.wait_event("chat_offered")["chat_id"]
    ada.accept(chat_id)
    stack.wait_text("inapp", assigned("Ada"))
    wait_for(lambda: blending_chat(stack) is Chat.ACTIVE, timeout=6, what="Ada's chat known to blending")
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), timeout=5, what='Ada NOT_READY "Handling Chat"')
    assert AgentRegistry(stack.runtime.redis).state(OTHER).chats == (), "the other agent has no chat"
