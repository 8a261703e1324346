"""The customer inactivity timeout of Hybrid Chat: an accepted chat whose customer writes nothing for
its queue's `inactivity_timeout_seconds` ends. The customer hears `customer_inactive`, the agent's
desktop `chat_closed` (by: inactivity), and the agent's slot goes to the next chat. Real Redis,
intake, drain and router; the customer's app (in-app channel) is mocked with `responses`. The sweep
(`close_inactive`, every worker's tick) is run with a `now` past the deadline instead of waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_lib
import responses

from connector.backends.hybrid.agents import AgentSettings
from connector.backends.hybrid.backend import close_inactive
from connector.backends.hybrid.desk import Desk
from connector.backends.hybrid.state import ACTIVE, CLOSED, QUEUED, HybridState
from connector.relay.drain import drain_thread
from connector.store import keys, threads
from tests.backends.hybrid.conftest import INTEGRATION, add_agent, add_chat
from tests.backends.hybrid.test_flow import customer_says, delivered, desk, events, provisioned

SILENCE = 60
"""Support's inactivity_timeout_seconds here."""
CUSTOMER_INACTIVE = "We closed this chat as we have not heard from you for a while. Write again any time."
AGENT_CLOSED = "The agent has marked your chat closed."


def desk_integration(support_seconds: int = SILENCE) -> dict[str, Any]:
    """Support (the rule's queue) with an inactivity timeout; Quiet with none (0)."""
    return {
        "name": INTEGRATION,
        "type": "hybrid",
        "entry_points": [
            {"name": "Support", "skills": ["english"], "inactivity_timeout_seconds": support_seconds},
            {"name": "Quiet", "inactivity_timeout_seconds": 0},
        ],
    }


@pytest.fixture
def helpdesk(runtime) -> Iterator[responses.RequestsMock]:
    yield from provisioned(runtime, desk_integration())


def talking(client, runtime, agent: Desk, customer: str = "cust-1") -> tuple[str, str]:
    """A customer's chat the agent (READY) has accepted: (chat id, thread id)."""
    thread_id = customer_says(client, customer, f"{customer}-m-1", "Hello, my router is broken")
    drain_thread(thread_id, runtime)
    chat_id = threads.load(runtime.redis, thread_id).remote_id
    agent.accept(chat_id)
    drain_thread(thread_id, runtime)
    return chat_id, thread_id


def deadline(redis: redis_lib.Redis, chat_id: str) -> float | None:
    found = redis.zscore(keys.hybrid_inactive(), chat_id)
    return None if found is None else float(found)


def closes(redis: redis_lib.Redis, agent: str) -> list[Any]:
    return [e.get("by") for e in events(redis, agent) if e["type"] == "chat_closed"]


# -- the clock: set by the accept, moved by the customer ---------------------------------------------


def test_an_accept_starts_the_customers_clock_and_only_their_messages_restart_it(client, redis, runtime, helpdesk):
    alice = desk(runtime, "alice")
    alice.set_state(True)
    chat_id, thread_id = talking(client, runtime, alice)
    accepted_at = HybridState(redis).chat(chat_id).accepted_at
    assert deadline(redis, chat_id) == pytest.approx(accepted_at + SILENCE)

    redis.zadd(keys.hybrid_inactive(), {chat_id: 1.0})  # as if the accept was long ago
    alice.send_text(chat_id, "Are you still there?")
    drain_thread(thread_id, runtime)
    assert deadline(redis, chat_id) == 1.0, "the agent's words are not the customer's"

    customer_says(client, "cust-1", "cust-1-m-2", "Yes, sorry")
    drain_thread(thread_id, runtime)
    assert deadline(redis, chat_id) == pytest.approx(time.time() + SILENCE, abs=2)
    assert close_inactive(runtime) == [] and HybridState(redis).chat(chat_id).state == ACTIVE


def test_a_sweep_that_read_the_old_deadline_leaves_a_chat_whose_customer_spoke_meanwhile(
    client, redis, runtime, helpdesk
):
    alice = desk(runtime, "alice")
    alice.set_state(True)
    chat_id, thread_id = talking(client, runtime, alice)
    state = HybridState(redis)
    redis.zadd(keys.hybrid_inactive(), {chat_id: time.time() - 1})  # silent long enough
    now = time.time()
    assert state.inactive(now) == [chat_id]
    stale = state.chat(chat_id)  # the sweep read the chat as due...
    customer_says(client, "cust-1", "cust-1-m-2", "Still here!")  # ...then the customer spoke
    drain_thread(thread_id, runtime)
    assert state.close_inactive(stale, wrap_up="customer inactive", now=now) == ("", None)
    assert state.chat(chat_id).state == ACTIVE and state.agent_chats("alice") == [chat_id]


# -- the sweep ---------------------------------------------------------------------------------------


def test_a_silent_customer_hears_customer_inactive_and_the_agents_slot_goes_to_the_next_chat(
    client, redis, runtime, helpdesk
):
    alice = desk(runtime, "alice", max_chats=1)
    alice.set_state(True)
    chat_id, thread_id = talking(client, runtime, alice)
    next_thread = customer_says(client, "cust-2", "cust-2-m-1", "Me too")
    drain_thread(next_thread, runtime)
    next_chat = threads.load(redis, next_thread).remote_id
    assert HybridState(redis).chat(next_chat).state == QUEUED, "Alice is full"
    due = deadline(redis, chat_id)

    assert close_inactive(runtime, now=due - 1) == [], "not before the deadline"
    assert close_inactive(runtime, now=due + 1) == [chat_id]
    chat = HybridState(redis).chat(chat_id)
    assert (chat.state, chat.closed_by, chat.wrap_up) == (CLOSED, "system", "customer inactive")
    assert closes(redis, "alice") == ["inactivity"]
    assert deadline(redis, chat_id) is None
    assert [c["chat_id"] for c in alice.me()["chats"]] == [next_chat], "the freed slot took the next chat"

    drain_thread(thread_id, runtime)
    said = [(d["type"], d.get("text")) for d in delivered(helpdesk) if d["customer_id"] == "cust-1"]
    assert said[-2:] == [("system", CUSTOMER_INACTIVE), ("close", None)]
    assert ("system", AGENT_CLOSED) not in said
    thread = threads.load(redis, thread_id)
    assert thread.state.value == "closed"
    assert threads.timeline(redis, thread_id)[-1]["note"] == "closed for the customer's inactivity"


def test_two_workers_sweeping_at_once_end_a_silent_chat_once(client, redis, runtime, helpdesk):
    alice = desk(runtime, "alice")
    alice.set_state(True)
    chat_id, thread_id = talking(client, runtime, alice)
    due = deadline(redis, chat_id)
    assert redis.llen(keys.outbox(thread_id)) == 0
    barrier = threading.Barrier(2)
    ended: list[list[str]] = []

    def sweep() -> None:
        barrier.wait()
        ended.append(close_inactive(runtime, now=due + 1))

    sweepers = [threading.Thread(target=sweep) for _ in range(2)]
    for sweeper in sweepers:
        sweeper.start()
    for sweeper in sweepers:
        sweeper.join(5)
    assert sorted(ended) == [[], [chat_id]]
    assert close_inactive(runtime, now=due + 2) == []
    assert closes(redis, "alice") == ["inactivity"]
    assert redis.llen(keys.outbox(thread_id)) == 1, "one CLOSED event for the customer"


def test_a_sweep_that_died_after_its_close_is_finished_by_the_next(client, redis, runtime, helpdesk):
    """The close and what follows it are two steps (the close must check the deadline as it lands);
    a chat closed by a sweep that died before freeing its agent waits in a set, and the next sweep
    frees the slot and tells the desktop, the customer and media blending, once."""
    alice = desk(runtime, "alice", max_chats=1)
    alice.set_state(True)
    chat_id, thread_id = talking(client, runtime, alice)
    due = deadline(redis, chat_id)
    state = HybridState(redis)
    assert state.close_inactive(state.chat(chat_id), wrap_up="customer inactive", now=due + 1)[0] == ACTIVE
    assert state.agent_chats("alice") == [chat_id] and closes(redis, "alice") == [], "the sweep died here"

    assert close_inactive(runtime, now=due + 2) == [], "ended by the first sweep"
    assert state.agent_chats("alice") == [] and closes(redis, "alice") == ["inactivity"]
    assert redis.llen(keys.outbox(thread_id)) == 1, "one CLOSED event for the customer"
    assert close_inactive(runtime, now=due + 3) == [] and closes(redis, "alice") == ["inactivity"], "once"
    assert redis.scard(keys.hybrid_inactive_closed()) == 0


def test_a_chat_in_the_zset_that_is_no_longer_active_is_only_dropped(redis, runtime, helpdesk):
    """Every way out of `active` takes the chat out of the ZSET; one found there anyway (left by an
    earlier version, or a record that expired) is dropped, and nothing is closed or told."""
    state = HybridState(redis)
    add_agent(state, "alice", "english")
    add_chat(state, "c1")
    redis.zadd(keys.hybrid_inactive(), {"c1": 1000.0, "gone": 1000.0})
    assert close_inactive(runtime, now=2000.0) == []
    assert redis.zcard(keys.hybrid_inactive()) == 0
    assert state.chat("c1").state == QUEUED and events(redis, "alice") == []
    assert redis.llen(keys.outbox("thread-c1")) == 0


Leave = Callable[[HybridState, str], object]
LEAVES: dict[str, Leave] = {
    "closed by the agent": lambda s, c: s.close(s.chat(c), by="agent"),
    "closed by the customer": lambda s, c: s.close(s.chat(c), by="customer"),
    "transferred to a queue": lambda s, c: s.to_queue(s.chat(c), "alice", "Quiet", 2001.0),
    "transferred to an agent": lambda s, c: s.to_agent(s.chat(c), "alice", "bob", 2001.0, 2031.0, "{}", "{}"),
}


@pytest.mark.parametrize("leave", LEAVES.values(), ids=LEAVES.keys())
def test_every_way_out_of_active_stops_the_clock(leave: Leave, redis: redis_lib.Redis) -> None:
    state = HybridState(redis)
    add_agent(state, "alice", max_chats=2)
    add_agent(state, "bob", max_chats=2)
    add_chat(state, "c1")
    assert state.offer("c1", "alice", INTEGRATION, "Support", 2000.0, 2030.0)
    assert state.accept(state.chat("c1"), "alice", 2000.5, inactive_at=2060.5)
    assert deadline(redis, "c1") == 2060.5
    leave(state, "c1")
    assert deadline(redis, "c1") is None
    state.refresh_inactive("c1", 3000.0)  # the customer's message that crossed it
    assert deadline(redis, "c1") is None, "not put back"


# -- 0: off --------------------------------------------------------------------------------------------


def test_a_queue_with_the_timeout_off_never_tracks_its_chats(redis, runtime, helpdesk):
    state = HybridState(redis)
    add_chat(state, "q1", "Quiet")
    alice = Desk(runtime, AgentSettings("alice", "alice", "Alice", (), 2, local=True))
    alice.set_state(True)  # routes at once
    alice.accept("q1")
    assert state.chat("q1").state == ACTIVE
    assert deadline(redis, "q1") is None
    state.refresh_inactive("q1", 3000.0)
    assert redis.zcard(keys.hybrid_inactive()) == 0
    assert close_inactive(runtime, now=time.time() + 86400) == []
    assert state.chat("q1").state == ACTIVE


def test_a_timeout_turned_off_spares_the_chats_it_was_watching(client, redis, runtime, helpdesk):
    alice = desk(runtime, "alice")
    alice.set_state(True)
    chat_id, _thread_id = talking(client, runtime, alice)
    due = deadline(redis, chat_id)
    runtime.overrides.save("integrations", desk_integration(support_seconds=0), runtime.provisioned, create=False)
    runtime.config_changed()
    assert close_inactive(runtime, now=due + 1) == []
    assert HybridState(redis).chat(chat_id).state == ACTIVE and deadline(redis, chat_id) is None
