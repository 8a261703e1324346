"""The router: snapshot → `decide` → atomic offers, whenever something changed, one pass at a time.

Anything that can make an offer possible (a chat queued, an agent READY, a slot freed, an offer
returned) calls `request_route`: it raises a flag and runs a pass if no other process is routing;
the process that holds the lock runs again while the flag was raised meanwhile, so no change waits
for a timer. `tick` (every worker, a few times a second, beside the retry poll) makes ringing offers
that timed out go to the next agent (RONA) and catches a request whose pass raced the lock.

A pass reads only what can be offered: the READY agents, and per queue as many waiting chats as
those agents have free slots. Offers are applied one by one by `HybridState.offer`, which re-checks
each against Redis, so a stale snapshot costs an offer, never a wrong one.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import suppress
from dataclasses import replace
from functools import partial

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from connector.backends.hybrid import stream
from connector.backends.hybrid.decide import AgentSnapshot, Offer, Queue, WaitingChat, decide
from connector.backends.hybrid.state import OFFERED, READY, Chat, HybridState, PlannedOffer, queue_key
from connector.backends.hybrid.views import chat_view
from connector.blending.chat_events import publish_chat_ready
from connector.config.model import Config, EntryPoint, Integration
from connector.store import keys, replies
from connector.store.tokens import DELETE_IF_HELD

log = logging.getLogger(__name__)

LOCK_SECONDS = 10.0
"""Longest a routing pass may hold the lock; a pass takes milliseconds, a crashed holder this long."""
MAX_PASSES = 20
"""Passes one caller runs back to back while requests keep coming (then the next caller or tick)."""
SWEEP_SECONDS = 1.0
"""A pass runs at least this often, across all workers, whether or not anything asked for one."""


def hybrid_queues(config: Config) -> dict[str, tuple[Integration, EntryPoint]]:
    """Every enabled queue of every `hybrid` integration, by its key."""
    return {
        queue_key(integration.name, entry_point.name): (integration, entry_point)
        for integration in config.integrations
        if integration.type == "hybrid"
        for entry_point in integration.entry_points
        if entry_point.enabled
    }


def inactive_at(config: Config, chat: Chat, now: float) -> float | None:
    """When the chat ends if its customer says nothing after `now`: its queue's
    `inactivity_timeout_seconds` later (a disabled queue's chats go on, and so does their timeout);
    None when the queue has it off (0) or is gone."""
    integration = config.integration(chat.integration)
    queue = integration.entry_point(chat.queue) if integration else None
    seconds = queue.inactivity_timeout_seconds if queue else 0
    return now + seconds if seconds else None


# The lock and the request counter change together in scripts, so a pass costs two round trips
# besides its own work (taking the lock and reading what was asked; serving it and either going on
# or giving the lock back), not the eight of separate SET NX / GET / EVAL / GET / DEL calls.

# KEYS: the request counter, the lock. ARGV: token, lock ms, '1' to count a request first.
# Takes the lock and returns the counter's value, the requests a pass started now serves; false
# when another process holds the lock (it sees the request and runs again) or nothing is asked
# (the lock is given back at once).
_BEGIN = """
if ARGV[3] == '1' then redis.call('INCR', KEYS[1]) end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local asked = redis.call('GET', KEYS[1])
if not asked then redis.call('DEL', KEYS[2]) end
return asked
"""

# KEYS: the request counter, the lock. ARGV: the value the pass started from, token, lock ms,
# '1' if another pass may follow. A request made during the pass moved the counter on: it stays,
# and the next pass serves it (this caller's, with the lock kept and renewed, when it may go on;
# else the workers' tick). Returns the next pass's value, or false with the lock given back.
_FINISH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return false end
local asked = redis.call('GET', KEYS[1])
if asked and ARGV[4] == '1' then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return asked
end
redis.call('DEL', KEYS[2])
return false
"""


def request_route(redis: Redis, config: Config) -> list[Offer]:
    """Something changed: route now, or leave it to the pass that is running."""
    return _passes(redis, config, request=True)


def run_passes(redis: Redis, config: Config) -> list[Offer]:
    """Passes while requests are waiting, under the lock. A request is cleared only once a pass
    that started after it has finished, so a router killed mid-pass (or a Redis error) leaves it
    for the next pass (the workers' tick runs one)."""
    return _passes(redis, config, request=False)


def _passes(redis: Redis, config: Config, *, request: bool) -> list[Offer]:
    token = uuid.uuid4().hex
    lock_ms = int(LOCK_SECONDS * 1000)
    route_keys = [keys.hybrid_route_wanted(), keys.hybrid_router_lock()]
    asked = redis.register_script(_BEGIN)(keys=route_keys, args=[token, lock_ms, "1" if request else ""])
    made: list[Offer] = []
    passes = 0
    while asked:
        passes += 1
        try:
            made += route_once(redis, config)
        except BaseException:
            with suppress(RedisError):  # Redis down: the lock lapses on its own, and the first error is the one to see
                redis.register_script(DELETE_IF_HELD)(keys=[keys.hybrid_router_lock()], args=[token])
            raise
        more = "1" if passes < MAX_PASSES else ""
        asked = redis.register_script(_FINISH)(keys=route_keys, args=[asked, token, lock_ms, more])
    return made


def route_once(redis: Redis, config: Config, now: float | None = None) -> list[Offer]:
    """One pass: snapshot, decide, offer. Returns the offers made."""
    now = time.time() if now is None else now
    queues = hybrid_queues(config)
    state = HybridState(redis)
    # Most passes follow a close or an accept with nobody waiting: count the queues first, one round
    # trip, before reading every READY agent.
    depths = state.depths([(integration.name, entry_point.name) for integration, entry_point in queues.values()])
    occupied = {key: pair for (key, pair), depth in zip(queues.items(), depths, strict=True) if depth}
    if not occupied:
        return []
    agents = _snapshot_agents(state)
    if not agents:
        return []
    free = sum(max(0, a.max_chats - a.chats) for a in agents if a.can_take_chats)
    if free == 0:
        return []
    heads = [
        (chat_id, key, queued_at)
        for key, (integration, entry_point) in occupied.items()
        for chat_id, queued_at in state.waiting(integration.name, entry_point.name, free)
    ]
    declined = state.declined([chat_id for chat_id, _key, _at in heads])
    waiting = [WaitingChat(chat_id, key, at, declined.get(chat_id, frozenset())) for chat_id, key, at in heads]
    decided = decide(
        {key: Queue(key, frozenset(ep.skills), ep.priority) for key, (_i, ep) in queues.items()}, waiting, agents, now
    )
    # Each offer writes its agent's `chat_offered` itself, so the chat is read first: what the event
    # shows (the customer, the channel) does not change while it waits.
    found = {chat.chat_id: chat for chat in state.chats([offer.chat_id for offer in decided])}
    planned, kept = [], []
    for offer in decided:
        chat = found.get(offer.chat_id)
        if chat is None:
            continue  # closed and expired meanwhile
        integration, entry_point = queues[offer.queue]
        expires = now + entry_point.offer_timeout_seconds
        ringing = replace(chat, state=OFFERED, agent=offer.agent_id, offered_at=now, offer_expires_at=expires)
        event = stream.encoded("chat_offered", chat_id=chat.chat_id, chat=chat_view(ringing))
        planned.append(PlannedOffer(chat.chat_id, offer.agent_id, integration.name, entry_point.name, expires, event))
        kept.append((offer, chat))
    made = []
    for (offer, chat), ok in zip(kept, state.offer_all(planned, now), strict=True):
        if ok:
            made.append(offer)
            log.info(
                "chat offered", extra={"conversation": chat.thread_id, "chat": chat.chat_id, "agent": offer.agent_id}
            )
    return made


def _snapshot_agents(state: HybridState) -> list[AgentSnapshot]:
    return [
        AgentSnapshot(
            agent_id=agent.agent_id,
            skills=frozenset(json.loads(agent.settings.get("skills") or "[]")),
            max_chats=int(agent.settings.get("max_chats") or 1),
            chats=agent.chats,
            last_offer_at=float(agent.settings.get("last_offer_at") or 0.0),
            ringing=frozenset(name[len("offer:") :] for name in agent.settings if name.startswith("offer:")),
            interrupted=agent.interrupted,
        )
        for agent in state.ready_snapshot()
        if agent.settings.get("state") == READY
    ]


def expire_offers(redis: Redis, config: Config, now: float | None = None) -> list[str]:
    """Offers that rang out: the chat goes back to its queue (its place kept), the agent who let it
    ring goes chat NOT_READY with reason RONA, as Cisco does for voice. Returns the chats returned."""
    now = time.time() if now is None else now
    state = HybridState(redis)
    returned = []
    for chat_id in state.expired_offers(now):
        agent, _ = state.with_chat(chat_id, partial(_ring_out, state=state, now=now))
        if agent is not None:
            returned.append(chat_id)
            log.info("offer rang out (RONA)", extra={"chat": chat_id, "agent": agent})
    return returned


def _ring_out(pipe: Pipeline, chat: Chat | None, *, state: HybridState, now: float) -> str | None:
    """The chat back in its queue, its agent NOT_READY (RONA), their desktop and media blending told:
    one transaction on the unchanged chat (`with_chat`), so a crash never leaves an agent NOT_READY
    unaware. Returns the agent, or None when the offer is not (or no longer) ringing out."""
    if chat is None or chat.state != OFFERED or chat.agent is None or (chat.offer_expires_at or 0) > now:
        return None
    state.give_back(chat, chat.agent, rona=True, client=pipe)
    stream.queue(pipe, chat.agent, "offer_withdrawn", chat_id=chat.chat_id, reason="timeout")
    stream.queue(pipe, chat.agent, "state_changed", chat_state="NOT_READY", reason="RONA")
    publish_chat_ready(pipe, chat.agent, False)
    return chat.agent


def tick(redis: Redis, config: Config) -> None:
    """A worker's periodic check: rung-out offers, a routing request that found the lock taken,
    agents a voice call has just interrupted or released (their desktops hear it), and a pass at
    least every SWEEP_SECONDS for what changes without an event (a rejection that lapsed)."""
    if not hybrid_queues(config):
        return
    if expire_offers(redis, config) or announce_interruptions(redis):
        redis.incr(keys.hybrid_route_wanted())  # a chat back in its queue, an agent free again
    if redis.set(keys.hybrid_route_sweep(), "1", nx=True, px=int(SWEEP_SECONDS * 1000)):
        redis.incr(keys.hybrid_route_wanted())
    if redis.exists(keys.hybrid_route_wanted()):
        run_passes(redis, config)


def announce_interruptions(redis: Redis) -> set[str]:
    """Media blending holds an agent from chat while a voice call has them (`keys.chat_interrupted`);
    tell each agent whose hold began or ended since the last look, once (the last seen set is kept
    in Redis and swapped atomically, so two workers never announce one change twice). Returns the
    agents whose hold ended."""
    now = {m.decode() for m in replies.bytes_set(redis.smembers(keys.chat_interrupted()))}
    pipe = redis.pipeline(transaction=True)
    pipe.smembers(keys.hybrid_interrupted_seen())
    pipe.delete(keys.hybrid_interrupted_seen())
    if now:
        pipe.sadd(keys.hybrid_interrupted_seen(), *now)
    seen = {m.decode() for m in replies.execute(pipe)[0]}
    for agent in sorted(now - seen):
        stream.publish(redis, agent, "state_changed", chat_state="INTERRUPTED", reason="voice call")
    released = seen - now
    state = HybridState(redis)
    for agent in sorted(released):
        chat_state = state.agent(agent).get("state") or "NOT_READY"  # what the agent chose stands again
        stream.publish(redis, agent, "state_changed", chat_state=chat_state, reason="voice call ended")
    return released
