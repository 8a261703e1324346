"""How an interruption reaches the chat side, and how chat-side agents map to Finesse agents.

The blending machine tells the chat side only on entering INTERRUPTED (`interrupt`) and on leaving
it (`resume`, with the chat state the agent returns to). Both implementations are idempotent, so
telling one twice (a reconcile after a failure) is harmless:

- `RouterChatSide`: the connector's own router keeps a per-agent flag in Redis and offers no chat
  to a flagged agent;
- `FinesseMediaChatSide`: ECE's chat MRD on Finesse (`PUT /finesse/api/User/{id}/Media/{mrdId}`),
  so that ECE's routing respects voice too (docs/protocols/finesse.md, "Non-voice Media API").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from redis import Redis

from connector.blending.agents import AgentRegistry
from connector.blending.events import ChatReadyChanged, MediaStateChanged
from connector.blending.machine import REQUEST_ID_PREFIX, Chat
from connector.store import keys

if TYPE_CHECKING:
    from connector.blending.finesse.client import FinesseClient
    from connector.config.model import FinesseConfig


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


def chat_side_for(
    config: FinesseConfig, *, redis: Redis, client: FinesseClient, reason_code_id: str
) -> RouterChatSide | FinesseMediaChatSide:
    """ECE's chat MRD when `finesse.chat_mrd_id` is set, else the connector's own router."""
    if config.chat_mrd_id:
        return FinesseMediaChatSide(client, config.chat_mrd_id, reason_code_id)
    return RouterChatSide(redis)


def finesse_agent_id(registry: AgentRegistry, login_name: str) -> str | None:
    """The Finesse agent id of a chat-side agent (ECE `assigned` / `complete` callbacks name the agent
    by login name); None if agent sync has not seen that login."""
    if not login_name or not login_name.strip():
        return None
    return registry.agent_id_for_login(login_name)


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
