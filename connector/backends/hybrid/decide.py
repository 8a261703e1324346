"""The routing decision of Hybrid Chat, as a pure function of a snapshot.

`decide(queues, waiting, agents, now)` returns the offers to make. It does no I/O and reads no
clock, so every rule is a row of a table test (tests/backends/hybrid/test_decide.py), and applying
the offers is a separate, atomic step (`state.offer`) that re-checks each one against Redis, so a
snapshot that went stale meanwhile can cost an offer but never make a wrong one.

The rules (the reference's routing engine, docs/hybrid.md):
- chats are served by queue priority (a lower number first), then first come, first served, across
  the queues of one priority;
- a chat goes to an agent who has every skill its queue requires, is chat READY, is not held by
  media blending (a voice call interrupts chat), and holds fewer chats than their `max_chats`
  (offered ones count);
- among those, the agent who has waited longest since their last offer, then the one with fewer
  chats, then the lower id (so equal snapshots give equal answers);
- an agent has at most one ringing offer per queue, so a burst cannot pile one queue's chats on the
  first agent to become free.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any


@dataclass(frozen=True)
class Queue:
    key: str
    """`integration:name`, unique across integrations."""
    skills: frozenset[str] = frozenset()
    priority: int = 1


@dataclass(frozen=True)
class WaitingChat:
    chat_id: str
    queue: str
    """The queue's key."""
    queued_at: float
    declined: frozenset[str] = frozenset()
    """Agents who rejected this chat a moment ago: it goes to the next agent, not back to them."""


@dataclass(frozen=True)
class AgentSnapshot:
    agent_id: str
    skills: frozenset[str] = frozenset()
    max_chats: int = 1
    chats: int = 0
    """Chats offered to or accepted by the agent and not closed."""
    last_offer_at: float = 0.0
    ringing: frozenset[str] = frozenset()
    """Keys of the queues the agent has a ringing offer from."""
    ready: bool = True
    interrupted: bool = False

    @property
    def can_take_chats(self) -> bool:
        return self.ready and not self.interrupted and self.chats < self.max_chats


@dataclass(frozen=True)
class Offer:
    chat_id: str
    agent_id: str
    queue: str


@dataclass
class _Agent:
    """An agent as the decision goes: their chats and last offer change with each offer they get."""

    agent_id: str
    skills: frozenset[str]
    max_chats: int
    chats: int
    last_offer_at: float
    ringing: set[str]
    version: int = 0

    def key(self) -> tuple[float, int, str, int]:
        """Who should get the next chat first: the longest since their last offer, then fewer chats,
        then the id; the version tells a current heap entry from a stale one."""
        return (self.last_offer_at, self.chats, self.agent_id, self.version)


def decide(
    queues: Mapping[str, Queue], waiting: Sequence[WaitingChat], agents: Sequence[AgentSnapshot], now: float
) -> list[Offer]:
    """The offers to make now. A chat of a queue the snapshot does not know (removed meanwhile) is
    left waiting.

    One heap per queue holds the agents who may take its chats (skills, free slot, not ringing from
    it), keyed by who should go first; an agent who gets an offer is pushed again with their new key,
    and their older entries in other heaps are skipped when met (a version per agent). A queue whose
    heap runs dry takes no more chats in this decision: agents only get busier within it."""
    free = {
        a.agent_id: _Agent(a.agent_id, a.skills, a.max_chats, a.chats, a.last_offer_at, set(a.ringing))
        for a in agents
        if a.can_take_chats
    }
    # Skills do not change within a decision: each agent's queues by skill, worked out once.
    by_skills: dict[str, list[Queue]] = {
        agent.agent_id: [queue for queue in queues.values() if queue.skills <= agent.skills] for agent in free.values()
    }
    heaps: dict[str, list[tuple[float, int, str, int]]] = {key: [] for key in queues}
    for agent in free.values():
        if agent.chats < agent.max_chats:
            entry = agent.key()
            for queue in by_skills[agent.agent_id]:
                if queue.key not in agent.ringing:
                    heaps[queue.key].append(entry)
    for heap in heaps.values():
        heapq.heapify(heap)
    offers: list[Offer] = []
    for chat in _by_turn(queues, waiting, heaps):
        queue = queues[chat.queue]
        chosen = _pop_current(heaps[queue.key], free, queue, chat.declined)
        if chosen is None:
            continue
        offers.append(Offer(chat.chat_id, chosen.agent_id, queue.key))
        chosen.chats += 1
        chosen.last_offer_at = now
        chosen.ringing.add(queue.key)
        chosen.version += 1
        if chosen.chats < chosen.max_chats:
            entry = chosen.key()
            for other in by_skills[chosen.agent_id]:
                if other.key not in chosen.ringing:
                    heapq.heappush(heaps[other.key], entry)
    return offers


def _by_turn(
    queues: Mapping[str, Queue], waiting: Sequence[WaitingChat], heaps: Mapping[str, list[Any]]
) -> Iterator[WaitingChat]:
    """The chats in serving order (priority, then arrival, then id), skipping the rest of a queue
    once no agent can take its chats: the work follows the offers made, not the chats waiting."""
    by_queue: dict[str, list[WaitingChat]] = {key: [] for key in queues}
    for chat in waiting:
        bucket = by_queue.get(chat.queue)
        if bucket is not None:
            bucket.append(chat)
    turns: list[tuple[int, float, str, str, int]] = []
    for key, chats in by_queue.items():
        if not chats:
            continue
        # By arrival, then id; a queue read from Redis is in that order already, so this is linear.
        chats.sort(key=_ARRIVAL)
        turns.append((queues[key].priority, chats[0].queued_at, chats[0].chat_id, key, 0))
    heapq.heapify(turns)
    while turns:
        _priority, _at, _chat, key, index = heapq.heappop(turns)
        if not heaps[key]:
            continue  # no agent left for this queue: its other chats wait for the next decision
        chats = by_queue[key]
        yield chats[index]
        if index + 1 < len(chats):
            following = chats[index + 1]
            heapq.heappush(turns, (queues[key].priority, following.queued_at, following.chat_id, key, index + 1))


_ARRIVAL = attrgetter("queued_at", "chat_id")


def _fits(queue: Queue, agent: _Agent) -> bool:
    return queue.skills <= agent.skills and queue.key not in agent.ringing and agent.chats < agent.max_chats


def _pop_current(
    heap: list[tuple[float, int, str, int]], agents: dict[str, _Agent], queue: Queue, declined: frozenset[str]
) -> _Agent | None:
    """The first agent of the heap whose entry is current, who still fits the queue and has not just
    declined this chat (those stay in the heap for the queue's next chat)."""
    passed: list[tuple[float, int, str, int]] = []
    found = None
    while heap:
        entry = heapq.heappop(heap)
        agent = agents[entry[2]]
        if agent.version != entry[3] or not _fits(queue, agent):
            continue  # stale or no longer fitting: dropped
        if declined and agent.agent_id in declined:
            passed.append(entry)
            continue
        found = agent
        break
    for entry in passed:
        heapq.heappush(heap, entry)
    return found
