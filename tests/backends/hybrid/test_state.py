"""The atomic scripts of Hybrid Chat (state.py) against a real Redis: an offer re-checks everything it
relies on, accept and expiry cannot both win, a returned offer keeps its place, RONA, close, and the
transfers. A refused script answers 0 (or -1) and changes nothing: every router key is compared
before and after (`router_keys`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis as redis_lib

from connector.backends.hybrid import stream
from connector.backends.hybrid.agents import AgentSettings
from connector.backends.hybrid.desk import Desk
from connector.backends.hybrid.router import expire_offers, request_route, route_once, tick
from connector.backends.hybrid.state import (
    ACTIVE,
    CHAT_TTL_SECONDS,
    CLOSED,
    OFFERED,
    QUEUED,
    Chat,
    HybridState,
    PlannedOffer,
)
from connector.store import keys
from tests.backends.hybrid.conftest import INTEGRATION, add_agent, add_chat, router_keys

NOW = 2000.0
EXPIRES = NOW + 30
SUPPORT = f"{INTEGRATION}:Support"


@pytest.fixture
def state(redis: redis_lib.Redis) -> HybridState:
    return HybridState(redis)


@pytest.fixture
def desk_queues(hybrid_queues: Callable[..., None]) -> None:
    hybrid_queues(
        [
            {"name": "Support", "offer_timeout_seconds": 30},
            {"name": "Sales", "offer_timeout_seconds": 30},
        ]
    )


def offer(state: HybridState, chat_id: str, agent: str, queue: str = "Support", now: float = NOW) -> bool:
    return state.offer(chat_id, agent, INTEGRATION, queue, now, now + 30)


def fresh(state: HybridState, chat_id: str) -> Chat:
    found = state.chat(chat_id)
    assert found is not None
    return found


def queue_line(redis: redis_lib.Redis, queue: str = "Support") -> list[tuple[str, float]]:
    return [(m.decode(), s) for m, s in redis.zrange(keys.hybrid_queue(INTEGRATION, queue), 0, -1, withscores=True)]


def offers_ringing(redis: redis_lib.Redis) -> list[tuple[str, float]]:
    return [(m.decode(), s) for m, s in redis.zrange(keys.hybrid_offers(), 0, -1, withscores=True)]


def accepted(state: HybridState, chat_id: str, agent: str, queue: str = "Support") -> None:
    """The chat offered to the agent and accepted (active, holding one of their slots)."""
    assert offer(state, chat_id, agent, queue)
    assert state.accept(fresh(state, chat_id), agent, NOW + 1)


# -- offer: re-checks everything it relies on ------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    situation: str
    setup: Callable[[HybridState, redis_lib.Redis], object]
    chat: str = "c1"
    agent: str = "alice"
    queue: str = "Support"


def _ringing_elsewhere(state: HybridState, _redis: redis_lib.Redis) -> None:
    add_agent(state, "bob", max_chats=3)
    assert offer(state, "c1", "bob")


def _accepted_elsewhere(state: HybridState, _redis: redis_lib.Redis) -> None:
    add_agent(state, "bob", max_chats=3)
    accepted(state, "c1", "bob")


def _full_of(*queues: str, accept: bool) -> Callable[[HybridState, redis_lib.Redis], None]:
    """Alice's max_chats filled with chats of other queues, ringing or accepted."""

    def setup(state: HybridState, _redis: redis_lib.Redis) -> None:
        add_agent(state, "alice", "english", max_chats=len(queues))
        for n, queue in enumerate(queues):
            add_chat(state, f"other-{n}", queue, at=900.0 + n)
            assert offer(state, f"other-{n}", "alice", queue)
            if accept:
                assert state.accept(fresh(state, f"other-{n}"), "alice", NOW)

    return setup


OFFER_REFUSALS = [
    Refusal("the chat does not exist", lambda s, r: None, chat="ghost"),
    Refusal("the chat was offered to another agent meanwhile", _ringing_elsewhere),
    Refusal("the chat was accepted by another agent meanwhile", _accepted_elsewhere),
    Refusal("the chat was closed meanwhile (the customer left)", lambda s, r: s.close(fresh(s, "c1"), by="customer")),
    Refusal("the chat waits in another queue than the offer names", lambda s, r: None, queue="Sales"),
    Refusal("the agent went NOT_READY", lambda s, r: add_agent(s, "alice", "english", max_chats=2, ready=False)),
    Refusal(
        "the agent is NOT_READY after a RONA",
        lambda s, r: add_agent(s, "alice", "english", max_chats=2, ready=False, reason="RONA"),
    ),
    Refusal("the agent left the READY set", lambda s, r: r.srem(keys.hybrid_ready(), "alice")),
    Refusal("the agent's state says NOT_READY", lambda s, r: r.hset(keys.hybrid_agent("alice"), "state", "NOT_READY")),
    Refusal("the agent is INTERRUPTED by a voice call", lambda s, r: r.sadd(keys.chat_interrupted(), "alice")),
    Refusal("the agent is at max_chats (accepted chats)", _full_of("Sales", "Billing", accept=True)),
    Refusal("the agent is at max_chats, offered chats counting", _full_of("Sales", "Billing", accept=False)),
    Refusal("the agent rings from that queue already", lambda s, r: offer(s, "c2", "alice")),
    Refusal("the agent is unknown", lambda s, r: None, agent="ghost"),
]


@pytest.mark.parametrize("row", OFFER_REFUSALS, ids=lambda r: r.situation)
def test_offer_rechecks_everything_and_changes_nothing_when_refused(
    row: Refusal, state: HybridState, redis: redis_lib.Redis
) -> None:
    add_agent(state, "alice", "english", max_chats=2)
    add_chat(state, "c1", at=1000.0)
    add_chat(state, "c2", at=1001.0)
    row.setup(state, redis)
    before = router_keys(redis)
    assert state.offer(row.chat, row.agent, INTEGRATION, row.queue, NOW + 5, NOW + 35) is False
    assert router_keys(redis) == before


def test_an_offer_moves_the_chat_from_its_queue_to_the_agent(state: HybridState, redis: redis_lib.Redis) -> None:
    add_agent(state, "alice", "english", max_chats=2)
    add_chat(state, "c1", at=1000.0)
    add_chat(state, "c2", at=1001.0)
    assert offer(state, "c1", "alice") is True

    chat = fresh(state, "c1")
    assert (chat.state, chat.agent, chat.offered_at, chat.offer_expires_at) == (OFFERED, "alice", NOW, EXPIRES)
    assert queue_line(redis) == [("c2", 1001.0)]
    assert state.agent_chats("alice") == ["c1"]
    assert offers_ringing(redis) == [("c1", EXPIRES)]
    agent = state.agent("alice")
    assert float(agent["last_offer_at"]) == NOW
    assert agent[f"offer:{SUPPORT}"] == "c1"


def test_ringing_from_another_queue_or_an_accepted_chat_of_the_same_does_not_block(
    state: HybridState, redis: redis_lib.Redis
) -> None:
    add_agent(state, "alice", max_chats=3)
    add_chat(state, "s1", "Sales", at=999.0)
    add_chat(state, "c1", at=1000.0)
    add_chat(state, "c2", at=1001.0)
    assert offer(state, "s1", "alice", "Sales")
    assert offer(state, "c1", "alice"), "a Sales offer rings: Support may still offer"
    assert not offer(state, "c2", "alice"), "one ringing offer per queue"
    assert state.accept(fresh(state, "c1"), "alice", NOW)
    assert offer(state, "c2", "alice"), "once accepted, the queue may offer the next"
    assert state.agent_chats("alice") == ["c1", "c2", "s1"]


def test_concurrent_offers_of_one_agents_last_slot_and_of_one_chat_each_win_once(
    state: HybridState, redis: redis_lib.Redis
) -> None:
    """Eight routers offer at once: one agent's last slot to eight chats of eight queues, and one chat
    to eight agents. Exactly one of each wins."""
    add_agent(state, "alice", max_chats=1)
    for n in range(8):
        add_chat(state, f"q{n}-chat", f"Q{n}", at=1000.0 + n)
        add_agent(state, f"agent-{n}", max_chats=3)
    add_chat(state, "shared", at=900.0)
    barrier = threading.Barrier(8)
    slot_wins: list[bool] = []
    chat_wins: list[bool] = []

    def router(n: int) -> None:
        mine = HybridState(redis_lib.Redis(connection_pool=redis.connection_pool))
        barrier.wait()
        slot_wins.append(mine.offer(f"q{n}-chat", "alice", INTEGRATION, f"Q{n}", NOW, EXPIRES))
        barrier.wait()
        chat_wins.append(mine.offer("shared", f"agent-{n}", INTEGRATION, "Support", NOW, EXPIRES))

    threads = [threading.Thread(target=router, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert slot_wins.count(True) == 1 and chat_wins.count(True) == 1
    assert len(state.agent_chats("alice")) == 1
    holders = [n for n in range(8) if "shared" in state.agent_chats(f"agent-{n}")]
    assert len(holders) == 1 and fresh(state, "shared").agent == f"agent-{holders[0]}"


def test_the_ready_snapshot_reads_every_ready_agent_with_their_load_and_voice_hold(
    state: HybridState, redis: redis_lib.Redis
) -> None:
    add_agent(state, "cora", "english", max_chats=3)
    add_agent(state, "alice", "english", "billing", max_chats=2)
    add_agent(state, "bob", max_chats=1)
    add_agent(state, "dan", ready=False)
    add_chat(state, "c1")
    assert offer(state, "c1", "alice")
    redis.sadd(keys.chat_interrupted(), "bob")

    found = state.ready_snapshot()

    assert [a.agent_id for a in found] == ["alice", "bob", "cora"], "READY ones only, by id"
    alice, bob, cora = found
    assert (alice.chats, alice.interrupted, alice.settings["max_chats"]) == (1, False, "2")
    assert alice.settings[f"offer:{SUPPORT}"] == "c1" and "billing" in alice.settings["skills"]
    assert (bob.chats, bob.interrupted) == (0, True)
    assert (cora.chats, cora.interrupted, cora.settings["state"]) == (0, False, "READY")


def test_a_batch_of_offers_makes_exactly_the_offers_one_call_each_would(
    state: HybridState, redis: redis_lib.Redis
) -> None:
    """The router's offers go out in one round trip, in order: a later offer of the batch sees the
    earlier ones (Alice's last slot, a chat already ringing), as a call of its own would. Each
    offer made, and only those, writes its announcement to its agent's desktop."""
    add_agent(state, "alice", max_chats=1)
    add_agent(state, "bob", max_chats=2)
    add_agent(state, "cora", max_chats=2, ready=False)
    for chat_id in ("c1", "c2", "c3", "c4"):
        add_chat(state, chat_id)

    def planned(chat_id: str, agent: str) -> PlannedOffer:
        event = stream.encoded("chat_offered", chat_id=chat_id)
        return PlannedOffer(chat_id, agent, INTEGRATION, "Support", EXPIRES, event)

    batch = [
        planned("c1", "alice"),
        planned("c2", "alice"),  # her only slot is c1's now
        planned("c3", "bob"),
        planned("c1", "bob"),  # c1 rings at Alice's
        planned("c4", "cora"),  # not READY
    ]
    assert state.offer_all(batch, NOW) == [True, False, True, False, False]
    assert state.agent_chats("alice") == ["c1"] and state.agent_chats("bob") == ["c3"]
    assert [fresh(state, c).state for c in ("c1", "c2", "c3", "c4")] == [OFFERED, QUEUED, OFFERED, QUEUED]
    told = {a: [e["chat_id"] for _id, e in stream.read(redis, a, "0-0", 0)[0]] for a in ("alice", "bob", "cora")}
    assert told == {"alice": ["c1"], "bob": ["c3"], "cora": []}
    assert state.offer_all([], NOW) == []


# -- accept and expiry: whichever runs first wins, the other is refused ----------------------------


def test_accept_makes_the_chat_active_and_keeps_its_slot(state: HybridState, redis: redis_lib.Redis) -> None:
    add_agent(state, "alice", max_chats=2)
    add_chat(state, "c1")
    assert offer(state, "c1", "alice")
    assert state.accept(fresh(state, "c1"), "alice", NOW + 3) is True
    chat = fresh(state, "c1")
    assert (chat.state, chat.agent, chat.accepted_at, chat.offer_expires_at) == (ACTIVE, "alice", NOW + 3, None)
    assert offers_ringing(redis) == []
    assert state.agent_chats("alice") == ["c1"]
    assert f"offer:{SUPPORT}" not in state.agent("alice")


@pytest.mark.parametrize(
    "situation",
    [
        "another agent accepts",
        "accepted twice",
        "accepted after it rang out (RONA)",
        "accepted after it was rejected",
        "accepted after it was closed",
        "accepted while still queued",
    ],
)
def test_accept_is_refused_and_changes_nothing(situation: str, state: HybridState, redis: redis_lib.Redis) -> None:
    add_agent(state, "alice", max_chats=2)
    add_agent(state, "bob", max_chats=2)
    add_chat(state, "c1")
    if situation != "accepted while still queued":
        assert offer(state, "c1", "alice")
    stale = fresh(state, "c1")  # what the desk read before the other change
    who = "alice"
    if situation == "another agent accepts":
        who = "bob"
    elif situation == "accepted twice":
        assert state.accept(stale, "alice", NOW + 1)
    elif situation == "accepted after it rang out (RONA)":
        assert state.give_back(stale, "alice", rona=True)
    elif situation == "accepted after it was rejected":
        assert state.give_back(stale, "alice", rona=False)
    elif situation == "accepted after it was closed":
        state.close(stale, by="customer")
    before = router_keys(redis)
    assert state.accept(stale, who, NOW + 2) is False
    assert router_keys(redis) == before


@pytest.mark.parametrize("rona", [True, False], ids=["expiry after accept", "reject after accept"])
def test_give_back_after_accept_is_refused_and_changes_nothing(
    rona: bool, state: HybridState, redis: redis_lib.Redis
) -> None:
    add_agent(state, "alice", max_chats=2)
    add_chat(state, "c1")
    assert offer(state, "c1", "alice")
    stale = fresh(state, "c1")  # the expiry read the ringing offer, then the agent accepted
    assert state.accept(stale, "alice", NOW + 29)
    before = router_keys(redis)
    assert state.give_back(stale, "alice", rona=rona) is False
    assert router_keys(redis) == before
    assert state.agent("alice")["state"] == "READY", "an accepted chat never makes its agent RONA"


def test_expire_offers_leaves_an_offer_accepted_at_the_last_moment(
    state: HybridState, redis: redis_lib.Redis, runtime
) -> None:
    add_agent(state, "alice", max_chats=2)
    add_chat(state, "c1")
    assert offer(state, "c1", "alice")
    assert state.accept(fresh(state, "c1"), "alice", EXPIRES - 0.001)
    assert expire_offers(redis, runtime.config, now=EXPIRES + 1) == []
    assert fresh(state, "c1").state == ACTIVE and state.agent("alice")["state"] == "READY"


def test_accept_racing_the_expiry_exactly_one_wins_each_time(state: HybridState, redis: redis_lib.Redis) -> None:
    """The agent's accept and the expiry (a worker's give_back with RONA) start together, 100 times:
    one wins, the other is refused, and the state is the winner's, whole."""
    add_agent(state, "alice", max_chats=1)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    for n in range(100):
        chat_id = add_chat(state, f"race-{n}", at=1000.0 + n)
        add_agent(state, "alice", max_chats=1)
        assert offer(state, chat_id, "alice")
        read = fresh(state, chat_id)
        results: dict[str, bool] = {}

        def accept(read: Chat = read, results: dict[str, bool] = results) -> None:
            barrier.wait()
            results["accept"] = state.accept(read, "alice", NOW + 30)

        def expire(read: Chat = read, results: dict[str, bool] = results) -> None:
            barrier.wait()
            results["expire"] = HybridState(redis).give_back(read, "alice", rona=True)

        racers = [threading.Thread(target=accept), threading.Thread(target=expire)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(5)
        assert results["accept"] != results["expire"], results
        chat = fresh(state, chat_id)
        agent = state.agent("alice")
        if results["accept"]:
            outcomes.append("accept")
            assert (chat.state, chat.agent, agent["state"]) == (ACTIVE, "alice", "READY")
            assert state.agent_chats("alice") == [chat_id]
            state.close(chat, by="agent")
        else:
            outcomes.append("expire")
            assert (chat.state, chat.agent, agent["state"], agent["reason"]) == (QUEUED, None, "NOT_READY", "RONA")
            assert state.agent_chats("alice") == []
            state.close(chat, by="system")
        assert offers_ringing(redis) == []
    assert set(outcomes) <= {"accept", "expire"} and len(outcomes) == 100


# -- a returned offer keeps the chat's place ---------------------------------------------------------


@pytest.mark.parametrize("rona", [True, False], ids=["rang out", "rejected"])
def test_a_returned_offer_keeps_the_chats_place(rona: bool, state: HybridState, redis: redis_lib.Redis) -> None:
    add_agent(state, "alice", max_chats=2)
    for n, at in enumerate((1000.0, 1001.0, 1002.0), start=1):
        add_chat(state, f"c{n}", at=at)
    assert offer(state, "c1", "alice")
    assert state.position(INTEGRATION, "Support", "c2") == 1
    assert state.give_back(fresh(state, "c1"), "alice", rona=rona)
    assert queue_line(redis) == [("c1", 1000.0), ("c2", 1001.0), ("c3", 1002.0)]
    assert state.position(INTEGRATION, "Support", "c1") == 1
    chat = fresh(state, "c1")
    assert (chat.state, chat.agent, chat.queued_at, chat.offered_at) == (QUEUED, None, 1000.0, None)


def test_the_router_offers_a_returned_chat_first_to_the_next_agent(
    state: HybridState, redis: redis_lib.Redis, runtime, desk_queues: None
) -> None:
    add_agent(state, "alice", max_chats=2)
    add_chat(state, "c1", at=1000.0)
    add_chat(state, "c2", at=1001.0)
    assert [o.chat_id for o in route_once(redis, runtime.config, now=NOW)] == ["c1"]
    add_agent(state, "bob", max_chats=1)
    assert expire_offers(redis, runtime.config, now=NOW + 31) == ["c1"]
    made = route_once(redis, runtime.config, now=NOW + 32)
    assert [(o.chat_id, o.agent_id) for o in made] == [("c1", "bob")], "its first place, not the end of the line"


# -- RONA --------------------------------------------------------------------------------------------


def test_rona_returns_the_chat_and_sets_the_agent_not_ready_out_of_the_ready_set(
    state: HybridState, redis: redis_lib.Redis
) -> None:
    add_agent(state, "alice", max_chats=2)
    add_chat(state, "c1")
    assert offer(state, "c1", "alice")
    assert state.give_back(fresh(state, "c1"), "alice", rona=True) is True
    agent = state.agent("alice")
    assert (agent["state"], agent["reason"]) == ("NOT_READY", "RONA")
    assert "alice" not in state.ready_agents()
    assert f"offer:{SUPPORT}" not in agent
    assert state.agent_chats("alice") == [] and offers_ringing(redis) == []
    assert queue_line(redis) == [("c1", 1000.0)]


def test_a_reject_returns_the_chat_and_leaves_the_agent_ready(state: HybridState, redis: redis_lib.Redis) -> None:
    add_agent(state, "alice", max_chats=2)
    add_chat(state, "c1")
    assert offer(state, "c1", "alice")
    assert state.give_back(fresh(state, "c1"), "alice", rona=False) is True
    assert state.agent("alice")["state"] == "READY" and state.ready_agents() == ["alice"]
    assert state.agent_chats("alice") == [] and queue_line(redis) == [("c1", 1000.0)]


def test_expire_offers_returns_only_the_offers_that_rang_out_and_tells_the_agent(
    state: HybridState, redis: redis_lib.Redis, runtime, desk_queues: None
) -> None:
    add_agent(state, "alice", max_chats=3)
    add_agent(state, "bob", max_chats=3)
    add_chat(state, "c1", at=1000.0)
    add_chat(state, "c2", at=1001.0)
    assert state.offer("c1", "alice", INTEGRATION, "Support", NOW, NOW + 5)
    assert state.offer("c2", "bob", INTEGRATION, "Support", NOW, NOW + 30)
    assert expire_offers(redis, runtime.config, now=NOW + 4.999) == []
    assert expire_offers(redis, runtime.config, now=NOW + 5) == ["c1"]
    assert fresh(state, "c1").state == QUEUED and fresh(state, "c2").state == OFFERED
    assert (state.agent("alice")["state"], state.agent("bob")["state"]) == ("NOT_READY", "READY")
    seen = [(e["type"], e.get("reason")) for _id, e in stream.read(redis, "alice", "0-0", 0)[0]]
    assert seen == [("offer_withdrawn", "timeout"), ("state_changed", "RONA")]


def test_after_a_rona_the_router_offers_the_chat_to_another_agent_never_the_same(
    state: HybridState, redis: redis_lib.Redis, runtime, desk_queues: None
) -> None:
    add_agent(state, "alice", max_chats=2)
    add_chat(state, "c1")
    assert [o.agent_id for o in route_once(redis, runtime.config, now=NOW)] == ["alice"]
    assert expire_offers(redis, runtime.config, now=NOW + 31) == ["c1"]
    assert route_once(redis, runtime.config, now=NOW + 32) == [], "alice is NOT_READY: nobody else"
    add_agent(state, "bob", max_chats=1)
    assert [o.agent_id for o in route_once(redis, runtime.config, now=NOW + 33)] == ["bob"]


# -- close ------------------------------------------------------------------------------------------


def test_close_of_an_active_chat_frees_the_slot_and_records_the_handle_time(
    state: HybridState, redis: redis_lib.Redis
) -> None:
    add_agent(state, "alice", max_chats=1)
    add_chat(state, "c1")
    accepted(state, "c1", "alice")  # accepted at NOW + 1
    assert state.close(fresh(state, "c1"), by="agent", wrap_up="solved", now=NOW + 91) == (ACTIVE, "alice")
    chat = fresh(state, "c1")
    assert (chat.state, chat.closed_at, chat.closed_by, chat.wrap_up) == (CLOSED, NOW + 91, "agent", "solved")
    assert state.agent_chats("alice") == []
    assert state.handle_times(INTEGRATION, "Support") == [90.0]
    assert 0 < redis.ttl(keys.hybrid_chat("c1")) <= CHAT_TTL_SECONDS


def test_close_of_a_ringing_offer_frees_the_slot_and_the_queues_ring_without_a_handle_time(
    state: HybridState, redis: redis_lib.Redis
) -> None:
    add_agent(state, "alice", max_chats=1)
    add_chat(state, "c1")
    add_chat(state, "c2", at=1001.0)
    assert offer(state, "c1", "alice")
    assert state.close(fresh(state, "c1"), by="customer", now=NOW + 2) == (OFFERED, "alice")
    assert state.agent_chats("alice") == [] and offers_ringing(redis) == []
    assert f"offer:{SUPPORT}" not in state.agent("alice")
    assert state.handle_times(INTEGRATION, "Support") == []
    assert offer(state, "c2", "alice"), "the slot and the queue's ring are free again"


def test_close_of_a_queued_chat_takes_it_out_of_the_queue(state: HybridState, redis: redis_lib.Redis) -> None:
    add_chat(state, "c1")
    add_chat(state, "c2", at=1001.0)
    assert state.close(fresh(state, "c1"), by="system", wrap_up="waited too long") == (QUEUED, None)
    assert queue_line(redis) == [("c2", 1001.0)]
    assert state.handle_times(INTEGRATION, "Support") == []


def test_close_twice_changes_nothing_the_second_time(state: HybridState, redis: redis_lib.Redis) -> None:
    add_agent(state, "alice", max_chats=1)
    add_chat(state, "c1")
    accepted(state, "c1", "alice")
    state.close(fresh(state, "c1"), by="agent", now=NOW + 10)
    before = router_keys(redis)
    assert state.close(fresh(state, "c1"), by="customer", now=NOW + 20) == (CLOSED, "alice")
    assert router_keys(redis) == before


def test_handle_times_keep_the_last_fifty(state: HybridState, redis: redis_lib.Redis) -> None:
    add_agent(state, "alice", max_chats=1)
    for n in range(55):
        add_chat(state, f"c{n}", at=1000.0 + n)
        accepted(state, f"c{n}", "alice")
        state.close(fresh(state, f"c{n}"), by="agent", now=NOW + 1 + n)
    assert state.handle_times(INTEGRATION, "Support") == [float(n) for n in range(54, 4, -1)]


def test_a_close_frees_the_slot_for_the_routers_next_offer(
    state: HybridState, redis: redis_lib.Redis, runtime, desk_queues: None
) -> None:
    add_agent(state, "alice", max_chats=1)
    add_chat(state, "c1", at=1000.0)
    add_chat(state, "c2", at=1001.0)
    assert [o.chat_id for o in route_once(redis, runtime.config, now=NOW)] == ["c1"]
    assert state.accept(fresh(state, "c1"), "alice", NOW + 1)
    assert route_once(redis, runtime.config, now=NOW + 2) == [], "full"
    state.close(fresh(state, "c1"), by="agent", now=NOW + 3)
    assert [o.chat_id for o in route_once(redis, runtime.config, now=NOW + 4)] == ["c2"]


# -- transfers: to a queue, to an agent -------------------------------------------------------------


def test_to_queue_frees_the_slot_and_queues_the_chat_at_the_end_of_the_other_queue(
    state: HybridState, redis: redis_lib.Redis
) -> None:
    add_agent(state, "alice", max_chats=1)
    add_chat(state, "waiting", "Sales", at=1500.0)
    add_chat(state, "c1")
    accepted(state, "c1", "alice")
    assert state.to_queue(fresh(state, "c1"), "alice", "Sales", NOW + 5) is True
    chat = fresh(state, "c1")
    assert (chat.state, chat.queue, chat.queued_at, chat.agent, chat.accepted_at) == (
        QUEUED,
        "Sales",
        NOW + 5,
        None,
        None,
    )
    assert queue_line(redis, "Sales") == [("waiting", 1500.0), ("c1", NOW + 5)], "a new wait, at the end"
    assert queue_line(redis, "Support") == []
    assert state.agent_chats("alice") == []


@pytest.mark.parametrize("situation", ["ringing, not accepted", "queued", "closed", "another agent's chat"])
def test_to_queue_is_refused_unless_the_chat_is_the_agents_active_chat(
    situation: str, state: HybridState, redis: redis_lib.Redis
) -> None:
    add_agent(state, "alice", max_chats=2)
    add_agent(state, "bob", max_chats=2)
    add_chat(state, "c1")
    if situation == "ringing, not accepted":
        assert offer(state, "c1", "alice")
    elif situation == "closed":
        accepted(state, "c1", "alice")
        state.close(fresh(state, "c1"), by="agent")
    elif situation == "another agent's chat":
        accepted(state, "c1", "bob")
    before = router_keys(redis)
    assert state.to_queue(fresh(state, "c1"), "alice", "Sales", NOW + 5) is False
    assert router_keys(redis) == before


HANDOVER = (stream.encoded("chat_offered", chat_id="c1"), stream.encoded("chat_transferred", chat_id="c1"))
"""The two desktops' events of a transfer to an agent."""


def test_to_agent_offers_the_chat_to_the_other_agent_and_moves_the_slot(
    state: HybridState, redis: redis_lib.Redis
) -> None:
    add_agent(state, "alice", max_chats=1)
    add_agent(state, "bob", max_chats=1)
    add_chat(state, "c1")
    accepted(state, "c1", "alice")
    assert state.to_agent(fresh(state, "c1"), "alice", "bob", NOW + 5, NOW + 35, *HANDOVER) == 1
    chat = fresh(state, "c1")
    assert (chat.state, chat.agent, chat.transferred_from, chat.offer_expires_at, chat.accepted_at) == (
        OFFERED,
        "bob",
        "alice",
        NOW + 35,
        None,
    )
    assert state.agent_chats("alice") == [] and state.agent_chats("bob") == ["c1"]
    assert offers_ringing(redis) == [("c1", NOW + 35)]
    told = {a: [e["type"] for _id, e in stream.read(redis, a, "0-0", 0)[0]] for a in ("alice", "bob")}
    assert told == {"alice": ["chat_transferred"], "bob": ["chat_offered"]}, "in the same step"
    assert state.accept(chat, "bob", NOW + 6) and fresh(state, "c1").state == ACTIVE


TO_AGENT_REFUSALS: list[tuple[str, int, Callable[[HybridState, redis_lib.Redis], object]]] = [
    ("the chat only rings at the sender: 0", 0, lambda s, r: None),
    ("the chat is another agent's: 0", 0, lambda s, r: accepted(s, "c1", "carol")),
    ("the chat is closed: 0", 0, lambda s, r: (accepted(s, "c1", "alice"), s.close(fresh(s, "c1"), by="agent"))),
    ("the target is NOT_READY: -1", -1, lambda s, r: (accepted(s, "c1", "alice"), add_agent(s, "bob", ready=False))),
    (
        "the target is INTERRUPTED: -1",
        -1,
        lambda s, r: (accepted(s, "c1", "alice"), r.sadd(keys.chat_interrupted(), "bob")),
    ),
    (
        "the target is at max_chats: -1",
        -1,
        lambda s, r: (accepted(s, "c1", "alice"), add_chat(s, "b1", "Sales"), offer(s, "b1", "bob", "Sales")),
    ),
    ("the target is unknown: -1", -1, lambda s, r: (accepted(s, "c1", "alice"), "ghost")),
]


@pytest.mark.parametrize(("situation", "answer", "setup"), TO_AGENT_REFUSALS, ids=[r[0] for r in TO_AGENT_REFUSALS])
def test_to_agent_is_refused_and_changes_nothing(
    situation: str,
    answer: int,
    setup: Callable[[HybridState, redis_lib.Redis], object],
    state: HybridState,
    redis: redis_lib.Redis,
) -> None:
    add_agent(state, "alice", max_chats=2)
    add_agent(state, "bob", max_chats=1)
    add_agent(state, "carol", max_chats=1)
    add_chat(state, "c1")
    if situation.startswith("the chat only rings"):
        assert offer(state, "c1", "alice")
    setup(state, redis)
    target = "ghost" if "unknown" in situation else "bob"
    before = router_keys(redis)
    assert state.to_agent(fresh(state, "c1"), "alice", target, NOW + 5, NOW + 35, *HANDOVER) == answer
    assert router_keys(redis) == before


def test_a_transferred_offer_that_rings_out_returns_to_its_queue_at_its_first_place(
    state: HybridState, redis: redis_lib.Redis, runtime, desk_queues: None
) -> None:
    add_agent(state, "alice", max_chats=1)
    add_agent(state, "bob", max_chats=1)
    add_chat(state, "c1", at=1000.0)
    add_chat(state, "c2", at=1001.0)
    accepted(state, "c1", "alice")
    assert state.to_agent(fresh(state, "c1"), "alice", "bob", NOW + 5, NOW + 35, *HANDOVER) == 1
    assert expire_offers(redis, runtime.config, now=NOW + 36) == ["c1"]
    assert queue_line(redis) == [("c1", 1000.0), ("c2", 1001.0)]
    assert (state.agent("bob")["state"], state.agent("bob")["reason"]) == ("NOT_READY", "RONA")
    assert state.agent_chats("alice") == [] and state.agent_chats("bob") == []


# -- product bugs: what a crash leaves; a reject --------------------------------------------------


def test_a_repeated_create_keeps_the_first_and_changes_nothing(state: HybridState, redis: redis_lib.Redis) -> None:
    """The inbox item that queued the chat may run again (a worker killed after the create, before
    its ack): the chat is queued once, with its first time, and nothing else moves."""

    def create(now: float) -> bool:
        return state.create_chat(
            "c1",
            thread_id="thread-c1",
            integration=INTEGRATION,
            queue="Support",
            channel="inapp",
            customer={"id": "customer-c1"},
            attributes={},
            now=now,
        )

    assert create(1000.0) is True
    before = router_keys(redis)
    assert create(1000.5) is False
    assert router_keys(redis) == before
    chat = state.chat("c1")
    assert chat is not None and chat.state == QUEUED
    assert queue_line(redis) == [("c1", 1000.0)]
    assert redis.lrange(keys.hybrid_history("thread-c1"), 0, -1) == [b"c1"]


def test_a_close_killed_between_its_two_scripts_does_not_keep_the_agents_slot(
    state: HybridState, redis: redis_lib.Redis, runtime, desk_queues: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_agent(state, "alice", max_chats=1)
    add_chat(state, "c1", at=1000.0)
    accepted(state, "c1", "alice")

    class Killed(BaseException):
        pass

    def killed(*_args: object) -> None:
        raise Killed  # the process dies after the _CLOSE script

    with monkeypatch.context() as patch:
        patch.setattr(HybridState, "release", killed)
        with pytest.raises(Killed):
            state.close(fresh(state, "c1"), by="customer")
    state.close(fresh(state, "c1"), by="customer")  # the relay retries the customer's close
    add_chat(state, "c2", at=1001.0)
    assert state.agent_chats("alice") == []
    assert [o.chat_id for o in route_once(redis, runtime.config, now=NOW)] == ["c2"]


def test_a_rejected_chat_goes_to_the_next_agent_not_back_to_the_one_who_rejected_it(
    state: HybridState, redis: redis_lib.Redis, runtime, desk_queues: None
) -> None:
    add_agent(state, "alice", max_chats=2)
    add_chat(state, "c1", at=1000.0)
    assert [(o.chat_id, o.agent_id) for o in route_once(redis, runtime.config, now=NOW)] == [("c1", "alice")]
    add_agent(state, "bob", max_chats=2)
    add_chat(state, "s1", "Sales", at=1001.0)
    assert [(o.chat_id, o.agent_id) for o in route_once(redis, runtime.config, now=NOW + 10)] == [("s1", "bob")]
    assert state.accept(fresh(state, "s1"), "bob", NOW + 11)  # bob: one chat, one free slot, READY

    Desk(runtime, AgentSettings("alice", "alice", "Alice", (), 2, local=True)).reject("c1")  # routes at once

    chat = fresh(state, "c1")
    assert (chat.state, chat.agent) == (OFFERED, "bob")


def test_a_chat_declined_by_everyone_is_offered_again_when_the_decline_lapses(
    state: HybridState, redis: redis_lib.Redis, runtime, desk_queues: None
) -> None:
    add_agent(state, "alice", max_chats=2)
    add_chat(state, "c1")
    assert [o.agent_id for o in route_once(redis, runtime.config, now=NOW)] == ["alice"]
    chat = fresh(state, "c1")
    state.decline(chat, "alice", 1)  # Desk.reject, with a 1 s window (the queue's offer timeout: 5 s at least)
    assert state.give_back(chat, "alice", rona=False)
    assert request_route(redis, runtime.config) == [], "nobody else: it waits, as it should for now"
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and fresh(state, "c1").state == QUEUED:
        tick(redis, runtime.config)  # every worker's sweeper, every 0.25 s
        time.sleep(0.25)
    assert (fresh(state, "c1").state, fresh(state, "c1").agent) == (OFFERED, "alice")


def test_the_start_gate_finds_a_ready_agent_with_every_skill_as_the_availability_reading_does(
    state: HybridState, redis: redis_lib.Redis, runtime, hybrid_queues
) -> None:
    """`any_ready_with` (one script, stops at the first agent) answers what the full availability
    reading says of agents, for READY, NOT_READY, interrupted and malformed agents alike."""
    from connector.backends.hybrid.backend import HybridBackend

    queues = [
        {"name": "Plain"},
        {"name": "English", "skills": ["english"]},
        {"name": "Billing", "skills": ["english", "billing"]},
        {"name": "Vip", "skills": ["vip"]},
    ]
    hybrid_queues(queues)
    integration = runtime.config.integration(INTEGRATION)

    def agrees() -> list[bool]:
        answers = []
        for queue in queues:
            entry_point = integration.entry_point(queue["name"])
            reading = HybridBackend().availability(integration, entry_point, redis, timeout=None)
            assert state.any_ready_with(tuple(entry_point.skills)) is reading.agents_available, queue["name"]
            answers.append(reading.agents_available)
        return answers

    assert agrees() == [False, False, False, False], "nobody READY"
    add_agent(state, "away", "english", "billing", "vip", ready=False)
    assert agrees() == [False, False, False, False], "NOT_READY does not count"
    add_agent(state, "ann", "english")
    assert agrees() == [True, True, False, False]
    add_agent(state, "bob", "billing", "english")
    redis.sadd(keys.chat_interrupted(), "bob")
    assert agrees() == [True, True, True, False], "a voice call holds Bob, it does not make him unavailable"
    add_agent(state, "odd", "vip")
    redis.hset(keys.hybrid_agent("odd"), "skills", '{"vip": true}')
    redis.sadd(keys.hybrid_ready(), "ghost")  # READY, no agent record: no skills
    assert agrees() == [True, True, True, False], "skills that are not a list are none"
    redis.hset(keys.hybrid_agent("odd"), "skills", '["vip"')
    assert agrees() == [True, True, True, False], "unreadable skills are none"
    redis.hset(keys.hybrid_agent("odd"), "skills", '["vip"]')
    assert agrees() == [True, True, True, True]
