"""The routing decision of Hybrid Chat (`decide`), row by row, and its rules as properties of random
snapshots (docs/hybrid.md, "The routing decision").

A row is a snapshot (queues, waiting chats, agents) and the offers `decide` must make, in the order it
makes them (chats in service order). Times: every chat and agent time is before NOW; an agent's
`idle_since` is their last offer (0: never offered).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.backends.hybrid.decide import AgentSnapshot, Offer, Queue, WaitingChat, decide

NOW = 100.0


def q(key: str, *skills: str, priority: int = 1) -> Queue:
    return Queue(key, frozenset(skills), priority)


def chat(chat_id: str, queue: str, at: float, declined: tuple[str, ...] = ()) -> WaitingChat:
    return WaitingChat(chat_id, queue, at, frozenset(declined))


def agent(
    agent_id: str,
    *skills: str,
    max_chats: int = 1,
    chats: int = 0,
    idle_since: float = 0.0,
    ringing: tuple[str, ...] = (),
    ready: bool = True,
    interrupted: bool = False,
) -> AgentSnapshot:
    return AgentSnapshot(
        agent_id,
        frozenset(skills),
        max_chats,
        chats,
        idle_since,
        frozenset(ringing),
        ready=ready,
        interrupted=interrupted,
    )


SUPPORT = q("support")
SALES = q("sales")
ENGLISH = q("english", "english")
BILLING = q("billing", "english", "billing")
VIP = q("vip", "vip", priority=0)
LOW = q("low", priority=2)


@dataclass(frozen=True)
class Row:
    situation: str
    queues: tuple[Queue, ...]
    waiting: tuple[WaitingChat, ...]
    agents: tuple[AgentSnapshot, ...]
    offers: tuple[str, ...]
    """"chat → agent", in the order decide makes them."""


def shown(offers: Sequence[Offer]) -> tuple[str, ...]:
    return tuple(f"{o.chat_id} → {o.agent_id}" for o in offers)


def run(queues: Sequence[Queue], waiting: Sequence[WaitingChat], agents: Sequence[AgentSnapshot]) -> list[Offer]:
    return decide({queue.key: queue for queue in queues}, list(waiting), list(agents), NOW)


TABLE = [
    # -- nothing to do --------------------------------------------------------------------------
    Row("empty snapshot: no offers", (), (), (), ()),
    Row("no agent: the chat waits", (SUPPORT,), (chat("c1", "support", 1),), (), ()),
    Row("no chat waiting: nothing to offer", (SUPPORT,), (), (agent("alice"),), ()),
    Row(
        "a chat of a queue unknown to the snapshot waits, the others are served",
        (SUPPORT,),
        (chat("c1", "removed", 1), chat("c2", "support", 2)),
        (agent("alice", max_chats=2),),
        ("c2 → alice",),
    ),
    Row(
        "only a queue unknown to the snapshot: nothing, nothing fails",
        (),
        (chat("c1", "removed", 1),),
        (agent("alice"),),
        (),
    ),
    Row("one chat, one free agent", (SUPPORT,), (chat("c1", "support", 1),), (agent("alice"),), ("c1 → alice",)),
    # -- first come, first served ----------------------------------------------------------------
    Row(
        "FIFO within a queue: the earlier chat gets the only slot (whatever the snapshot's order)",
        (SUPPORT,),
        (chat("c2", "support", 2), chat("c1", "support", 1)),
        (agent("alice"),),
        ("c1 → alice",),
    ),
    Row(
        "FIFO within a queue: chats in arrival order to agents in idle order",
        (SUPPORT,),
        (chat("c2", "support", 2), chat("c1", "support", 1)),
        (agent("bob", idle_since=20), agent("alice", idle_since=10)),
        ("c1 → alice", "c2 → bob"),
    ),
    Row(
        "FIFO within a queue: by arrival, whatever the chat ids say",
        (SUPPORT,),
        (chat("a-late", "support", 2), chat("z-early", "support", 1)),
        (agent("alice"),),
        ("z-early → alice",),
    ),
    Row(
        "FIFO within a queue: same arrival time, the lower chat id first",
        (SUPPORT,),
        (chat("c2", "support", 1), chat("c1", "support", 1)),
        (agent("alice"),),
        ("c1 → alice",),
    ),
    Row(
        "FIFO across queues of one priority: the earlier chat of either queue first",
        (SUPPORT, SALES),
        (chat("c1", "support", 2), chat("c2", "sales", 1)),
        (agent("alice"),),
        ("c2 → alice",),
    ),
    Row(
        "FIFO across queues of one priority: interleaved by arrival",
        (SUPPORT, SALES),
        (chat("s1", "support", 1), chat("s2", "support", 3), chat("t1", "sales", 2), chat("t2", "sales", 4)),
        (agent("a1", idle_since=1), agent("a2", idle_since=2), agent("a3", idle_since=3), agent("a4", idle_since=4)),
        ("s1 → a1", "t1 → a2", "s2 → a3", "t2 → a4"),
    ),
    # -- priority across queues ------------------------------------------------------------------
    Row(
        "priority: a lower number is served first though its chat arrived later",
        (SUPPORT, q("urgent", priority=0)),
        (chat("c1", "support", 1), chat("c2", "urgent", 50)),
        (agent("alice"),),
        ("c2 → alice",),
    ),
    Row(
        "priority 0, then 1, then 2, whatever the arrival order",
        (q("p0", priority=0), SUPPORT, LOW),
        (chat("low", "low", 1), chat("mid", "support", 2), chat("top", "p0", 3)),
        (agent("alice", max_chats=3),),
        ("top → alice", "mid → alice", "low → alice"),
    ),
    Row(
        "priority: the higher queue takes the only agent, the lower one waits",
        (VIP, q("plain")),
        (chat("c1", "plain", 1), chat("c2", "vip", 2)),
        (agent("alice", "vip"),),
        ("c2 → alice",),
    ),
    Row(
        "priority: a higher-priority chat no agent can take does not hold up a lower one",
        (VIP, SUPPORT),
        (chat("c1", "vip", 1), chat("c2", "support", 2)),
        (agent("alice"),),
        ("c2 → alice",),
    ),
    # -- skills ----------------------------------------------------------------------------------
    Row(
        "skills: an agent needs every skill of the queue (one of two is not enough)",
        (BILLING,),
        (chat("c1", "billing", 1),),
        (agent("alice", "english"),),
        (),
    ),
    Row(
        "skills: an agent with every skill qualifies",
        (BILLING,),
        (chat("c1", "billing", 1),),
        (agent("alice", "english", "billing"),),
        ("c1 → alice",),
    ),
    Row(
        "skills: an agent with extra skills qualifies",
        (ENGLISH,),
        (chat("c1", "english", 1),),
        (agent("alice", "english", "billing", "french"),),
        ("c1 → alice",),
    ),
    Row(
        "skills: a queue with none takes any agent",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (agent("alice", "french"),),
        ("c1 → alice",),
    ),
    Row(
        "skills: the qualified agent gets it, though an unqualified one waited longer",
        (BILLING,),
        (chat("c1", "billing", 1),),
        (agent("bob", "english", idle_since=1), agent("alice", "english", "billing", idle_since=90)),
        ("c1 → alice",),
    ),
    Row(
        "skills: a chat nobody qualifies for waits, a later chat of another queue is served",
        (BILLING, ENGLISH),
        (chat("c1", "billing", 1), chat("c2", "english", 2)),
        (agent("alice", "english"),),
        ("c2 → alice",),
    ),
    Row(
        "greedy in service order: the longest idle generalist takes the first chat, the specialist one waits",
        (ENGLISH, BILLING),
        (chat("c1", "english", 1), chat("c2", "billing", 2)),
        (agent("bill", "english", "billing", idle_since=1), agent("eve", "english", idle_since=2)),
        ("c1 → bill",),
    ),
    # -- readiness --------------------------------------------------------------------------------
    Row("never an agent who is NOT_READY", (SUPPORT,), (chat("c1", "support", 1),), (agent("alice", ready=False),), ()),
    Row(
        "never an agent INTERRUPTED by a voice call",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (agent("alice", interrupted=True, max_chats=3),),
        (),
    ),
    Row(
        "NOT_READY and INTERRUPTED agents are passed over for a READY one who waited less",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (
            agent("alice", ready=False, idle_since=1),
            agent("bob", interrupted=True, idle_since=2),
            agent("carol", idle_since=50),
        ),
        ("c1 → carol",),
    ),
    # -- capacity ---------------------------------------------------------------------------------
    Row(
        "never an agent at max_chats",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (agent("alice", max_chats=2, chats=2),),
        (),
    ),
    Row(
        "never an agent over max_chats (max lowered while they chat)",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (agent("alice", max_chats=1, chats=3),),
        (),
    ),
    Row(
        "offered chats count: one active and one ringing fill a max of 2",
        (SUPPORT, SALES),
        (chat("c1", "support", 1),),
        (agent("alice", max_chats=2, chats=2, ringing=("sales",)),),
        (),
    ),
    Row(
        "offers made in this decision count: 3 queues' chats, room for 2",
        (SUPPORT, SALES, LOW),
        (chat("c1", "support", 1), chat("c2", "sales", 2), chat("c3", "low", 3)),
        (agent("alice", max_chats=2),),
        ("c1 → alice", "c2 → alice"),
    ),
    Row(
        "an agent with room takes another queue's chat while one rings",
        (SUPPORT, SALES),
        (chat("c1", "sales", 1),),
        (agent("alice", max_chats=3, chats=1, ringing=("support",)),),
        ("c1 → alice",),
    ),
    Row(
        "max_chats 0: never offered",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (agent("alice", max_chats=0),),
        (),
    ),
    # -- which agent ----------------------------------------------------------------------------
    Row(
        "the longest idle agent first (since their last offer)",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (agent("alice", idle_since=50), agent("bob", idle_since=10)),
        ("c1 → bob",),
    ),
    Row(
        "never offered counts as idle longest",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (agent("alice", idle_since=5), agent("zed", idle_since=0)),
        ("c1 → zed",),
    ),
    Row(
        "equally idle: the one with fewer chats",
        (SUPPORT, SALES),
        (chat("c1", "support", 1),),
        (agent("alice", max_chats=3, chats=1, idle_since=10), agent("bob", max_chats=3, idle_since=10)),
        ("c1 → bob",),
    ),
    Row(
        "equally idle with as many chats: the lower id",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (agent("bob", idle_since=10), agent("alice", idle_since=10)),
        ("c1 → alice",),
    ),
    Row(
        "idle time comes before the number of chats",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (agent("alice", max_chats=3, chats=2, idle_since=10), agent("bob", max_chats=3, idle_since=20)),
        ("c1 → alice",),
    ),
    Row(
        "an agent just offered goes to the back: two queues' chats go to two agents",
        (SUPPORT, SALES),
        (chat("c1", "support", 1), chat("c2", "sales", 2)),
        (agent("alice", max_chats=2, idle_since=10), agent("bob", max_chats=2, idle_since=20)),
        ("c1 → alice", "c2 → bob"),
    ),
    Row(
        "round robin over the free agents, then around again (other queues)",
        (SUPPORT, SALES),
        (chat("s1", "support", 1), chat("s2", "support", 2), chat("t1", "sales", 3), chat("t2", "sales", 4)),
        (agent("alice", max_chats=2, idle_since=10), agent("bob", max_chats=2, idle_since=20)),
        ("s1 → alice", "s2 → bob", "t1 → alice", "t2 → bob"),
    ),
    # -- one ringing offer per agent per queue ----------------------------------------------------
    Row(
        "one ringing offer per agent per queue: the second chat of it goes to another agent",
        (SUPPORT,),
        (chat("c1", "support", 1), chat("c2", "support", 2)),
        (agent("alice", max_chats=3, idle_since=1), agent("bob", max_chats=3, idle_since=2)),
        ("c1 → alice", "c2 → bob"),
    ),
    Row(
        "one ringing offer per agent per queue: with nobody else, the second chat waits",
        (SUPPORT,),
        (chat("c1", "support", 1), chat("c2", "support", 2)),
        (agent("alice", max_chats=3),),
        ("c1 → alice",),
    ),
    Row(
        "an agent already ringing from a queue gets none of it, but another queue's",
        (SUPPORT, SALES),
        (chat("c1", "support", 1), chat("c2", "sales", 2)),
        (agent("alice", max_chats=3, chats=1, ringing=("support",)),),
        ("c2 → alice",),
    ),
    Row(
        "the queue's chat passes the ringing agent over for the next in idle order",
        (SUPPORT,),
        (chat("c1", "support", 1),),
        (agent("alice", max_chats=3, chats=1, idle_since=1, ringing=("support",)), agent("bob", idle_since=50)),
        ("c1 → bob",),
    ),
    # -- a rejected chat goes to the next agent ----------------------------------------------------
    Row(
        "a chat declined by the longest idle agent goes to the next",
        (SUPPORT,),
        (chat("c1", "support", 1, declined=("alice",)),),
        (agent("alice", idle_since=1), agent("bob", idle_since=50)),
        ("c1 → bob",),
    ),
    Row(
        "a chat declined by its only agent waits; the queue's next chat goes to them",
        (SUPPORT,),
        (chat("c1", "support", 1, declined=("alice",)), chat("c2", "support", 2)),
        (agent("alice", max_chats=3),),
        ("c2 → alice",),
    ),
    Row(
        "a chat declined by everyone who could take it waits, the others are served",
        (SUPPORT, SALES),
        (chat("c1", "support", 1, declined=("alice", "bob")), chat("c2", "sales", 2)),
        (agent("alice", idle_since=1), agent("bob", idle_since=2)),
        ("c2 → alice",),
    ),
    # -- bursts -----------------------------------------------------------------------------------
    Row(
        "a burst of one queue on one free agent: one offer, the rest wait",
        (SUPPORT,),
        tuple(chat(f"c{n}", "support", n) for n in range(1, 6)),
        (agent("alice", max_chats=5),),
        ("c1 → alice",),
    ),
    Row(
        "a burst over three queues on one free agent: one chat of each while room lasts",
        (SUPPORT, SALES, LOW),
        (chat("s1", "support", 1), chat("s2", "support", 2), chat("t1", "sales", 3), chat("u1", "low", 4)),
        (agent("alice", max_chats=2),),
        ("s1 → alice", "t1 → alice"),
    ),
    Row(
        "a burst shared by the free agents in idle order, the surplus waits",
        (SUPPORT,),
        tuple(chat(f"c{n}", "support", n) for n in range(1, 5)),
        (agent("a", idle_since=1), agent("b", idle_since=2), agent("c", idle_since=3)),
        ("c1 → a", "c2 → b", "c3 → c"),
    ),
]


@pytest.mark.parametrize("row", TABLE, ids=lambda r: r.situation)
def test_routing_table(row: Row) -> None:
    assert shown(run(row.queues, row.waiting, row.agents)) == row.offers


def test_an_offer_names_the_queue_key() -> None:
    offers = run((BILLING,), (chat("c1", "billing", 1),), (agent("alice", "english", "billing"),))
    assert offers == [Offer("c1", "alice", "billing")]


# -- properties over random snapshots ----------------------------------------------------------------

SKILLS = ("english", "billing", "french", "vip")
TIMES = (0.0, 10.0, 20.0, 30.0, 40.0)
"""Few distinct times, so that ties (equal arrival, equal idle time) are common."""


@dataclass(frozen=True)
class Snapshot:
    queues: dict[str, Queue]
    waiting: list[WaitingChat]
    agents: list[AgentSnapshot]

    def offers(self) -> list[Offer]:
        return decide(self.queues, self.waiting, self.agents, NOW)


MOSTLY = st.sampled_from((True, True, True, True, False))
"""True four times in five: most agents READY, most not interrupted, so that most draws make offers."""


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    queue_count = draw(st.integers(1, 4))
    queues = {
        f"q{n}": Queue(
            f"q{n}",
            draw(st.frozensets(st.sampled_from(SKILLS), max_size=1 if draw(MOSTLY) else 2)),
            draw(st.integers(0, 2)),
        )
        for n in range(queue_count)
    }
    keys = [*queues, "gone"]  # "gone": a queue removed since the chats were read
    agents = []
    for n in range(draw(st.integers(0 if not draw(MOSTLY) else 2, 8))):
        most = draw(st.sampled_from((0, 1, 1, 2, 2, 3, 4)))
        agents.append(
            AgentSnapshot(
                agent_id=f"a{n}",
                skills=draw(st.frozensets(st.sampled_from(SKILLS), min_size=1, max_size=4)),
                max_chats=most,
                chats=draw(st.integers(0, most + 1)) if draw(st.booleans()) else 0,
                last_offer_at=draw(st.sampled_from(TIMES)),
                ringing=draw(st.frozensets(st.sampled_from(keys), max_size=2)) if not draw(MOSTLY) else frozenset(),
                ready=draw(MOSTLY),
                interrupted=not draw(MOSTLY),
            )
        )
    ids = [a.agent_id for a in agents] or ["nobody"]
    waiting = [
        WaitingChat(
            f"c{n}",
            draw(st.sampled_from(keys)),
            draw(st.sampled_from(TIMES)),
            frozenset() if draw(MOSTLY) else draw(st.frozensets(st.sampled_from(ids), max_size=3)),
        )
        for n in range(draw(st.integers(0 if not draw(MOSTLY) else 3, 15)))
    ]
    order = draw(st.randoms(use_true_random=False))
    order.shuffle(agents)
    order.shuffle(waiting)
    return Snapshot(queues, waiting, agents)


PROPERTY = settings(max_examples=200, deadline=None)


def service_key(snapshot: Snapshot, waiting: WaitingChat) -> tuple[int, float]:
    return (snapshot.queues[waiting.queue].priority, waiting.queued_at)


def could_take(snapshot: Snapshot, offers: list[Offer], agent: AgentSnapshot, waiting: WaitingChat) -> bool:
    """After the decision: the agent may take the chat (skills, readiness, room, not ringing from
    its queue already, counting the offers just made, and did not decline it)."""
    queue = snapshot.queues[waiting.queue]
    mine = [o for o in offers if o.agent_id == agent.agent_id]
    ringing = agent.ringing | {o.queue for o in mine}
    return (
        agent.agent_id not in waiting.declined
        and agent.ready
        and not agent.interrupted
        and agent.chats + len(mine) < agent.max_chats
        and queue.skills <= agent.skills
        and queue.key not in ringing
    )


@PROPERTY
@given(snapshots())
def test_property_never_over_max_chats(snapshot: Snapshot) -> None:
    given_to = Counter(o.agent_id for o in snapshot.offers())
    for a in snapshot.agents:
        if given_to[a.agent_id]:
            assert a.chats + given_to[a.agent_id] <= a.max_chats, a


@PROPERTY
@given(snapshots())
def test_property_only_ready_uninterrupted_agents_with_every_skill(snapshot: Snapshot) -> None:
    agents = {a.agent_id: a for a in snapshot.agents}
    for offer in snapshot.offers():
        a = agents[offer.agent_id]
        assert a.ready and not a.interrupted, a
        assert snapshot.queues[offer.queue].skills <= a.skills, (offer, a)


@PROPERTY
@given(snapshots())
def test_property_no_chat_offered_twice_and_only_known_waiting_chats(snapshot: Snapshot) -> None:
    offers = snapshot.offers()
    assert len({o.chat_id for o in offers}) == len(offers)
    waiting = {w.chat_id: w for w in snapshot.waiting}
    for offer in offers:
        assert offer.chat_id in waiting
        assert offer.queue == waiting[offer.chat_id].queue
        assert offer.queue in snapshot.queues


@PROPERTY
@given(snapshots())
def test_property_at_most_one_ringing_offer_per_agent_per_queue(snapshot: Snapshot) -> None:
    offers = snapshot.offers()
    per_queue = Counter((o.agent_id, o.queue) for o in offers)
    assert max(per_queue.values(), default=0) <= 1
    ringing = {a.agent_id: a.ringing for a in snapshot.agents}
    for offer in offers:
        assert offer.queue not in ringing[offer.agent_id], "the agent rings from that queue already"


@PROPERTY
@given(snapshots())
def test_property_fifo_within_a_queue(snapshot: Snapshot) -> None:
    """No later chat of a queue is offered while an earlier one of it waits, unless the agent who got
    the later one had declined the earlier one (the only reason they could not take it)."""
    offers = snapshot.offers()
    offered = {o.chat_id: o.agent_id for o in offers}
    for key in snapshot.queues:
        line = sorted((w for w in snapshot.waiting if w.queue == key), key=lambda w: (w.queued_at, w.chat_id))
        for n, earlier in enumerate(line):
            if earlier.chat_id in offered:
                continue
            for later in line[n + 1 :]:
                receiver = offered.get(later.chat_id)
                assert receiver is None or receiver in earlier.declined, (
                    f"{earlier.chat_id} waits while {receiver} got {later.chat_id} of {key}"
                )


@PROPERTY
@given(snapshots())
def test_property_never_to_an_agent_who_declined_the_chat(snapshot: Snapshot) -> None:
    declined = {w.chat_id: w.declined for w in snapshot.waiting}
    for offer in snapshot.offers():
        assert offer.agent_id not in declined[offer.chat_id], offer


@PROPERTY
@given(snapshots())
def test_property_no_waiting_chat_is_passed_over_for_a_later_or_lower_one(snapshot: Snapshot) -> None:
    """FIFO within a priority and priority across queues: when a chat is left waiting, an agent who
    received a chat that comes after it in service order (lower priority, or same priority and later)
    could not have taken it."""
    offers = snapshot.offers()
    offered = {o.chat_id: o for o in offers}
    known = [w for w in snapshot.waiting if w.queue in snapshot.queues]
    agents = {a.agent_id: a for a in snapshot.agents}
    for later in (w for w in known if w.chat_id in offered):
        receiver = agents[offered[later.chat_id].agent_id]
        for earlier in known:
            if earlier.chat_id in offered or service_key(snapshot, earlier) >= service_key(snapshot, later):
                continue
            queue = snapshot.queues[earlier.queue]
            mine = {o.queue for o in offers if o.agent_id == receiver.agent_id}
            could = queue.skills <= receiver.skills and queue.key not in receiver.ringing | mine
            assert not could or receiver.agent_id in earlier.declined, (
                f"{earlier.chat_id} waits while {receiver.agent_id}, who could take it, got {later.chat_id}"
            )


@PROPERTY
@given(snapshots())
def test_property_no_chat_waits_while_an_agent_could_take_it(snapshot: Snapshot) -> None:
    offers = snapshot.offers()
    offered = {o.chat_id for o in offers}
    for left in (w for w in snapshot.waiting if w.queue in snapshot.queues and w.chat_id not in offered):
        assert not [a.agent_id for a in snapshot.agents if could_take(snapshot, offers, a, left)], left


@PROPERTY
@given(snapshots())
def test_property_each_offer_goes_to_the_longest_idle_agent_who_can_take_it(snapshot: Snapshot) -> None:
    """Replayed in order, each offer's agent is the first by (last offer, chats, id) among those who
    can take the chat then and did not decline it (an agent offered earlier in the decision was
    offered at NOW)."""
    offers = snapshot.offers()
    waiting = {w.chat_id: w for w in snapshot.waiting}
    for n, offer in enumerate(offers):
        before = offers[:n]

        def rank(a: AgentSnapshot, before: list[Offer] = before) -> tuple[float, int, str]:
            mine = sum(1 for o in before if o.agent_id == a.agent_id)
            return (NOW if mine else a.last_offer_at, a.chats + mine, a.agent_id)

        able = [a for a in snapshot.agents if could_take(snapshot, before, a, waiting[offer.chat_id])]
        assert offer.agent_id == min(able, key=rank).agent_id


@PROPERTY
@given(snapshots(), st.randoms(use_true_random=False))
def test_property_decide_is_deterministic(snapshot: Snapshot, shuffle: random.Random) -> None:
    """The same snapshot gives the same offers, in whatever order its agents and chats come."""
    first = snapshot.offers()
    assert decide(snapshot.queues, list(snapshot.waiting), list(snapshot.agents), NOW) == first
    agents, waiting = list(snapshot.agents), list(snapshot.waiting)
    shuffle.shuffle(agents)
    shuffle.shuffle(waiting)
    queues = dict(reversed(list(snapshot.queues.items())))
    assert decide(queues, waiting, agents, NOW) == first
