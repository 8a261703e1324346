"""Agent sync from Finesse (faked at the wire) into the registry on a real Redis: profiles, the
chat-enabled policy, removals, outages, one run at a time."""

from __future__ import annotations

import threading

import pytest
import responses

from connector.blending.agents import AgentProfile, AgentRegistry
from connector.blending.chat_side import finesse_agent_id
from connector.blending.finesse.client import FinesseUnavailable, FinesseUser
from connector.blending.machine import Chat
from connector.blending.service import BlendingService
from connector.blending.sync import AgentSync, SyncInProgress
from connector.config.model import ChatEnabledPolicy
from connector.store import keys
from tests.blending.finesse_wire import CONFIG, FinesseWire
from tests.helpers import wait_for


@pytest.fixture
def wire():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        wire = FinesseWire(rsps)
        wire.add("1001", "jdoe", first_name="Jane", last_name="Doe", extension="5001", team_name="Support")
        wire.add("1002", "bsmith", first_name="Bob", last_name="Smith", extension="5002", team_name="Billing")
        wire.add("1003", "sup", extension="5003", team_name="Support", roles=("Agent", "Supervisor"))
        yield wire


@pytest.fixture
def registry(redis) -> AgentRegistry:
    return AgentRegistry(redis)


def make_sync(wire: FinesseWire, registry: AgentRegistry, policy: str = "all") -> AgentSync:
    service = BlendingService.start(CONFIG, wire.client(), registry)
    return AgentSync(wire.client(), registry, service, ChatEnabledPolicy.parse(policy))


# -- the policy ------------------------------------------------------------------------------------

SUPPORT = FinesseUser("1", team_name="Support", roles=("Agent",))
BILLING_SUPERVISOR = FinesseUser("2", team_name="Billing", roles=("Agent", "Supervisor"))
NO_TEAM = FinesseUser("3")

POLICIES = [
    ("all", [True, True, True]),
    ("none", [False, False, False]),
    ("team:Support", [True, False, False]),
    ("team: support , billing", [True, True, False]),
    ("role:supervisor", [False, True, False]),
    ("ROLE:Agent", [True, True, False]),
]


@pytest.mark.parametrize(("text", "included"), POLICIES, ids=[p[0] for p in POLICIES])
def test_chat_enabled_policy(text: str, included: list[bool]) -> None:
    policy = ChatEnabledPolicy.parse(text)
    assert [policy.includes(u) for u in (SUPPORT, BILLING_SUPERVISOR, NO_TEAM)] == included


@pytest.mark.parametrize("text", ["", "some", "team:", "role: ,", "all:x", "teams:Support"])
def test_chat_enabled_policy_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not one of: all, none, team:<name>\[,<name>...\], role:<role>"):
        ChatEnabledPolicy.parse(text)


# -- a run -----------------------------------------------------------------------------------------


def test_sync_stores_every_agent_with_id_login_name_team_and_extension(wire, registry) -> None:
    result = make_sync(wire, registry).sync()
    assert (result.agents, result.added, result.updated, result.removed, result.chat_enabled) == (3, 3, 0, 0, 3)
    assert registry.ids() == ["1001", "1002", "1003"]
    assert registry.profile("1001") == AgentProfile("1001", "jdoe", "Jane", "Doe", "5001", "1", "Support", ("Agent",))
    assert finesse_agent_id(registry, "BSmith") == "1002"
    assert finesse_agent_id(registry, "nobody") is None
    assert finesse_agent_id(registry, " ") is None
    status = {k.decode(): v.decode() for k, v in registry.redis.hgetall(keys.agent_sync_status()).items()}
    assert (status["agents"], status["added"], status["error"]) == ("3", "3", "")


def test_sync_feeds_the_voice_state_it_read_to_blending(wire, registry) -> None:
    wire.set("1002", "NOT_READY", "5")
    make_sync(wire, registry).sync()
    assert [registry.state(a).voice for a in ("1001", "1002", "1003")] == ["READY", "NOT_READY", "READY"]
    assert registry.state("1002").voice_reason_id == "5"


def test_policy_decides_who_is_chat_enabled_and_a_new_policy_applies_on_the_next_run(wire, registry) -> None:
    sync = make_sync(wire, registry, "team:Support")
    assert sync.sync().chat_enabled == 2
    assert [registry.state(a).chat for a in ("1001", "1002", "1003")] == [Chat.READY, Chat.NOT_READY, Chat.READY]
    sync.policy = ChatEnabledPolicy.parse("role:Supervisor")
    sync.sync()
    assert [registry.state(a).chat_enabled for a in ("1001", "1002", "1003")] == [False, False, True]


def test_changed_and_removed_agents(wire, registry) -> None:
    sync = make_sync(wire, registry)
    sync.sync()
    wire.agents["1001"].team_name = "Billing"
    del wire.agents["1003"]
    result = sync.sync()
    assert (result.added, result.updated, result.removed) == (0, 1, 1)
    assert registry.ids() == ["1001", "1002"]
    assert registry.profile("1001").team_name == "Billing"
    assert finesse_agent_id(registry, "sup") is None


def test_finesse_down_leaves_the_registry_as_it_was(wire, registry) -> None:
    sync = make_sync(wire, registry)
    sync.sync()
    wire.down = True
    with pytest.raises(FinesseUnavailable):
        sync.sync()
    assert registry.ids() == ["1001", "1002", "1003"]
    assert b"OUT_OF_SERVICE" in registry.redis.hget(keys.agent_sync_status(), "error")
    assert registry.redis.get(keys.agent_sync_lock()) is None  # released for the next run


def test_one_run_at_a_time(wire, registry) -> None:
    sync = make_sync(wire, registry)
    registry.redis.set(keys.agent_sync_lock(), "another-process")
    with pytest.raises(SyncInProgress):
        sync.sync()
    assert registry.ids() == []


def test_periodic_sync_runs_until_stopped_and_survives_an_outage(wire, registry) -> None:
    sync = make_sync(wire, registry)
    wire.down = True
    stop = threading.Event()
    worker = threading.Thread(target=sync.run_periodically, args=(0.01, stop))
    worker.start()

    def status() -> dict[bytes, bytes]:
        return registry.redis.hgetall(keys.agent_sync_status())

    try:
        wait_for(lambda: b"OUT_OF_SERVICE" in status().get(b"error", b""), timeout=5, what="a failed run")
        assert registry.ids() == []
        wire.down = False
        wait_for(lambda: status().get(b"error") == b"" and status().get(b"agents") == b"3", timeout=5, what="a run")
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert registry.ids() == ["1001", "1002", "1003"]
