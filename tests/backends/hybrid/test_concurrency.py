"""The router under concurrency: 200 chats and 50 agents (various skills and max_chats), routed by
concurrent routers while agents accept, reject, close and let offers ring out.

(a) Threads of one process call `request_route`, `run_passes` and `route_once` (the last bypasses the
    lock on purpose: only the scripts' re-checks keep the offers right) side by side.
(b) Real worker processes route, from their sweeper's tick (connector/relay/sweeper.py →
    `backends.tick` → `router.tick`); this process only raises the routing flag, as a web process
    whose request found the lock taken. One worker is killed with SIGKILL in the middle of the load
    while it holds the router lock (inside `run_passes`): the others route again once it lapses.

A sampler reads every router key in one MULTI (a consistent moment) in a tight loop and checks the
invariants (`check`); the same check runs at the end, with the end's stricter rules. Six "sleepy"
agents never answer: their offers ring out (RONA), they go NOT_READY for good, and the chat must be
offered to another agent.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis as redis_lib
from rq import Worker

from connector.backends.hybrid import router
from connector.backends.hybrid.router import expire_offers, request_route, route_once, run_passes
from connector.backends.hybrid.state import ACTIVE, CLOSED, OFFERED, QUEUED, READY, HybridState, queue_key
from connector.config.model import Config
from connector.settings import PROJECT_ROOT
from connector.store import keys
from tests.backends.hybrid.conftest import INTEGRATION, add_agent, add_chat
from tests.e2e.conftest import WorkerProcess
from tests.helpers import wait_for

CHATS = 200
AGENTS = 50
SLEEPY = 6
QUEUES = [
    {"name": "VIP", "skills": ["vip"], "priority": 0, "offer_timeout_seconds": 5},
    {"name": "English", "skills": ["english"], "priority": 1, "offer_timeout_seconds": 5},
    {"name": "Billing", "skills": ["english", "billing"], "priority": 1, "offer_timeout_seconds": 5},
    {"name": "General", "priority": 2, "offer_timeout_seconds": 5},
]
QUEUE_SHARE = {"VIP": 1, "English": 3, "Billing": 2, "General": 4}
STATES = (QUEUED, OFFERED, ACTIVE, CLOSED)
DECLINE_SECONDS = 5
"""A rejected chat is not offered back to its decliner for the queue's offer timeout."""


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    skills: tuple[str, ...]
    max_chats: int
    sleepy: bool
    """Never answers an offer: it rings out (RONA) and the agent stays NOT_READY."""


def agent_specs(rng: random.Random) -> list[AgentSpec]:
    specs = [
        AgentSpec(f"sleepy-{n}", ("english", "billing", "vip"), rng.randint(1, 3), sleepy=True) for n in range(SLEEPY)
    ]
    for n in range(AGENTS - SLEEPY):
        skills = [s for s, share in (("english", 0.85), ("billing", 0.4), ("vip", 0.25)) if rng.random() < share]
        if n < 3:
            skills = ["english", "billing", "vip"]  # every queue has agents who answer
        specs.append(AgentSpec(f"agent-{n:02d}", tuple(skills), rng.randint(1, 4), sleepy=False))
    return specs


# -- the invariants, from Redis -----------------------------------------------------------------------


@dataclass
class Moment:
    """Every router key at one moment (one MULTI)."""

    chats: dict[str, dict[str, str]]
    """Created chats: state, agent, queue."""
    holding: dict[str, set[str]]
    """Agent → their chats set (offered and active chats count against max_chats)."""
    agents: dict[str, dict[str, str]]
    ready: set[str]
    lines: dict[str, set[str]]
    """Queue name → the chats waiting in its ZSET."""
    ringing: set[str]
    """The offers ZSET."""


def read_moment(redis: redis_lib.Redis, chat_ids: list[str], agent_ids: list[str]) -> Moment:
    pipe = redis.pipeline(transaction=True)
    for chat_id in chat_ids:
        pipe.hmget(keys.hybrid_chat(chat_id), "state", "agent", "queue")
    for agent in agent_ids:
        pipe.smembers(keys.hybrid_agent_chats(agent))
        pipe.hgetall(keys.hybrid_agent(agent))
    pipe.smembers(keys.hybrid_ready())
    for spec in QUEUES:
        pipe.zrange(keys.hybrid_queue(INTEGRATION, spec["name"]), 0, -1)
    pipe.zrange(keys.hybrid_offers(), 0, -1)
    answers: list[Any] = pipe.execute()

    def text(values: Any) -> set[str]:
        return {v.decode() for v in values}

    chats = {}
    for chat_id, (state, agent, queue) in zip(chat_ids, answers, strict=False):
        chats[chat_id] = {
            "state": state.decode() if state else "",
            "agent": agent.decode() if agent else "",
            "queue": queue.decode() if queue else "",
        }
    rest = answers[len(chat_ids) :]
    holding, agents = {}, {}
    for n, agent in enumerate(agent_ids):
        holding[agent] = text(rest[2 * n])
        agents[agent] = {k.decode(): v.decode() for k, v in rest[2 * n + 1].items()}
    rest = rest[2 * len(agent_ids) :]
    lines = {spec["name"]: text(rest[1 + n]) for n, spec in enumerate(QUEUES)}
    return Moment(chats, holding, agents, text(rest[0]), lines, text(rest[-1]))


def check(moment: Moment, *, end: bool = False) -> list[str]:
    """What is wrong at this moment. At the end, a closed chat must have left its agent too (during
    the load, `close` frees the slot in a second script, so it may still count for a moment)."""
    wrong: list[str] = []
    held_by: dict[str, list[str]] = defaultdict(list)
    for agent, chats in moment.holding.items():
        for chat_id in chats:
            held_by[chat_id].append(agent)
        most = int(moment.agents[agent]["max_chats"])
        if len(chats) > most:
            wrong.append(f"{agent} holds {len(chats)} chats, max_chats {most}")
    queued_anywhere = {chat_id: [q for q, line in moment.lines.items() if chat_id in line] for chat_id in moment.chats}
    ringing_per_queue: Counter[tuple[str, str]] = Counter()
    for chat_id, chat in moment.chats.items():
        state, agent, holders = chat["state"], chat["agent"], held_by.get(chat_id, [])
        if state not in STATES:
            wrong.append(f"{chat_id} is lost: state {state!r}")
            continue
        if len(holders) > 1:
            wrong.append(f"{chat_id} is offered to or held by {holders} at once")
        if state in (OFFERED, ACTIVE):
            if holders != [agent]:
                wrong.append(f"{chat_id} {state} to {agent} but in the chats of {holders}")
            if queued_anywhere[chat_id]:
                wrong.append(f"{chat_id} {state} and waiting in {queued_anywhere[chat_id]}")
            if (chat_id in moment.ringing) != (state == OFFERED):
                wrong.append(f"{chat_id} {state}: in the offers ZSET {chat_id in moment.ringing}")
        if state == OFFERED:
            ringing_per_queue[(agent, chat["queue"])] += 1
        if state == QUEUED and (
            queued_anywhere[chat_id] != [chat["queue"]] or holders or agent or chat_id in moment.ringing
        ):
            wrong.append(f"{chat_id} queued: lines {queued_anywhere[chat_id]}, held by {holders}, agent {agent!r}")
        if state == CLOSED:
            if queued_anywhere[chat_id] or chat_id in moment.ringing:
                wrong.append(f"{chat_id} closed but still waiting or ringing")
            if end and holders:
                wrong.append(f"{chat_id} closed but still counts against {holders}")
    for (agent, queue), count in ringing_per_queue.items():
        if count > 1:
            wrong.append(f"{agent} has {count} offers ringing from {queue}")
    for agent, raw in moment.agents.items():
        if (raw.get("state") == READY) != (agent in moment.ready):
            wrong.append(f"{agent} is {raw.get('state')} and in the READY set: {agent in moment.ready}")
        for name, chat_id in raw.items():
            if not name.startswith("offer:") or chat_id not in moment.chats:
                continue  # (a chat created after the sampler listed the chats: the next moment has it)
            chat = moment.chats.get(chat_id, {})
            ok = chat.get("state") == OFFERED and chat.get("agent") == agent
            if not ok and not (chat.get("state") == CLOSED and not end):
                wrong.append(f"{agent} rings {chat_id} from {name[6:]} but the chat is {chat}")
    return wrong


def test_the_invariant_check_sees_each_kind_of_violation() -> None:
    """The sampler is only as good as `check`: each broken invariant, planted, is reported."""
    agents = {a: {"state": READY, "max_chats": "1"} for a in ("alice", "bob", "carol")}
    agents["carol"] = {"state": "NOT_READY", "max_chats": "3", f"offer:{INTEGRATION}:English": "c5"}
    moment = Moment(
        chats={
            "c1": {"state": OFFERED, "agent": "alice", "queue": "English"},
            "c2": {"state": QUEUED, "agent": "", "queue": "English"},
            "c3": {"state": "", "agent": "", "queue": ""},
            "c4": {"state": OFFERED, "agent": "carol", "queue": "English"},
            "c5": {"state": OFFERED, "agent": "carol", "queue": "English"},
            "c6": {"state": CLOSED, "agent": "bob", "queue": "General"},
        },
        holding={"alice": {"c1", "c2"}, "bob": {"c1", "c6"}, "carol": {"c4", "c5"}},
        agents=agents,
        ready={"alice", "bob", "carol"},
        lines={"VIP": set(), "English": {"c2"}, "Billing": set(), "General": set()},
        ringing={"c1", "c4", "c5"},
    )
    wrong = "\n".join(check(moment, end=True))
    for expected in (
        "alice holds 2 chats, max_chats 1",
        "c1 is offered to or held by ['alice', 'bob'] at once",
        "c2 queued: lines ['English'], held by ['alice']",
        "c3 is lost",
        "carol has 2 offers ringing from English",
        "carol is NOT_READY and in the READY set: True",
        "c6 closed but still counts against ['bob']",
    ):
        assert expected in wrong, wrong
    assert "c6 closed but still counts" not in "\n".join(check(moment)), "during the load: close's window"


# -- the load -----------------------------------------------------------------------------------------


@dataclass
class Load:
    """Chats arriving, agents answering, a sampler checking; `route` is what an agent's or a
    customer's change calls (request_route in process (a), the routing flag in (b))."""

    redis: redis_lib.Redis
    specs: list[AgentSpec]
    route: Callable[[], object]
    arrival_seconds: float
    seed: int
    created: list[str] = field(default_factory=list)
    accepts: Counter[str] = field(default_factory=Counter)
    sleepy_offered: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    samples: int = 0
    rejected: list[tuple[float, str, str]] = field(default_factory=list)
    """(when, agent, chat) of each reject."""
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> HybridState:
        return HybridState(self.redis)

    def count(self, name: str, counter: Counter[str] | None = None) -> None:
        with self.lock:
            (self.counts if counter is None else counter)[name] += 1

    def spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        def guarded() -> None:
            try:
                target(*args)
            except Exception as exc:  # reported by the test, not lost in a thread
                self.errors.append(f"{name}: {exc!r}")
                raise

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def start(self) -> None:
        state = self.state
        for spec in self.specs:
            add_agent(state, spec.agent_id, *spec.skills, max_chats=spec.max_chats)
        self.spawn("sampler", self.sample)
        self.spawn("arrivals", self.arrive)
        agents = list(self.specs)
        for n in range(4):
            self.spawn(f"desks-{n}", self.desks, agents[n::4], random.Random(self.seed + n))

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)

    def arrive(self) -> None:
        rng = random.Random(self.seed)
        names, shares = zip(*QUEUE_SHARE.items(), strict=True)
        for n in range(CHATS):
            chat_id = add_chat(self.state, f"chat-{n:03d}", rng.choices(names, shares)[0], at=time.time())
            with self.lock:
                self.created.append(chat_id)
            self.route()
            time.sleep(rng.uniform(0, 2 * self.arrival_seconds / CHATS))

    def sample(self) -> None:
        client = redis_lib.Redis(connection_pool=self.redis.connection_pool)
        agent_ids = [spec.agent_id for spec in self.specs]
        while not self.stop.is_set():
            with self.lock:
                chat_ids = list(self.created)
            wrong = check(read_moment(client, chat_ids, agent_ids))
            self.samples += 1
            if wrong and len(self.violations) < 50:
                self.violations.extend(wrong)

    def desks(self, specs: list[AgentSpec], rng: random.Random) -> None:
        """The desktops of some agents: an offer is answered after 20-300 ms (accept 85 %, reject 15 %:
        then the chat must go to another agent; a sleepy agent never answers), an accepted chat is
        closed after 0.2-1.5 s. An accept is sometimes sent twice, or by the wrong agent: both must
        be refused."""
        state = self.state
        plans: dict[tuple[str, str], tuple[float, str]] = {}
        back_at: dict[str, float] = {}
        while not self.stop.is_set():
            pipe = self.redis.pipeline(transaction=False)
            for spec in specs:
                pipe.smembers(keys.hybrid_agent_chats(spec.agent_id))
                pipe.hmget(keys.hybrid_agent(spec.agent_id), "state", "reason")
            found: list[Any] = pipe.execute()
            now = time.monotonic()
            for n, spec in enumerate(specs):
                agent = spec.agent_id
                mine = sorted(m.decode() for m in found[2 * n])
                agent_state, reason = found[2 * n + 1]
                if not spec.sleepy and agent_state == b"NOT_READY" and reason == b"RONA" and agent not in back_at:
                    back_at[agent] = now + 0.5  # a slow agent: READY again, as their desktop would
                    self.count("normal agents RONA")
                for chat in state.chats(mine):
                    if chat.agent != agent:
                        continue
                    if spec.sleepy:
                        if chat.state == OFFERED:
                            self.sleepy_offered[chat.chat_id].add(agent)
                        continue
                    if chat.state == OFFERED and (agent, chat.chat_id) not in plans:
                        plans[(agent, chat.chat_id)] = (now + rng.uniform(0.02, 0.3), "answer")
                    elif chat.state == ACTIVE and plans.get((agent, chat.chat_id), (0, ""))[1] != "close":
                        plans[(agent, chat.chat_id)] = (now + rng.uniform(0.2, 1.5), "close")
            for agent, at in list(back_at.items()):
                if at <= now:
                    spec = next(s for s in specs if s.agent_id == agent)
                    add_agent(state, agent, *spec.skills, max_chats=spec.max_chats)
                    del back_at[agent]
                    self.route()
            for (agent, chat_id), (at, action) in list(plans.items()):
                if at > now:
                    continue
                del plans[(agent, chat_id)]
                chat = state.chat(chat_id)
                if chat is None or chat.agent != agent:
                    continue
                if action == "close" and chat.state == ACTIVE:
                    state.close(chat, by="agent")
                    self.count("closes")
                    self.route()
                elif action == "answer" and chat.state == OFFERED:
                    if rng.random() < 0.15:
                        state.decline(chat, agent, DECLINE_SECONDS)  # as Desk.reject does
                        rejected_at = time.time()
                        if state.give_back(chat, agent, rona=False):
                            self.count("rejects")
                            with self.lock:
                                self.rejected.append((rejected_at, agent, chat_id))
                            self.route()
                        continue
                    if not state.accept(chat, agent, time.time()):
                        self.count("late accepts refused (rang out first)")
                        continue
                    self.count(chat_id, self.accepts)
                    if rng.random() < 0.2:
                        self.count("second accepts tried")
                        if state.accept(chat, agent, time.time()):
                            self.count(chat_id, self.accepts)  # must never happen
                    other = rng.choice(self.specs).agent_id
                    if rng.random() < 0.1 and other != agent:
                        self.count("wrong-agent accepts tried")
                        if state.accept(chat, other, time.time()):
                            self.count(chat_id, self.accepts)  # must never happen
            time.sleep(0.01)

    def all_closed(self) -> bool:
        if len(self.created) < CHATS:
            return False
        return all(chat.state == CLOSED for chat in self.state.chats(self.created))

    def history(self) -> dict[str, list[tuple[float, str, str]]]:
        """Per chat, what the agents' event streams tell: (at, agent, offered | timeout)."""
        found: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
        for spec in self.specs:
            for _id, data in self.redis.xrange(keys.hybrid_events(spec.agent_id)):
                event = json.loads(data[b"event"])
                if event["type"] == "chat_offered":
                    found[event["chat_id"]].append((event["at"], spec.agent_id, "offered"))
                elif event["type"] == "offer_withdrawn" and event["reason"] == "timeout":
                    found[event["chat_id"]].append((event["at"], spec.agent_id, "timeout"))
        return {chat_id: sorted(events) for chat_id, events in found.items()}

    def verify_end(self) -> dict[str, int]:
        """The end's checks; returns the counts to report."""
        assert not self.errors, self.errors
        assert not self.violations, self.violations[:20]
        assert self.samples > 50, f"only {self.samples} samples"
        agent_ids = [spec.agent_id for spec in self.specs]
        end = read_moment(self.redis, self.created, agent_ids)
        assert check(end, end=True) == []
        assert len(self.created) == CHATS
        assert {c["state"] for c in end.chats.values()} <= {ACTIVE, CLOSED, QUEUED}, "none lost, none ringing"
        assert max(self.accepts.values()) == 1, "no chat accepted twice"
        assert sum(1 for c in end.chats.values() if c["state"] == CLOSED) == len(self.accepts) == self.counts["closes"]
        sleepy = {spec.agent_id for spec in self.specs if spec.sleepy}
        history = self.history()
        for chat_id, events in history.items():
            offered = [agent for _at, agent, what in events if what == "offered"]
            for n, agent in enumerate(offered):
                if agent not in sleepy:
                    continue  # a sleepy agent's offer always rings out: the next must be someone else's
                following = offered[n + 1 : n + 2] or [end.chats[chat_id]["agent"]]  # (a kill may lose an event)
                assert following[0] != agent, f"{chat_id} rang out at {agent} and went back to them: {events}"
                assert end.chats[chat_id]["state"] == CLOSED
        for rejected_at, agent, chat_id in self.rejected:
            following = [(at, a) for at, a, what in history[chat_id] if what == "offered" and at > rejected_at]
            if not following:  # its next offer's event died with the killed router (agents read the state)
                assert end.chats[chat_id]["state"] == CLOSED, f"{chat_id} rejected by {agent}, never offered again"
                continue
            at, taker = following[0]
            assert taker != agent or at >= rejected_at + DECLINE_SECONDS - 0.5, (
                f"{chat_id} rejected by {agent} went back to them {at - rejected_at:.2f} s later"
            )
        for chat_id, rung in self.sleepy_offered.items():
            assert end.chats[chat_id]["agent"] not in rung, f"{chat_id} ended with a sleepy agent"
            assert end.chats[chat_id]["state"] == CLOSED
        for agent in sleepy:
            assert (end.agents[agent]["state"], end.agents[agent]["reason"]) == ("NOT_READY", "RONA")
            assert not end.holding[agent] and agent not in end.ready
        every = [what for events in history.values() for _at, _agent, what in events]
        return {
            "chats": len(self.created),
            "agents": len(self.specs),
            "offers": every.count("offered"),
            "ronas": every.count("timeout"),
            "chats rung out at sleepy agents": len(self.sleepy_offered),
            "accepts": sum(self.accepts.values()),
            **self.counts,
            "samples": self.samples,
        }


def report(name: str, numbers: dict[str, Any]) -> None:
    print(f"\n{name}: " + ", ".join(f"{k} {v}" for k, v in numbers.items()))


@pytest.fixture
def desk_config(hybrid_queues: Callable[..., None], runtime) -> Config:
    hybrid_queues(QUEUES)
    config: Config = runtime.config
    assert {queue_key(INTEGRATION, q["name"]) for q in QUEUES} <= set(router.hybrid_queues(config))
    return config


# -- (a) threads of one process -------------------------------------------------------------------------

EXPIRY_SHIFT = 3.5
"""(a) runs the expiry 3.5 s ahead of the clock: a 5 s offer rings out after 1.5 s."""


def test_threads_routing_side_by_side_keep_every_invariant(redis: redis_lib.Redis, desk_config: Config) -> None:
    started = time.monotonic()
    made: Counter[str] = Counter()
    ronas: list[str] = []
    load = Load(redis, agent_specs(random.Random(7)), lambda: request_route(redis, desk_config), 5.0, seed=11)

    def requester(rng: random.Random) -> None:
        while not load.stop.is_set():
            made["request_route"] += len(request_route(redis, desk_config))
            time.sleep(rng.uniform(0.005, 0.03))

    def passes() -> None:
        # As a worker's tick: a routing request of its own (the sweep's), then passes under the lock.
        # A request_route counts its request and takes the lock in one step, so run_passes finds
        # requests to serve only when something asks without routing (the tick, the expiry below).
        while not load.stop.is_set():
            redis.incr(keys.hybrid_route_wanted())
            made["run_passes"] += len(run_passes(redis, desk_config))
            time.sleep(0.01)

    def unlocked(rng: random.Random) -> None:
        while not load.stop.is_set():
            made["route_once (no lock)"] += len(route_once(redis, desk_config))
            time.sleep(rng.uniform(0.01, 0.05))

    def expiry() -> None:
        while not load.stop.is_set():
            returned = expire_offers(redis, desk_config, now=time.time() + EXPIRY_SHIFT)
            ronas.extend(returned)
            if returned:
                redis.set(keys.hybrid_route_wanted(), "1")  # as tick does
            time.sleep(0.05)

    load.start()
    for n in range(2):
        load.spawn(f"requester-{n}", requester, random.Random(100 + n))
        load.spawn(f"passes-{n}", passes)
        load.spawn(f"unlocked-{n}", unlocked, random.Random(200 + n))
    load.spawn("expiry", expiry)
    try:
        wait_for(load.all_closed, timeout=45, interval=0.2, what="every chat offered, accepted and closed")
    finally:
        load.finish()
    numbers = load.verify_end()
    assert numbers["ronas"] == len(ronas) >= SLEEPY
    assert all(made.values()), f"every kind of router made offers: {made}"
    report(
        "threads",
        {**numbers, **{f"offers by {k}": v for k, v in made.items()}, "seconds": round(time.monotonic() - started, 1)},
    )


# -- (b) real worker processes, one killed with SIGKILL ----------------------------------------------


@pytest.mark.long
def test_worker_processes_routing_with_one_killed_keep_every_invariant(
    redis: redis_lib.Redis, desk_config: Config, start_worker
) -> None:
    started, started_at = time.monotonic(), time.time()
    workers = [start_worker(wait=False) for _ in range(3)]
    victim = workers[0]
    wait_for(lambda: len(Worker.all(connection=redis)) >= 3, timeout=30, what="three workers to register")

    load = Load(redis, agent_specs(random.Random(8)), lambda: redis.set(keys.hybrid_route_wanted(), "1"), 10.0, seed=12)
    load.start()
    wait_for(lambda: len(load.created) >= CHATS // 2, timeout=30, what="half of the chats")
    token = kill_mid_pass(redis, victim, workers[1:])
    killed_at = time.time()
    time.sleep(0.2)
    died_holding = token is not None and redis.get(keys.hybrid_router_lock()) == token
    assert victim.process.poll() is not None
    assert died_holding, "the victim was killed holding the router lock, which outlives it"
    try:
        wait_for(load.all_closed, timeout=50, interval=0.2, what="every chat offered, accepted and closed")
    finally:
        load.finish()
    numbers = load.verify_end()
    assert numbers["ronas"] >= SLEEPY
    assert all(w.process.poll() is None for w in workers[1:]), "the other workers live on"
    resumed = min(
        at for events in load.history().values() for at, _a, what in events if what == "offered" and at > killed_at
    )
    assert resumed >= killed_at + router.LOCK_SECONDS - 1, "nobody routed while the dead router's lock held"
    report(
        "workers",
        {
            **numbers,
            "killed after (s)": round(killed_at - started_at, 1),
            "routing resumed after (s)": round(resumed - killed_at, 1),
            "seconds": round(time.monotonic() - started, 1),
        },
    )


def kill_mid_pass(redis: redis_lib.Redis, victim: WorkerProcess, others: list[WorkerProcess]) -> bytes | None:
    """SIGKILL the victim while it holds the router lock (inside `run_passes`). The other workers are
    paused (SIGSTOP) for a moment so that the only router that can take the lock is the victim, which
    is then frozen (SIGSTOP) every millisecond or so: frozen holding the lock, it is killed, else
    thawed. A pass holds the lock for a few round trips only, so sampling frozen moments catches it
    where watching it run would race its release. Returns the lock's token (None: never caught
    holding it; killed anyway)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for worker in others:
            os.killpg(worker.process.pid, signal.SIGSTOP)
        try:
            if redis.exists(keys.hybrid_router_lock()):
                continue  # a paused worker holds it: let it finish
            window = time.monotonic() + 1.0
            while time.monotonic() < window:
                os.killpg(victim.process.pid, signal.SIGSTOP)
                token: bytes | None = redis.get(keys.hybrid_router_lock())
                if token:
                    victim.kill()
                    return token
                os.killpg(victim.process.pid, signal.SIGCONT)
                time.sleep(0.001)
        finally:
            for worker in others:
                os.killpg(worker.process.pid, signal.SIGCONT)
        time.sleep(0.05)
    victim.kill()
    return None


# -- a router that dies mid-pass ---------------------------------------------------------------------

DIE_IN_PASS = """
import os, signal, sys
import redis
from connector.backends.hybrid import router
router.LOCK_SECONDS = 0.5  # a short lock: the test need not wait the 10 s a crashed holder costs
router.route_once = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)  # dies inside its pass
router.request_route(redis.Redis.from_url(sys.argv[1]), None)
"""


def test_a_router_killed_mid_pass_loses_no_routing_request(
    redis: redis_lib.Redis, redis_url: str, desk_config: Config
) -> None:
    state = HybridState(redis)
    add_agent(state, "alice", "english", max_chats=2)
    add_chat(state, "c1", "English", at=time.time())
    dying = subprocess.run([sys.executable, "-c", DIE_IN_PASS, redis_url], cwd=PROJECT_ROOT, timeout=30, check=False)
    assert dying.returncode == -signal.SIGKILL
    assert state.chat("c1").state == QUEUED
    time.sleep(0.6)  # its lock lapses
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and state.chat("c1").state == QUEUED:
        router.tick(redis, desk_config)  # what every worker's sweeper does, every 0.25 s
        time.sleep(0.25)
    assert state.chat("c1").state == OFFERED
