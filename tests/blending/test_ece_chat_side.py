"""ECE's chat side in blending (docs/blending.md, "The chat side"): the router's flag and ECE's chat MRD
told together, the MRD found by name in Finesse's media list, ECE's agents mapped to Finesse logins,
chat events that carry the agent's id, name and backend (the earlier shape still read), and Media
updates turned into the agent's chat readiness before they reach blend()."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from types import SimpleNamespace

import pytest
import responses

from connector.blending.agents import AgentProfile, AgentRegistry
from connector.blending.chat_events import ChatAgent, ChatEventConsumer, publish_chat_assigned, publish_chat_ended
from connector.blending.chat_side import RouterChatSide, finesse_agent_for
from connector.blending.events import ChatAssigned, ChatEnded, ChatReadyChanged, MediaStateChanged, VoiceStateChanged
from connector.blending.finesse.client import FinesseClient
from connector.blending.listener import Listener
from connector.blending.service import BlendingService
from connector.config.model import FinesseConfig
from connector.store import keys
from tests.blending.finesse_wire import BASE, CONFIG, FinesseWire, Put

AGENT = "1001001"
MEDIA_LIST = f"/finesse/api/User/{AGENT}/Media"


@pytest.fixture
def wire():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FinesseWire(rsps)


@pytest.fixture
def registry(redis) -> AgentRegistry:
    return AgentRegistry(redis)


def start(wire: FinesseWire, registry: AgentRegistry, config: FinesseConfig, *, ece: bool = False) -> BlendingService:
    wire.add(AGENT)
    registry.save_profile(AgentProfile(AGENT, "ada"))
    service = BlendingService.start(config, FinesseClient(config), registry, ece=ece)
    service.handle(VoiceStateChanged(AGENT, "READY"))
    return service


def call_and_hang_up(service: BlendingService, wire: FinesseWire, *, check_during=None) -> None:
    wire.start_call(AGENT)
    for report in wire.notifications():
        service.handle(report)
    if check_during is not None:
        check_during()
    wire.end_call(AGENT)
    for report in wire.notifications():
        service.handle(report)


def paths(wire: FinesseWire) -> list[str]:
    return [c.request.path_url for c in wire.rsps.calls]


# -- ECE's chat MRD, by id or by name, beside the router's flag ------------------------------------


def test_chat_mrd_name_is_found_in_the_media_list_and_both_chat_sides_hear_of_a_call(wire, registry, redis) -> None:
    service = start(wire, registry, replace(CONFIG, chat_mrd_name="cisco_chat_mrd"))  # names match case-insensitively
    assert service.chat_mrd_id == "4"
    assert MEDIA_LIST in paths(wire), "resolved through Media—Get List, with one synced agent"
    router = RouterChatSide(redis)

    def during() -> None:
        assert router.is_interrupted(AGENT), "the built-in router's flag is set too"

    call_and_hang_up(service, wire, check_during=during)
    media = f"/finesse/api/User/{AGENT}/Media/4"
    assert wire.media_puts == [
        Put(AGENT, media, "NOT_READY", "22", f"cc-{AGENT}-1"),
        Put(AGENT, media, "READY", None, f"cc-{AGENT}-2"),
    ]
    assert not router.is_interrupted(AGENT)


def test_chat_mrd_id_drives_the_mrd_and_still_sets_the_router_flag(wire, registry, redis) -> None:
    service = start(wire, registry, replace(CONFIG, chat_mrd_id="4"))
    assert service.chat_mrd_id == "4" and MEDIA_LIST not in paths(wire), "an id needs no look-up"
    call_and_hang_up(service, wire, check_during=lambda: assert_interrupted(redis))
    assert [p.state for p in wire.media_puts] == ["NOT_READY", "READY"]


def assert_interrupted(redis) -> None:
    assert RouterChatSide(redis).is_interrupted(AGENT)


def test_an_unknown_chat_mrd_name_is_an_error_naming_the_field_and_what_exists(wire, registry, redis, caplog) -> None:
    caplog.set_level(logging.ERROR, "connector.blending")
    service = start(wire, registry, replace(CONFIG, chat_mrd_name="Chat"))
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert 'finesse.chat_mrd_name "Chat" is not a media routing domain' in error
    assert '"Cisco_Chat_MRD" (id 4), "Cisco_Email_MRD" (id 7)' in error
    assert service.chat_mrd_id is None, "blending runs without ECE's MRD, never stops"
    call_and_hang_up(service, wire, check_during=lambda: assert_interrupted(redis))
    assert wire.media_puts == []


def test_a_media_list_finesse_refuses_is_an_error_and_the_path_can_be_set(wire, registry, caplog) -> None:
    caplog.set_level(logging.ERROR, "connector.blending")
    moved = replace(CONFIG, chat_mrd_name="Cisco_Chat_MRD", media_list_path="/finesse/api/User/{id}/MediaList")
    wire.rsps.add(
        responses.GET,
        re.compile(re.escape(BASE) + r"/finesse/api/User/[^/]+/MediaList$"),
        status=404,
        body="<ApiErrors><ApiError><ErrorType>Not Found</ErrorType><ErrorMessage/></ApiError></ApiErrors>",
    )
    service = start(wire, registry, moved)
    assert service.chat_mrd_id is None
    assert f"/finesse/api/User/{AGENT}/MediaList" in paths(wire), "finesse.media_list_path is the path asked"
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert 'finesse.chat_mrd_name "Cisco_Chat_MRD" cannot be resolved' in error
    assert "/finesse/api/User/{id}/MediaList" in error and "finesse.media_list_path" in error


def test_ece_without_a_chat_mrd_is_an_error_at_start(wire, registry, caplog) -> None:
    caplog.set_level(logging.ERROR, "connector.blending")
    service = start(wire, registry, CONFIG, ece=True)
    assert service.chat_mrd_id is None
    assert any("finesse.chat_mrd_id" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


# -- ECE's agents as Finesse agents ------------------------------------------------------------------


@pytest.fixture
def synced(registry) -> AgentRegistry:
    registry.save_profile(AgentProfile("1001", "ada"))
    registry.save_profile(AgentProfile("1002", "bob.smith"))
    return registry


MAPPINGS = [
    ("ECE's name is the login (any case)", ChatAgent("e-1", "Ada", "ece"), {}, "name", "1001"),
    ("the table maps ECE's name", ChatAgent("e-2", "Bob Smith", "ece"), {"Bob Smith": "bob.smith"}, "name", "1002"),
    ("table keys match in any case", ChatAgent("e-2", "bob smith", "ece"), {"Bob Smith": "bob.smith"}, "name", "1002"),
    ("ece_agent_field: id, mapped", ChatAgent("e-2", "Robert", "ece"), {"e-2": "bob.smith"}, "id", "1002"),
    ("ece_agent_field: id, unmapped id is no login", ChatAgent("e-2", "Ada", "ece"), {}, "id", None),
    ("ece_agent_field: id, a Finesse id", ChatAgent("1002", "Robert", "ece"), {}, "id", "1002"),
    ("an ECE name nobody has", ChatAgent("e-3", "Carol", "ece"), {}, "name", None),
    ("an ECE agent without the field", ChatAgent("e-3", None, "ece"), {}, "name", None),
    ("the built-in router names Finesse agents", ChatAgent("1002", None, "hybrid"), {"1002": "ada"}, "id", "1002"),
    ("a local agent of the built-in router: no Finesse", ChatAgent("local:zoe", "Zoe", "hybrid"), {}, "name", None),
    ("an entry of the earlier shape: a login", ChatAgent(None, "ADA"), {}, "name", "1001"),
    ("an earlier entry, not synced yet: its id", ChatAgent(None, "1777"), {}, "name", "1777"),
]


@pytest.mark.parametrize(
    ("agent", "table", "field", "expected"), [m[1:] for m in MAPPINGS], ids=[m[0] for m in MAPPINGS]
)
def test_chat_agents_map_to_finesse_agents(synced, agent, table, field, expected) -> None:
    config = replace(CONFIG, ece_agents=table, ece_agent_field=field)
    assert finesse_agent_for(agent, config, synced) == expected


# -- the chat-events stream ---------------------------------------------------------------------------


def new_entries(consumer: ChatEventConsumer) -> list:
    assert consumer.read() == [], "nothing pending"
    return consumer.read(block_ms=100)


def test_chat_events_carry_the_agents_id_name_and_backend(redis, synced) -> None:
    consumer = ChatEventConsumer(redis)
    publish_chat_assigned(redis, ChatAgent("e-17", "Ada", "ece"), "conv-1")
    publish_chat_ended(redis, ChatAgent("e-17", "Ada", "ece"), "conv-1")
    assigned, ended = new_entries(consumer)
    assert assigned.agent == ChatAgent("e-17", "Ada", "ece") == ended.agent
    assert assigned.fields["agent"] == "Ada", "what a listener of the earlier version reads"
    agent_id = finesse_agent_for(assigned.agent, CONFIG, synced)
    assert assigned.to_event(agent_id) == ChatAssigned("1001", "conv-1", at=float(assigned.fields["at"]))
    assert isinstance(ended.to_event("1001"), ChatEnded)


def test_entries_of_the_earlier_shape_are_still_read(redis, synced) -> None:
    consumer = ChatEventConsumer(redis)
    redis.xadd(keys.chat_events(), {"kind": "assigned", "agent": "ada", "chat": "c-1", "at": "1.5"})
    [entry] = new_entries(consumer)
    assert entry.agent == ChatAgent(name="ada")
    assert finesse_agent_for(entry.agent, CONFIG, synced) == "1001"
    assert entry.to_event("1001") == ChatAssigned("1001", "c-1", at=1.5)


# -- Media updates before the dispatcher ------------------------------------------------------------


def test_media_updates_reach_the_dispatcher_as_chat_readiness_or_not_at_all(runtime) -> None:
    """blend() takes no MediaStateChanged: the listener turns the agent's own MRD choice into chat
    readiness and drops the rest (the connector's own changes, Finesse-driven states, other MRDs)."""
    listener = Listener(runtime, CONFIG)
    submitted: list[object] = []
    listener.dispatcher = SimpleNamespace(submit=submitted.append)  # type: ignore[assignment]
    listener.service = SimpleNamespace(chat_mrd_id="4", policy=SimpleNamespace(reason_code_id="22"))  # type: ignore[assignment]
    voice = VoiceStateChanged(AGENT, "TALKING")
    for event in (
        MediaStateChanged(AGENT, "4", "NOT_READY", "5", at=2.0),
        MediaStateChanged(AGENT, "4", "INTERRUPTED", at=3.0),
        MediaStateChanged(AGENT, "4", "NOT_READY", "22", at=4.0, request_id=f"cc-{AGENT}-3"),
        MediaStateChanged(AGENT, "7", "READY", at=5.0),
        voice,
    ):
        listener._on_finesse_event(event)
    assert submitted == [ChatReadyChanged(AGENT, ready=False, at=2.0), voice]

    listener.service = SimpleNamespace(chat_mrd_id=None, policy=SimpleNamespace(reason_code_id="22"))  # type: ignore[assignment]
    listener._on_finesse_event(MediaStateChanged(AGENT, "4", "READY"))
    assert submitted[2:] == [], "without ECE's MRD no Media update goes anywhere"
