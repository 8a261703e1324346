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
from itertools import islice
from operator import attrgetter, lt
from typing import Any, NamedTuple


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


class Offer(NamedTuple):
    """A tuple rather than a frozen dataclass: a decision makes hundreds, and a tuple is made in a
    third of the time."""

    chat_id: str
    agent_id: str
    queue: str


@dataclass(slots=True)
class _Offered:
    """An agent who got an offer in this decision: their chats and ringing queues as it goes. Only
    those agents are copied; the others are read from their snapshot as they are."""

    queues: list[str]
    """The keys of the queues whose skills the agent has."""
    max_chats: int
    chats: int
    ringing: set[str]
    version: int = 0
    """Bumped with each offer: a heap entry of an older version is stale."""


def decide(
    queues: Mapping[str, Queue], waiting: Sequence[WaitingChat], agents: Sequence[AgentSnapshot], now: float
) -> list[Offer]:
    """The offers to make now. A chat of a queue the snapshot does not know (removed meanwhile) is
    left waiting.

    One heap per queue holds the agents who may take its chats (skills, free slot, not ringing from
    it), keyed by who should go first: (last offer, chats, id, version). An agent who gets an offer is
    pushed again with their new key, and their older entries in other heaps are skipped when met. A
    queue whose heap runs dry takes no more chats in this decision: agents only get busier within it.
    The work is linear in the chats and agents, then a few heap operations per offer made."""
    free = {a.agent_id: a for a in agents if a.can_take_chats}
    # Skills do not change within a decision: the queues of each set of skills, worked out once
    # (agents share a handful of sets).
    queues_of_skills: dict[frozenset[str], list[str]] = {}
    heaps: dict[str, list[tuple[float, int, str, int]]] = {key: [] for key in queues}
    for agent in free.values():
        fitting = queues_of_skills.get(agent.skills)
        if fitting is None:
            fitting = queues_of_skills[agent.skills] = [q.key for q in queues.values() if q.skills <= agent.skills]
        entry = (agent.last_offer_at, agent.chats, agent.agent_id, 0)
        for key in fitting:
            if key not in agent.ringing:
                heaps[key].append(entry)
    for heap in heaps.values():
        heapq.heapify(heap)
    offered: dict[str, _Offered] = {}
    offers: list[Offer] = []
    for chat in _by_turn(queues, waiting, heaps):
        agent_id = _pop_current(heaps[chat.queue], offered, chat.declined)
        if agent_id is None:
            continue
        offers.append(Offer(chat.chat_id, agent_id, chat.queue))
        chosen = offered.get(agent_id)
        if chosen is None:
            snapshot = free[agent_id]
            chosen = offered[agent_id] = _Offered(
                queues_of_skills[snapshot.skills], snapshot.max_chats, snapshot.chats, set(snapshot.ringing)
            )
        chosen.chats += 1
        chosen.ringing.add(chat.queue)
        chosen.version += 1
        if chosen.chats < chosen.max_chats:
            entry = (now, chosen.chats, agent_id, chosen.version)
            for key in chosen.queues:
                if key not in chosen.ringing:
                    heapq.heappush(heaps[key], entry)
    return offers


def _by_turn(
    queues: Mapping[str, Queue], waiting: Sequence[WaitingChat], heaps: Mapping[str, list[Any]]
) -> Iterator[WaitingChat]:
    """The chats in serving order (priority, then arrival, then id), skipping the rest of a queue
    once no agent can take its chats: the work follows the offers made, not the chats waiting."""
    # Only the queues some agent can take chats of: the others' chats wait for the next decision.
    by_queue: dict[str, list[WaitingChat]] = {key: [] for key in queues if heaps[key]}
    for chat in waiting:
        bucket = by_queue.get(chat.queue)
        if bucket is not None:
            bucket.append(chat)
    turns: list[tuple[int, float, str, str, int]] = []
    for key, chats in by_queue.items():
        if not chats:
            continue
        _in_arrival_order(chats)
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
_QUEUED_AT = attrgetter("queued_at")


def _in_arrival_order(chats: list[WaitingChat]) -> None:
    """Sorts `chats` by arrival, then id. A queue read from Redis is in that order already: that is
    checked with one pass in C, cheaper than even a linear sort's key per chat; a tie falls back to
    the sort, which breaks it by id."""
    arrivals = list(map(_QUEUED_AT, chats))
    if not all(map(lt, arrivals, islice(arrivals, 1, None))):
        chats.sort(key=_ARRIVAL)


def _pop_current(
    heap: list[tuple[float, int, str, int]], offered: Mapping[str, _Offered], declined: frozenset[str]
) -> str | None:
    """The id of the first agent of the heap whose entry is current and who has not just declined
    this chat (those stay in the heap for the queue's next chat). A current entry still fits the
    queue: an entry is pushed only while the agent fits (skills, a free slot, not ringing from the
    queue), and any offer, the only change within a decision, makes the agent's older entries stale."""
    passed: list[tuple[float, int, str, int]] = []
    found = None
    while heap:
        entry = heapq.heappop(heap)
        agent_id = entry[2]
        current = offered.get(agent_id)
        if entry[3] != (current.version if current is not None else 0):
            continue  # stale: dropped
        if declined and agent_id in declined:
            passed.append(entry)
            continue
        found = agent_id
        break
    for entry in passed:
        heapq.heappush(heap, entry)
    return found
