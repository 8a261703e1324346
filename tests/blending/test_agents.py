"""The agent registry on a real Redis: profiles, the login map, state round trips, the per-agent lock."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace

import pytest

from connector.blending.agents import (
    AgentBusy,
    AgentProfile,
    AgentRegistry,
    LockLost,
    decode_state,
    encode_state,
)
from connector.blending.machine import AgentState, Chat, Dialog, VoiceRequest, new_agent
from connector.store import keys

JANE = AgentProfile("1001001", "JDoe", "Jane", "Doe", "1001", "5", "Billing", ("Agent", "Supervisor"))


def test_profile_round_trip_and_change_detection(redis) -> None:
    registry = AgentRegistry(redis)
    assert registry.save_profile(JANE) is True
    assert registry.profile("1001001") == JANE
    assert registry.save_profile(JANE) is False
    assert registry.save_profile(replace(JANE, team_name="Sales")) is True
    assert registry.profile("1001001").team_name == "Sales"
    assert registry.ids() == ["1001001"]
    assert JANE.name == "Jane Doe"


def test_profile_without_optional_fields(redis) -> None:
    registry = AgentRegistry(redis)
    bare = AgentProfile("42", "agent42")
    registry.save_profile(bare)
    assert registry.profile("42") == bare
    assert bare.name == "agent42"
    assert registry.profile("unknown") is None


def test_login_name_maps_to_agent_case_insensitively_and_follows_a_rename(redis) -> None:
    registry = AgentRegistry(redis)
    registry.save_profile(JANE)
    assert registry.agent_id_for_login(" jdoe ") == "1001001"
    registry.save_profile(replace(JANE, login_name="jane.doe"))
    assert registry.agent_id_for_login("JDoe") is None
    assert registry.agent_id_for_login("Jane.Doe") == "1001001"


def test_remove_forgets_profile_state_login_and_due(redis) -> None:
    registry = AgentRegistry(redis)
    registry.save_profile(JANE)
    with registry.lock("1001001") as lock:
        registry.save_state(lock, replace(new_agent("1001001"), chats=("c1",)))
    registry.mark_due("1001001", True)
    registry.remove("1001001")
    assert (registry.ids(), registry.profile("1001001"), registry.agent_id_for_login("jdoe"), registry.due()) == (
        [],
        None,
        None,
        [],
    )
    assert registry.state("1001001") == new_agent("1001001")


def test_state_round_trip_keeps_every_field() -> None:
    state = AgentState(
        agent_id="7",
        chat_enabled=False,
        voice="TALKING",
        voice_reason_id=None,
        voice_at=12.5,
        presence=("NOT_READY", "22"),
        presence_changed_at=11.0,
        dialogs=(Dialog("d1", "CONSULT", 12.0),),
        ended_dialogs=("d0",),
        routed_call=False,
        voice_hold=True,
        request=VoiceRequest("cc-7-3", "NOT_READY", 10.0, open=False),
        refused="READY",
        last_error="Finesse refused READY: Invalid State: x",
        seq=3,
        chats=("c1", "c2"),
        ended_chats=("c0",),
        chat_ready=False,
        chat=Chat.NOT_READY,
        chat_held=True,
        updated_at=12.5,
    )
    assert decode_state("7", encode_state(state)) == state


def test_decode_tolerates_fields_of_another_version() -> None:
    text = json.dumps({"agent_id": "7", "voice": "READY", "chats": ["c1"], "field_from_the_future": 1})
    assert decode_state("7", text) == replace(new_agent("7"), voice="READY", chats=("c1",))
    assert decode_state("7", None) == new_agent("7")


def test_state_of_an_agent_met_only_in_events_is_listed_without_profile(redis) -> None:
    registry = AgentRegistry(redis)
    registry.save_profile(JANE)
    with registry.lock("2002") as lock:
        registry.save_state(lock, replace(new_agent("2002"), chats=("c1",)))
    records = {r.agent_id: r for r in registry.records()}
    assert set(records) == {"1001001", "2002"}
    assert records["2002"].profile is None and records["2002"].state.chats == ("c1",)
    assert records["1001001"].profile == JANE and records["1001001"].state == new_agent("1001001")


def test_lock_is_exclusive_and_a_second_handler_gives_up_after_the_wait(redis) -> None:
    registry = AgentRegistry(redis, wait_seconds=0.1)
    with registry.lock("1"):
        started = time.monotonic()
        with pytest.raises(AgentBusy, match="agent 1 is held"), registry.lock("1"):
            pass
        assert time.monotonic() - started >= 0.1
    with registry.lock("1"):  # released on exit
        pass


def test_lock_is_released_when_the_handler_raises(redis) -> None:
    registry = AgentRegistry(redis)
    with pytest.raises(RuntimeError), registry.lock("1"):
        raise RuntimeError("handler failed")
    assert redis.get(keys.agent_lock("1")) is None


def test_save_after_the_lease_ran_out_is_refused(redis) -> None:
    registry = AgentRegistry(redis, lease_seconds=0.05)
    with registry.lock("1") as stale:
        time.sleep(0.08)
        with AgentRegistry(redis).lock("1") as fresh:
            registry.save_state(fresh, replace(new_agent("1"), chats=("newer",)))
            with pytest.raises(LockLost):
                registry.save_state(stale, replace(new_agent("1"), chats=("older",)))
    assert registry.state("1").chats == ("newer",)


def test_save_under_another_agents_lock_is_a_bug(redis) -> None:
    registry = AgentRegistry(redis)
    with registry.lock("1") as lock, pytest.raises(ValueError, match="saved under the lock of agent 1"):
        registry.save_state(lock, new_agent("2"))


def test_concurrent_read_modify_write_under_the_lock_loses_nothing(redis) -> None:
    registry = AgentRegistry(redis)

    def add_chats(worker: int) -> None:
        for n in range(40):
            with registry.lock("1") as lock:
                state = registry.state("1")
                registry.save_state(lock, replace(state, chats=(*state.chats, f"w{worker}-{n}")))

    threads = [threading.Thread(target=add_chats, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(registry.state("1").chats) == 240


def test_due_set(redis) -> None:
    registry = AgentRegistry(redis)
    registry.mark_due("2", True)
    registry.mark_due("1", True)
    registry.mark_due("2", False)
    assert registry.due() == ["1"]
