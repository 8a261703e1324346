"""Hybrid Chat's state in Redis: chats, queues, agents and offers, changed only by atomic scripts.

Each change that involves a chat and an agent is one Lua script that checks what it relies on and
changes everything together, so two workers can never offer one agent's last slot twice, never
offer one chat to two agents, and an accept can never race the offer's expiry (RONA): whichever
script runs first wins and the other sees it.

A chat's states: `queued` (in its queue's ZSET, offered to nobody) → `offered` (ringing at one agent,
in the offers ZSET) → `active` (accepted) → `closed`; an offer that is rejected or not answered in
time returns the chat to its queue at its first place (it keeps its `queued_at`). An `active` chat
of a queue with an inactivity timeout is also in the inactive ZSET, by when the customer's silence
ends it; every script that takes a chat out of `active` takes it out of there too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import WatchError

from connector.backends.hybrid import stream
from connector.store import keys, replies, scripts

T = TypeVar("T")

QUEUED, OFFERED, ACTIVE, CLOSED = "queued", "offered", "active", "closed"
READY, NOT_READY = "READY", "NOT_READY"
DEFAULT_MAX_CHATS = 3
"""An agent's `max_chats` when neither `hybrid_agents` nor `finesse.max_chats` says."""
CHAT_TTL_SECONDS = 30 * 24 * 3600
"""How long a closed chat's record and transcript stay readable (the agent's history)."""

# KEYS: chat, queue, customer's history. ARGV: chat id, now, thread id, integration, queue, channel,
# customer JSON, attributes JSON. Makes and queues a chat unless it exists: 1 made, 0 it existed.
_CREATE = """
if redis.call('HEXISTS', KEYS[1], 'state') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'created_at', ARGV[2], 'thread_id', ARGV[3], 'integration', ARGV[4], 'queue', ARGV[5],
  'state', 'queued', 'queued_at', ARGV[2], 'channel', ARGV[6], 'customer', ARGV[7], 'attributes', ARGV[8])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[1])
redis.call('LTRIM', KEYS[3], 0, 49)
return 1
"""

# KEYS: chat, agent, agent chats, queue, offers, interrupted set, ready set, agent's event stream.
# ARGV: chat id, agent id, queue key, now, expires at, the `chat_offered` event ('' none), stream length.
# Offers the chat to the agent if, now, the chat waits in the queue and the agent is READY, not
# interrupted, under max_chats and ringing from no other chat of this queue, and tells their desktop
# in the same step: a crash never leaves an offer ringing unseen (and its agent RONA'd for it).
# 1 offered, 0 not.
_OFFER = """
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then return 0 end
if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then return 0 end
if redis.call('SISMEMBER', KEYS[7], ARGV[2]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], 'state') ~= 'READY' then return 0 end
if redis.call('SISMEMBER', KEYS[6], ARGV[2]) == 1 then return 0 end
local most = tonumber(redis.call('HGET', KEYS[2], 'max_chats') or '1')
if redis.call('SCARD', KEYS[3]) >= most then return 0 end
if redis.call('HEXISTS', KEYS[2], 'offer:' .. ARGV[3]) == 1 then return 0 end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'offered', 'agent', ARGV[2], 'offered_at', ARGV[4], 'offer_expires_at', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[2], 'last_offer_at', ARGV[4], 'offer:' .. ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
if ARGV[6] ~= '' then redis.call('XADD', KEYS[8], 'MAXLEN', ARGV[7], '*', 'event', ARGV[6]) end
return 1
"""

# KEYS: chat, agent, offers, inactive. ARGV: chat id, agent id, queue key, now, inactive at ('' none).
# The agent takes the chat offered to them: 1, or 0 when it is not (or no longer) theirs to take.
_ACCEPT = """
if redis.call('HGET', KEYS[1], 'state') ~= 'offered' then return 0 end
if redis.call('HGET', KEYS[1], 'agent') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'active', 'accepted_at', ARGV[4])
redis.call('HDEL', KEYS[1], 'offer_expires_at')
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1]) end
if redis.call('HGET', KEYS[2], 'offer:' .. ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[2], 'offer:' .. ARGV[3]) end
return 1
"""

# KEYS: chat, agent, agent chats, queue, offers, ready set. ARGV: chat id, agent id, queue key, rona.
# A ringing offer goes back: the chat returns to its queue at its first place; with `rona` = '1' the
# agent who let it ring is set NOT_READY (reason RONA). 1 returned, 0 it was not ringing there.
_RETURN = """
if redis.call('HGET', KEYS[1], 'state') ~= 'offered' then return 0 end
if redis.call('HGET', KEYS[1], 'agent') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued')
redis.call('HDEL', KEYS[1], 'agent', 'offered_at', 'offer_expires_at')
redis.call('ZADD', KEYS[4], redis.call('HGET', KEYS[1], 'queued_at') or '0', ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
if redis.call('HGET', KEYS[2], 'offer:' .. ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[2], 'offer:' .. ARGV[3]) end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], 'state', 'NOT_READY', 'reason', 'RONA')
  redis.call('SREM', KEYS[6], ARGV[2])
end
return 1
"""

# KEYS: chat, queue, offers, inactive. ARGV: chat id, now, by, wrap-up.
# Closes the chat whatever its state; returns its previous state and agent (false when none), so
# the caller can free the agent's slot (`release`) and tell them. A chat closed already answers its
# agent too: a close that died before its release is finished by the repeat.
_CLOSE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'', false} end
local agent = redis.call('HGET', KEYS[1], 'agent')
if state == 'closed' then return {state, agent} end
redis.call('HSET', KEYS[1], 'state', 'closed', 'closed_at', ARGV[2], 'closed_by', ARGV[3], 'wrap_up', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return {state, agent}
"""

# KEYS: agent, agent chats. ARGV: chat id, queue key.
# Frees the agent's slot of a chat that left them (closed, transferred).
_RELEASE = """
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'offer:' .. ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[1], 'offer:' .. ARGV[2]) end
return 1
"""

# KEYS: chat, agent chats, new queue, offers, inactive. ARGV: chat id, agent id, new queue name, now.
# The agent hands an active chat to another queue: it waits there (at the end: a new wait) for
# the router, its inactivity timeout stopped until the next accept. 1 moved, 0 the chat is not the
# agent's active chat.
_TO_QUEUE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return 0 end
if redis.call('HGET', KEYS[1], 'agent') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued', 'queue', ARGV[3], 'queued_at', ARGV[4])
redis.call('HDEL', KEYS[1], 'agent', 'accepted_at', 'offered_at')
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return 1
"""

# KEYS: chat, from agent chats, to agent, to agent chats, offers, interrupted set, ready set, inactive,
# to agent's event stream, from agent's event stream.
# ARGV: chat id, from agent id, to agent id, now, expires at, the other agent's `chat_offered` event,
# this agent's `chat_transferred` event, stream length.
# The agent offers their active chat to a named agent, who must be READY, not interrupted and
# have room (its inactivity timeout stops until they accept), and both desktops hear it in the same
# step (an offer never rings unseen): 1 offered, 0 the chat is not theirs, -1 the other agent cannot
# take it now.
_TO_AGENT = """
if redis.call('HGET', KEYS[1], 'state') ~= 'active' then return 0 end
if redis.call('HGET', KEYS[1], 'agent') ~= ARGV[2] then return 0 end
if redis.call('SISMEMBER', KEYS[7], ARGV[3]) == 0 then return -1 end
if redis.call('SISMEMBER', KEYS[6], ARGV[3]) == 1 then return -1 end
local most = tonumber(redis.call('HGET', KEYS[3], 'max_chats') or '1')
if redis.call('SCARD', KEYS[4]) >= most then return -1 end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'offered', 'agent', ARGV[3], 'offered_at', ARGV[4], 'offer_expires_at', ARGV[5],
  'transferred_from', ARGV[2])
redis.call('HDEL', KEYS[1], 'accepted_at')
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('XADD', KEYS[9], 'MAXLEN', ARGV[8], '*', 'event', ARGV[6])
redis.call('XADD', KEYS[10], 'MAXLEN', ARGV[8], '*', 'event', ARGV[7])
return 1
"""

# KEYS: chat, inactive, closed for silence. ARGV: chat id, now, wrap-up.
# The customer's silence ends the chat if its deadline has passed (they did not speak meanwhile, and
# no other sweep took it): it leaves the inactive ZSET and, if still active, closes (by 'system') and
# joins the set of those whose agent is still to be freed and told (`finish_inactive_close`).
# Returns its previous state and agent; {'', false} when it was not due.
_CLOSE_INACTIVE = """
local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return {'', false} end
redis.call('ZREM', KEYS[2], ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'active' then return {state or '', false} end
local agent = redis.call('HGET', KEYS[1], 'agent')
redis.call('HSET', KEYS[1], 'state', 'closed', 'closed_at', ARGV[2], 'closed_by', 'system', 'wrap_up', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
return {state, agent}
"""

# KEYS: READY set. ARGV: agent hash key prefix, then the skills required.
# 1 when a READY agent has every skill required, else 0; it stops at the first. A new chat's gate
# asks only this, in one round trip, however many agents are READY.
_ANY_READY_WITH = """
for _, agent in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local ok, skills = pcall(cjson.decode, redis.call('HGET', ARGV[1] .. agent, 'skills') or '[]')
  local has = {}
  if ok and type(skills) == 'table' then
    for _, skill in ipairs(skills) do has[tostring(skill)] = true end
  end
  local all = true
  for i = 2, #ARGV do
    if not has[ARGV[i]] then all = false break end
  end
  if all then return 1 end
end
return 0
"""


# KEYS: READY set, interrupted set. ARGV: agent hash key prefix, agent chats key prefix.
# Every READY agent, by id: {id, 1 when a voice call holds them (interrupted) else 0, the chats they
# hold, then their hash as field, value, ...}. A routing pass and every availability reading need all
# of it: one call, where reading it key by key took three round trips and 2 commands an agent.
_READY_SNAPSHOT = """
local ready = redis.call('SMEMBERS', KEYS[1])
table.sort(ready)
local out = {}
for _, agent in ipairs(ready) do
  local row = {agent, redis.call('SISMEMBER', KEYS[2], agent), redis.call('SCARD', ARGV[2] .. agent)}
  for _, value in ipairs(redis.call('HGETALL', ARGV[1] .. agent)) do row[#row + 1] = value end
  out[#out + 1] = row
end
return out
"""


class ReadyAgent(NamedTuple):
    """A READY agent as a routing pass reads them (`HybridState.ready_snapshot`)."""

    agent_id: str
    settings: dict[str, str]
    """Their hash: state, skills (JSON), max_chats, last_offer_at, `offer:<queue>` → the chat ringing."""
    chats: int
    interrupted: bool


def queue_key(integration: str, queue: str) -> str:
    return f"{integration}:{queue}"


@dataclass(frozen=True)
class Chat:
    chat_id: str
    thread_id: str
    integration: str
    queue: str
    state: str
    queued_at: float
    created_at: float
    channel: str = ""
    customer: dict[str, Any] | None = None
    attributes: dict[str, Any] | None = None
    agent: str | None = None
    offered_at: float | None = None
    offer_expires_at: float | None = None
    accepted_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    wrap_up: str | None = None
    transferred_from: str | None = None

    @property
    def queue_key(self) -> str:
        return queue_key(self.integration, self.queue)


def _close_keys(chat: Chat) -> list[str]:
    return [
        keys.hybrid_chat(chat.chat_id),
        keys.hybrid_queue(chat.integration, chat.queue),
        keys.hybrid_offers(),
        keys.hybrid_inactive(),
    ]


def _release_keys(agent: str) -> list[str]:
    return [keys.hybrid_agent(agent), keys.hybrid_agent_chats(agent)]


def _chat_of(chat_id: str, raw: dict[bytes, bytes]) -> Chat | None:
    if not raw:
        return None
    data = {k.decode(): v.decode() for k, v in raw.items()}

    def number(name: str) -> float | None:
        return float(data[name]) if data.get(name) else None

    return Chat(
        chat_id=chat_id,
        thread_id=data.get("thread_id", ""),
        integration=data.get("integration", ""),
        queue=data.get("queue", ""),
        state=data.get("state", ""),
        queued_at=number("queued_at") or 0.0,
        created_at=number("created_at") or 0.0,
        channel=data.get("channel", ""),
        customer=json.loads(data["customer"]) if data.get("customer") else None,
        attributes=json.loads(data["attributes"]) if data.get("attributes") else None,
        agent=data.get("agent") or None,
        offered_at=number("offered_at"),
        offer_expires_at=number("offer_expires_at"),
        accepted_at=number("accepted_at"),
        closed_at=number("closed_at"),
        closed_by=data.get("closed_by") or None,
        wrap_up=data.get("wrap_up") or None,
        transferred_from=data.get("transferred_from") or None,
    )


class PlannedOffer(NamedTuple):
    """An offer the router decided, for `HybridState.offer_all`; `announcement`: the agent's
    `chat_offered` event (`stream.encoded`), written by the offer itself."""

    chat: str
    agent: str
    integration: str
    queue: str
    expires_at: float
    announcement: str = ""


def _decoded(value: Any) -> str:
    """A script's string answer ('' for Redis's nil, which a script returns as false)."""
    return value.decode() if isinstance(value, bytes) else str(value or "")


class HybridState:
    """The scripts and the reads the router, the backend and the agent desk share."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._create = redis.register_script(_CREATE)
        self._offer = redis.register_script(_OFFER)
        self._accept = redis.register_script(_ACCEPT)
        self._return = redis.register_script(_RETURN)
        self._close = redis.register_script(_CLOSE)
        self._release = redis.register_script(_RELEASE)
        self._to_queue = redis.register_script(_TO_QUEUE)
        self._to_agent = redis.register_script(_TO_AGENT)
        self._close_inactive = redis.register_script(_CLOSE_INACTIVE)
        self._any_ready_with = redis.register_script(_ANY_READY_WITH)
        self._ready_snapshot = redis.register_script(_READY_SNAPSHOT)

    @staticmethod
    def _run(script: Script, *, keys: list[str], args: list[Any], client: Pipeline | None = None) -> Any:
        """`script` now, or queued on `client` (`scripts.queue`: no SCRIPT EXISTS round trip first)."""
        return script(keys=keys, args=args) if client is None else scripts.queue(client, script, keys, args)

    # -- chats ----------------------------------------------------------------------------------

    def create_chat(
        self,
        chat_id: str,
        *,
        thread_id: str,
        integration: str,
        queue: str,
        channel: str,
        customer: dict[str, Any],
        attributes: dict[str, Any],
        now: float | None = None,
    ) -> bool:
        """Queue a new chat, in one atomic step (a crash leaves no half-made chat); False when the
        chat exists already (a repeated start)."""
        now = time.time() if now is None else now
        answer = self._create(
            keys=[
                keys.hybrid_chat(chat_id),
                keys.hybrid_queue(integration, queue),
                keys.hybrid_history(thread_id),
            ],
            args=[
                chat_id,
                repr(now),
                thread_id,
                integration,
                queue,
                channel,
                json.dumps(customer, sort_keys=True),
                json.dumps(attributes, sort_keys=True),
            ],
        )
        return bool(answer)

    def chat(self, chat_id: str) -> Chat | None:
        return _chat_of(chat_id, replies.bytes_hash(self.redis.hgetall(keys.hybrid_chat(chat_id))))

    def _transaction(self, watched: list[str], body: Callable[[Pipeline], T]) -> tuple[T, list[Any]]:
        """`body(pipe)`, run again until none of `watched` changed between its reads and its writes:
        it reads (at once, or on another connection: the WATCH guards both), then opens the
        transaction (`pipe.multi()`) and queues its writes. Returns what it returned and the
        transaction's replies; a body that opens none writes nothing."""
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(*watched)  # type: ignore[no-untyped-call]  # untyped in redis-py
                    value = body(pipe)
                    return value, (replies.execute(pipe) if pipe.explicit_transaction else [])
                except WatchError:
                    continue

    def with_chat(self, chat_id: str, writes: Callable[[Pipeline, Chat | None], T]) -> tuple[T, list[Any]]:
        """Run `writes(pipe, chat)` as one transaction that holds only if the chat did not change
        since it was read (WATCH; a change reads it again): what the writes decide from the chat
        (e.g. whose desktop to tell, or that it is still active) is still true when they land.
        Returns what `writes` returned and the transaction's replies."""
        key = keys.hybrid_chat(chat_id)

        def body(pipe: Pipeline) -> T:
            chat = _chat_of(chat_id, replies.bytes_hash(pipe.hgetall(key)))
            pipe.multi()
            return writes(pipe, chat)

        return self._transaction([key], body)

    def with_chat_and_agent(
        self, chat_id: str, agent_id: str, writes: Callable[[Pipeline, Chat | None, ReadyAgent | None], T]
    ) -> tuple[T, list[Any]]:
        """`with_chat`, also WATCHing all an offer to `agent_id` relies on (their hash and chats, the
        READY and voice-held sets): `writes` gets the agent as read (None: not READY), and what it
        decides from them is still true when it lands."""
        watched = [
            keys.hybrid_chat(chat_id),
            keys.hybrid_agent(agent_id),
            keys.hybrid_agent_chats(agent_id),
            keys.hybrid_ready(),
            keys.chat_interrupted(),
        ]

        def body(pipe: Pipeline) -> T:
            reads = self.redis.pipeline(transaction=False)  # one round trip
            reads.hgetall(watched[0])
            reads.hgetall(watched[1])
            reads.scard(watched[2])
            reads.sismember(watched[3], agent_id)
            reads.sismember(watched[4], agent_id)
            raw_chat, raw_agent, held, ready, interrupted = replies.execute(reads)
            settings = {k.decode(): v.decode() for k, v in raw_agent.items()}
            agent = ReadyAgent(agent_id, settings, int(held), bool(interrupted)) if ready else None
            pipe.multi()
            return writes(pipe, _chat_of(chat_id, raw_chat), agent)

        return self._transaction(watched, body)

    def chats(self, chat_ids: list[str]) -> list[Chat]:
        pipe = self.redis.pipeline(transaction=False)
        for chat_id in chat_ids:
            pipe.hgetall(keys.hybrid_chat(chat_id))
        found = replies.execute(pipe) if chat_ids else []
        return [chat for chat_id, raw in zip(chat_ids, found, strict=True) if (chat := _chat_of(chat_id, raw))]

    def history(self, thread_id: str) -> list[Chat]:
        """The customer's chats on this thread, newest first (the last 50)."""
        found = replies.bytes_list(self.redis.lrange(keys.hybrid_history(thread_id), 0, -1))
        return self.chats([member.decode() for member in found])

    def waiting(self, integration: str, queue: str, limit: int) -> list[tuple[str, float]]:
        """The first `limit` chats waiting in a queue, oldest first."""
        found = replies.scored(self.redis.zrange(keys.hybrid_queue(integration, queue), 0, limit - 1, withscores=True))
        return [(member.decode(), score) for member, score in found]

    def position(self, integration: str, queue: str, chat_id: str) -> int | None:
        rank = self.redis.zrank(keys.hybrid_queue(integration, queue), chat_id)
        return None if rank is None else replies.integer(rank) + 1

    def depth(self, integration: str, queue: str) -> int:
        return replies.integer(self.redis.zcard(keys.hybrid_queue(integration, queue)))

    def depths(self, queues: list[tuple[str, str]]) -> list[int]:
        """The chats waiting in each (integration, queue), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for integration, queue in queues:
            pipe.zcard(keys.hybrid_queue(integration, queue))
        return [int(n) for n in replies.execute(pipe)] if queues else []

    # -- offers -----------------------------------------------------------------------------------

    def offer(self, chat: str, agent: str, integration: str, queue: str, now: float, expires_at: float) -> bool:
        return self.offer_all([PlannedOffer(chat, agent, integration, queue, expires_at)], now)[0]

    def offer_all(self, offers: list[PlannedOffer], now: float) -> list[bool]:
        """Make the offers in this order, one round trip; whether each was made. Each script checks
        all it relies on as if run alone, so a batch makes exactly the offers one call each would:
        a routing pass's offers reach their agents a round trip apart, not one per offer."""
        pipe = self.redis.pipeline(transaction=False)
        for offer in offers:
            self._run(
                self._offer,
                keys=[
                    keys.hybrid_chat(offer.chat),
                    keys.hybrid_agent(offer.agent),
                    keys.hybrid_agent_chats(offer.agent),
                    keys.hybrid_queue(offer.integration, offer.queue),
                    keys.hybrid_offers(),
                    keys.chat_interrupted(),
                    keys.hybrid_ready(),
                    keys.hybrid_events(offer.agent),
                ],
                args=[
                    offer.chat,
                    offer.agent,
                    queue_key(offer.integration, offer.queue),
                    repr(now),
                    repr(offer.expires_at),
                    offer.announcement,
                    stream.MAX_EVENTS,
                ],
                client=pipe,
            )
        return [bool(answer) for answer in replies.execute(pipe)] if offers else []

    def accept(
        self, chat: Chat, agent: str, now: float, inactive_at: float | None = None, *, client: Pipeline | None = None
    ) -> bool:
        """The agent takes the chat; from `inactive_at` on (None: never) the customer's silence ends it.
        With `client` a transaction, the accept is queued on it (and True says only that)."""
        answer = self._run(
            self._accept,
            keys=[
                keys.hybrid_chat(chat.chat_id),
                keys.hybrid_agent(agent),
                keys.hybrid_offers(),
                keys.hybrid_inactive(),
            ],
            args=[chat.chat_id, agent, chat.queue_key, repr(now), "" if inactive_at is None else repr(inactive_at)],
            client=client,
        )
        return bool(answer)

    def give_back(self, chat: Chat, agent: str, *, rona: bool, client: Pipeline | None = None) -> bool:
        """A rejected or unanswered offer returns to the queue (RONA: the agent goes NOT_READY).
        With `client` a transaction, it is queued on it (and True says only that)."""
        answer = self._run(
            self._return,
            keys=[
                keys.hybrid_chat(chat.chat_id),
                keys.hybrid_agent(agent),
                keys.hybrid_agent_chats(agent),
                keys.hybrid_queue(chat.integration, chat.queue),
                keys.hybrid_offers(),
                keys.hybrid_ready(),
            ],
            args=[chat.chat_id, agent, chat.queue_key, "1" if rona else "0"],
            client=client,
        )
        return bool(answer)

    def decline(self, chat: Chat, agent: str, seconds: float) -> None:
        """Remember for `seconds` that the agent rejected the chat: the router offers it to others."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(keys.hybrid_declined(chat.chat_id), agent)
        pipe.expire(keys.hybrid_declined(chat.chat_id), max(1, int(seconds)))
        replies.execute(pipe)

    def declined(self, chat_ids: list[str]) -> dict[str, frozenset[str]]:
        if not chat_ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for chat_id in chat_ids:
            pipe.smembers(keys.hybrid_declined(chat_id))
        found = replies.execute(pipe)
        return {
            chat_id: frozenset(m.decode() for m in members)
            for chat_id, members in zip(chat_ids, found, strict=True)
            if members
        }

    def expired_offers(self, now: float, limit: int = 100) -> list[str]:
        found = replies.bytes_list(self.redis.zrangebyscore(keys.hybrid_offers(), "-inf", now, start=0, num=limit))
        return [member.decode() for member in found]

    def close(self, chat: Chat, *, by: str, wrap_up: str = "", now: float | None = None) -> tuple[str, str | None]:
        """Close the chat; returns its previous state ('closed' when it was already) and the agent it
        had (None). Frees the slot, also when a close before this one died before freeing it."""
        now = time.time() if now is None else now
        state, agent = self._close(
            keys=_close_keys(chat),
            args=[chat.chat_id, repr(now), by, wrap_up],
        )
        previous, holder = _decoded(state), _decoded(agent) or None
        self._after_close(chat, previous, holder, now)
        return previous, holder

    def _after_close(self, chat: Chat, previous: str, holder: str | None, now: float) -> None:
        """What follows a close outside its script: the slot freed, the records kept for the agent's
        history, the handle time counted for the queue's wait estimate."""
        if holder:
            self.release(chat, holder)  # also after a close that died before its release
        pipe = self.redis.pipeline(transaction=False)
        self._keep(pipe, chat, counted=bool(holder and previous != CLOSED), now=now)
        replies.execute(pipe)

    def queue_close(self, pipe: Pipeline, chat: Chat, *, by: str, wrap_up: str, now: float) -> None:
        """`close`, queued on a transaction that WATCHes the chat (`with_chat`: it is still as read
        when this lands): the close, the freed slot and the kept records in one step, so a crash
        cannot leave a closed chat holding a slot."""
        self._run(self._close, keys=_close_keys(chat), args=[chat.chat_id, repr(now), by, wrap_up], client=pipe)
        if chat.agent:
            self._run(self._release, keys=_release_keys(chat.agent), args=[chat.chat_id, chat.queue_key], client=pipe)
        self._keep(pipe, chat, counted=bool(chat.agent), now=now)

    @staticmethod
    def _keep(pipe: Pipeline, chat: Chat, *, counted: bool, now: float) -> None:
        """A closed chat's records kept a while for the agent's history; `counted`: its handle time
        goes into the queue's wait estimate (an agent had accepted it)."""
        pipe.expire(keys.hybrid_chat(chat.chat_id), CHAT_TTL_SECONDS)
        pipe.expire(keys.hybrid_transcript(chat.chat_id), CHAT_TTL_SECONDS)
        if counted and chat.accepted_at:
            handle_times = keys.hybrid_handle_times(chat.integration, chat.queue)
            pipe.lpush(handle_times, repr(now - chat.accepted_at))
            pipe.ltrim(handle_times, 0, 49)

    def release(self, chat: Chat, agent: str) -> None:
        self._release(keys=_release_keys(agent), args=[chat.chat_id, chat.queue_key])

    def to_queue(self, chat: Chat, agent: str, queue: str, now: float) -> bool:
        return bool(self._move_to_queue(None, chat, agent, queue, now))

    def queue_to_queue(self, pipe: Pipeline, chat: Chat, agent: str, queue: str, now: float) -> None:
        """`to_queue` on a transaction that WATCHes the chat (`with_chat`: still the agent's active
        chat when this lands), to be one step with the customer's notice."""
        self._move_to_queue(pipe, chat, agent, queue, now)

    def _move_to_queue(self, client: Pipeline | None, chat: Chat, agent: str, queue: str, now: float) -> Any:
        return self._run(
            self._to_queue,
            keys=[
                keys.hybrid_chat(chat.chat_id),
                keys.hybrid_agent_chats(agent),
                keys.hybrid_queue(chat.integration, queue),
                keys.hybrid_offers(),
                keys.hybrid_inactive(),
            ],
            args=[chat.chat_id, agent, queue, repr(now)],
            client=client,
        )

    def to_agent(
        self,
        chat: Chat,
        agent: str,
        target: str,
        now: float,
        expires_at: float,
        offered: str,
        transferred: str,
        *,
        client: Pipeline | None = None,
    ) -> int:
        """1 offered to `target`, 0 the chat is not `agent`'s active chat, -1 `target` cannot take it.
        `offered`, `transferred`: the two desktops' events (`stream.encoded`), written with the move.
        With `client` a transaction, the move is queued on it (and the answer says nothing)."""
        answer = self._run(
            self._to_agent,
            keys=[
                keys.hybrid_chat(chat.chat_id),
                keys.hybrid_agent_chats(agent),
                keys.hybrid_agent(target),
                keys.hybrid_agent_chats(target),
                keys.hybrid_offers(),
                keys.chat_interrupted(),
                keys.hybrid_ready(),
                keys.hybrid_inactive(),
                keys.hybrid_events(target),
                keys.hybrid_events(agent),
            ],
            args=[chat.chat_id, agent, target, repr(now), repr(expires_at), offered, transferred, stream.MAX_EVENTS],
            client=client,
        )
        return 1 if client is not None else int(answer)

    # -- the customer's silence --------------------------------------------------------------------

    def refresh_inactive(self, chat_id: str, inactive_at: float) -> None:
        """The customer spoke: their chat's deadline moves to `inactive_at`. Only a chat that has one
        (ZADD XX): one that closed or left its agent meanwhile is not put back."""
        self.redis.zadd(keys.hybrid_inactive(), {chat_id: inactive_at}, xx=True)

    def inactive(self, now: float, limit: int = 100) -> list[str]:
        """Chats whose deadline has passed, the longest silent first."""
        found = replies.bytes_list(self.redis.zrangebyscore(keys.hybrid_inactive(), "-inf", now, start=0, num=limit))
        return [member.decode() for member in found]

    def close_inactive(self, chat: Chat, *, wrap_up: str, now: float | None = None) -> tuple[str, str | None]:
        """End the chat for its customer's silence, if its deadline has passed by `now`: returns its
        previous state and agent. Only the one caller that sees ACTIVE ended it; a chat that had left
        `active` is only dropped from the ZSET, and ('', None) means it was not due (the customer
        spoke, or another worker's sweep took it). The chat's agent is freed and told after, by
        `finish_inactive_close`."""
        now = time.time() if now is None else now
        state, agent = self._close_inactive(
            keys=[keys.hybrid_chat(chat.chat_id), keys.hybrid_inactive(), keys.hybrid_inactive_closed()],
            args=[chat.chat_id, repr(now), wrap_up],
        )
        return _decoded(state), _decoded(agent) or None

    def closed_for_silence(self) -> list[str]:
        """The chats `close_inactive` closed whose agent is not yet freed and told (a sweep that died
        in between left them: the next finishes them)."""
        return sorted(m.decode() for m in replies.bytes_set(self.redis.smembers(keys.hybrid_inactive_closed())))

    def finish_inactive_close(
        self, chat_id: str, writes: Callable[[Pipeline, Chat], T], now: float
    ) -> tuple[T, list[Any]] | None:
        """For a chat `close_inactive` closed: its agent's slot freed, its records kept, and `writes`
        (who must be told), with its leaving the set, in one transaction that WATCHes the set, so of
        two sweeps one does it, and a crash leaves it all to do. Returns what `writes` returned and
        the transaction's replies; None when there was nothing to do."""
        closed = keys.hybrid_inactive_closed()

        def body(pipe: Pipeline) -> T | None:
            if not pipe.sismember(closed, chat_id):
                return None  # another sweep finished it
            chat = _chat_of(chat_id, replies.bytes_hash(pipe.hgetall(keys.hybrid_chat(chat_id))))
            pipe.multi()
            pipe.srem(closed, chat_id)
            if chat is None:  # its record expired: nobody to free or tell
                return None
            if chat.agent:
                self._run(self._release, keys=_release_keys(chat.agent), args=[chat_id, chat.queue_key], client=pipe)
            self._keep(pipe, chat, counted=bool(chat.agent), now=now)
            return writes(pipe, chat)

        value, done = self._transaction([closed], body)
        return None if value is None else (value, done)

    def forget_inactive(self, chat_id: str) -> None:
        """Stop watching the chat's silence (its record is gone, or its queue's timeout is off now)."""
        self.redis.zrem(keys.hybrid_inactive(), chat_id)

    def handle_times(self, integration: str, queue: str) -> list[float]:
        return [
            float(t) for t in replies.bytes_list(self.redis.lrange(keys.hybrid_handle_times(integration, queue), 0, -1))
        ]

    # -- agents -----------------------------------------------------------------------------------

    def set_agent(
        self,
        agent: str,
        *,
        state: str,
        reason: str = "",
        login: str,
        name: str,
        skills: tuple[str, ...],
        max_chats: int,
    ) -> None:
        """The agent's chat state and routing settings (their desktop says READY / NOT_READY)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            keys.hybrid_agent(agent),
            mapping={
                "state": state,
                "reason": reason,
                "login": login,
                "name": name,
                "skills": json.dumps(sorted(skills)),
                "max_chats": max_chats,
                "state_at": repr(time.time()),
            },
        )
        if state == READY:
            pipe.sadd(keys.hybrid_ready(), agent)
        else:
            pipe.srem(keys.hybrid_ready(), agent)
        replies.execute(pipe)

    def agent(self, agent: str) -> dict[str, str]:
        raw = replies.bytes_hash(self.redis.hgetall(keys.hybrid_agent(agent)))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def agent_chats(self, agent: str) -> list[str]:
        return sorted(m.decode() for m in replies.bytes_set(self.redis.smembers(keys.hybrid_agent_chats(agent))))

    def agent_loads(self, agents: list[str]) -> list[tuple[dict[str, str], int]]:
        """Each agent's settings and how many chats they hold, in one round trip (a routing pass
        and every new chat's availability read them for all READY agents)."""
        pipe = self.redis.pipeline(transaction=False)
        for agent in agents:
            pipe.hgetall(keys.hybrid_agent(agent))
            pipe.scard(keys.hybrid_agent_chats(agent))
        answers = replies.execute(pipe) if agents else []
        return [
            ({k.decode(): v.decode() for k, v in answers[2 * i].items()}, int(answers[2 * i + 1]))
            for i in range(len(agents))
        ]

    def any_ready_with(self, skills: tuple[str, ...]) -> bool:
        """A READY agent has every one of `skills` (interrupted by a voice call or not: blending holds
        them for the call only, as `HybridBackend.availability` counts them)."""
        return bool(self._any_ready_with(keys=[keys.hybrid_ready()], args=[keys.hybrid_agent(""), *skills]))

    def ready_snapshot(self) -> list[ReadyAgent]:
        """Every READY agent with their settings, load and voice hold, by id, in one call."""
        rows = self._ready_snapshot(
            keys=[keys.hybrid_ready(), keys.chat_interrupted()],
            args=[keys.hybrid_agent(""), keys.hybrid_agent_chats("")],
        )
        found = []
        for row in rows:
            fields = [value.decode() for value in row[3:]]
            settings = dict(zip(fields[::2], fields[1::2], strict=True))
            found.append(ReadyAgent(row[0].decode(), settings, int(row[2]), bool(row[1])))
        return found

    def ready_agents(self) -> list[str]:
        return sorted(m.decode() for m in replies.bytes_set(self.redis.smembers(keys.hybrid_ready())))

    def interrupted(self, agents: list[str]) -> set[str]:
        """The agents media blending holds from chat now (a voice call: docs/blending.md)."""
        if not agents:
            return set()
        flags: list[int] = self.redis.smismember(keys.chat_interrupted(), agents)  # type: ignore[assignment]  # sync client: a list
        return {agent for agent, flag in zip(agents, flags, strict=True) if flag}
