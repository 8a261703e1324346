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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


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


@dataclass(order=True)
class _Candidate:
    """An agent in the choosing heap, ordered by who should get the next chat."""

    last_offer_at: float
    chats: int
    agent_id: str
    skills: frozenset[str] = field(compare=False)
    max_chats: int = field(compare=False)
    ringing: set[str] = field(compare=False)


def decide(
    queues: Mapping[str, Queue], waiting: Sequence[WaitingChat], agents: Sequence[AgentSnapshot], now: float
) -> list[Offer]:
    """The offers to make now. A chat of a queue the snapshot does not know (removed meanwhile) is
    left waiting."""
    heap = [
        _Candidate(a.last_offer_at, a.chats, a.agent_id, a.skills, a.max_chats, set(a.ringing))
        for a in agents
        if a.can_take_chats
    ]
    heapq.heapify(heap)
    known = [chat for chat in waiting if chat.queue in queues]
    ordered = sorted(known, key=lambda c: (queues[c.queue].priority, c.queued_at, c.chat_id))
    offers: list[Offer] = []
    exhausted: set[str] = set()  # queues no agent can take more from in this decision
    for chat in ordered:
        if not heap:
            break
        if chat.queue in exhausted:
            continue
        queue = queues[chat.queue]
        chosen = _pop_first(heap, _fits(queue))
        if chosen is None:
            exhausted.add(chat.queue)  # agents only get busier within a decision: none will fit later
            continue
        offers.append(Offer(chat.chat_id, chosen.agent_id, queue.key))
        chosen.chats += 1
        chosen.last_offer_at = now
        chosen.ringing.add(queue.key)
        if chosen.chats < chosen.max_chats:
            heapq.heappush(heap, chosen)
    return offers


def _fits(queue: Queue) -> Callable[[_Candidate], bool]:
    return lambda candidate: queue.skills <= candidate.skills and queue.key not in candidate.ringing


def _pop_first(heap: list[_Candidate], fits: Callable[[_Candidate], bool]) -> _Candidate | None:
    """Pop the best candidate that fits; the ones passed over go back into the heap."""
    passed: list[_Candidate] = []
    found: _Candidate | None = None
    while heap:
        candidate = heapq.heappop(heap)
        if fits(candidate):
            found = candidate
            break
        passed.append(candidate)
    for candidate in passed:
        heapq.heappush(heap, candidate)
    return found
