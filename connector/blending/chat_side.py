"""How an interruption reaches the chat side, and how chat-side agents map to Finesse agents.

The blending machine tells the chat side only on entering INTERRUPTED (`interrupt`) and on leaving
it (`resume`, with the chat state the agent returns to). Every implementation is idempotent, so
telling one twice (a reconcile after a failure) is harmless:

- `RouterChatSide`: the connector's own router keeps a per-agent flag in Redis and offers no chat
  to a flagged agent;
- `FinesseMediaChatSide`: ECE's chat MRD on Finesse (`PUT /finesse/api/User/{id}/Media/{mrdId}`),
  so that ECE's routing respects voice too (docs/protocols/finesse.md, "Non-voice Media API");
- `CompositeChatSide`: both, as `chat_side_for` builds it whenever ECE's chat MRD is known.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from redis import Redis

from connector.blending.agents import AgentRegistry
from connector.blending.chat_events import ChatAgent
from connector.blending.events import ChatReadyChanged, MediaStateChanged
from connector.blending.machine import REQUEST_ID_PREFIX, Chat
from connector.config.model import LOCAL_AGENT_PREFIX
from connector.store import keys

if TYPE_CHECKING:
    from connector.blending.finesse.client import FinesseClient
    from connector.config.model import FinesseConfig

log = logging.getLogger(__name__)

ECE = "ece"
HYBRID = "hybrid"
"""The built-in router's integration type: its chats name a Finesse agent by Finesse's agent id."""
"""The integration type whose chats name their agent by ECE's `sender.user` (`chat_events.ChatAgent.backend`)."""


class ChatSide(Protocol):
    """Where chats are routed. Failures raise (FinesseError for the MRD); the service records them."""

    def interrupt(self, agent_id: str, *, request_id: str) -> None:
        """Route no chat to the agent: a voice call has them."""
        ...

    def resume(self, agent_id: str, state: Chat, *, request_id: str) -> None:
        """The interruption is over; `state` is the chat state the agent returns to."""
        ...


class RouterChatSide:
    """The connector's own router: a flag per agent that the router honours before offering a chat."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def interrupt(self, agent_id: str, *, request_id: str) -> None:
        self.redis.sadd(keys.chat_interrupted(), agent_id)

    def resume(self, agent_id: str, state: Chat, *, request_id: str) -> None:
        # Cleared whatever the state: a NOT_READY agent is skipped by its chat state, not by this flag.
        self.redis.srem(keys.chat_interrupted(), agent_id)

    def is_interrupted(self, agent_id: str) -> bool:
        return bool(self.redis.sismember(keys.chat_interrupted(), agent_id))


class FinesseMediaChatSide:
    """ECE's chat MRD as Finesse sees it: NOT_READY (with the connector's reason) while voice has the
    agent, READY after. Finesse answers 202 and confirms by a Media notification echoing requestId."""

    def __init__(self, client: FinesseClient, mrd_id: str, reason_code_id: str) -> None:
        self.client = client
        self.mrd_id = mrd_id
        self.reason_code_id = reason_code_id

    def interrupt(self, agent_id: str, *, request_id: str) -> None:
        self.client.set_media_state(
            agent_id, self.mrd_id, "NOT_READY", reason_code_id=self.reason_code_id, request_id=request_id
        )

    def resume(self, agent_id: str, state: Chat, *, request_id: str) -> None:
        if state is Chat.NOT_READY:
            return  # the agent chose chat NOT_READY or logged out: their MRD state stands
        self.client.set_media_state(agent_id, self.mrd_id, "READY", request_id=request_id)


class CompositeChatSide:
    """Several chat sides told alike, in order: the router's flag (for the built-in router) and ECE's
    chat MRD. A failure of one (FinesseError from the MRD) propagates once the ones before it were
    told; the service records it and tells them all again later, which the idempotent sides allow."""

    def __init__(self, *sides: ChatSide) -> None:
        self.sides = sides

    def interrupt(self, agent_id: str, *, request_id: str) -> None:
        for side in self.sides:
            side.interrupt(agent_id, request_id=request_id)

    def resume(self, agent_id: str, state: Chat, *, request_id: str) -> None:
        for side in self.sides:
            side.resume(agent_id, state, request_id=request_id)


def chat_side_for(
    *, redis: Redis, client: FinesseClient, reason_code_id: str, mrd_id: str | None
) -> RouterChatSide | CompositeChatSide:
    """Always the connector's router flag; with ECE's chat MRD known (`finesse.chat_mrd_id`, or
    `chat_mrd_name` resolved at start), that MRD on Finesse as well."""
    router = RouterChatSide(redis)
    if mrd_id:
        return CompositeChatSide(router, FinesseMediaChatSide(client, mrd_id, reason_code_id))
    return router


def finesse_agent_id(registry: AgentRegistry, login_name: str) -> str | None:
    """The Finesse agent id of a Finesse login (case-insensitive, through the registry that agent sync
    fills); None if agent sync has not seen that login."""
    if not login_name or not login_name.strip():
        return None
    return registry.agent_id_for_login(login_name)


def _mapped(table: Mapping[str, str], key: str) -> str | None:
    if key in table:
        return table[key]
    folded = key.strip().casefold()
    return next((login for name, login in table.items() if name.strip().casefold() == folded), None)


def finesse_agent_for(agent: ChatAgent, config: FinesseConfig, registry: AgentRegistry) -> str | None:
    """The Finesse agent id of an agent as a chat event names them, or None.

    ECE's chats (`backend` ece) name the agent by `sender.user`: its `finesse.ece_agent_field` (name,
    the default, or id) is looked up in `finesse.ece_agents` (sites where ECE's names are not the Finesse
    logins), else taken as the Finesse login, and must be an agent that sync has seen (by login, else by
    id): ECE's own ids are not Finesse ids, so nothing is guessed. Any other chat side (the built-in
    router, entries of the earlier shape) names the Finesse agent directly: the built-in router by
    Finesse's id (whatever name it shows), others by login, else by id, and an agent sync has not seen
    yet is taken by that id."""
    if agent.backend == ECE:
        key = agent.id if config.ece_agent_field == "id" else agent.name
        if not key:
            return None
        login = _mapped(config.ece_agents, key) or key
        return finesse_agent_id(registry, login) or (login if registry.profile(login) is not None else None)
    if (agent.id or "").startswith(LOCAL_AGENT_PREFIX):
        return None  # a local agent of the built-in router: no Finesse agent, no voice to blend
    if agent.backend == HYBRID and agent.id:
        return agent.id  # the built-in router's id of a Finesse agent is Finesse's own; its name is only shown
    direct = agent.name or agent.id
    if not direct:
        return None
    return finesse_agent_id(registry, direct) or agent.id or direct


def chat_ready_from_media(event: MediaStateChanged, mrd_id: str, connector_reason_id: str) -> ChatReadyChanged | None:
    """The agent's own READY / NOT_READY on ECE's chat MRD as a chat-readiness event, so that an
    interruption never overrides it. None for what is not the agent's choice: the connector's own MRD
    changes (its requestId, or NOT_READY with its reason when the source cannot see requestIds),
    other MRDs, and Finesse-driven MRD states (RESERVED, WORK, INTERRUPTED, LOGOUT)."""
    if event.mrd_id != mrd_id or (event.request_id or "").startswith(REQUEST_ID_PREFIX):
        return None
    if event.state == "NOT_READY" and event.reason_code_id == connector_reason_id:
        return None
    if event.state in ("READY", "NOT_READY"):
        return ChatReadyChanged(event.agent_id, ready=event.state == "READY", at=event.at)
    return None
