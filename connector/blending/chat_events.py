"""Chat-side events for the blending module, carried on a Redis stream.

The chat side (the ECE callback's `assigned` / `complete`, later the Hybrid Chat router) publishes
here; the listener consumes with a consumer group and acknowledges an entry only after the blending
service has handled it, so a listener restart re-reads what it had not finished.

An entry names the agent as the chat side knows them: `agent_id` and `agent_name` (ECE's
`sender.user` id and name), and `backend`, the type of the integration the chat belongs to (`ece`,
`hybrid`). The listener maps them to a Finesse agent (`chat_side.finesse_agent_for`): for ECE through
`finesse.ece_agent_field` and `finesse.ece_agents`; any other chat side names the Finesse agent
directly. Entries of the earlier shape carry only `agent` (a Finesse login) and are still read;
new entries carry `agent` too (the name), so a listener of the earlier version reads them as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from connector.blending.events import ChatAssigned, ChatEnded, ChatEvent, ChatReadyChanged
from connector.store import keys, replies

GROUP = "listener"
STREAM_MAX_LENGTH = 100_000


@dataclass(frozen=True)
class ChatAgent:
    """An agent as the chat side names them. `backend` None: the name or id is the Finesse agent's
    (login, else id), as the built-in router and the earlier entries name them."""

    id: str | None = None
    name: str | None = None
    backend: str | None = None

    @classmethod
    def of(cls, agent: ChatAgent | str) -> ChatAgent:
        return agent if isinstance(agent, ChatAgent) else cls(name=agent)

    def __bool__(self) -> bool:
        return bool(self.id or self.name)


def publish_chat_assigned(redis: Redis, agent: ChatAgent | str, chat_id: str) -> None:
    """`agent`: as the chat side names them, or a Finesse login."""
    _publish(redis, {"kind": "assigned", "chat": chat_id}, ChatAgent.of(agent))


def publish_chat_ended(redis: Redis, agent: ChatAgent | str, chat_id: str) -> None:
    _publish(redis, {"kind": "ended", "chat": chat_id}, ChatAgent.of(agent))


def publish_chat_ready(redis: Redis, agent: ChatAgent | str, ready: bool) -> None:
    _publish(redis, {"kind": "ready", "ready": "1" if ready else "0"}, ChatAgent.of(agent))


def _publish(redis: Redis, fields: dict[FieldT, EncodableT], agent: ChatAgent) -> None:
    fields["agent"] = agent.name or agent.id or ""  # the earlier shape, for a listener not upgraded yet
    for name, value in (("agent_id", agent.id), ("agent_name", agent.name), ("backend", agent.backend)):
        if value:
            fields[name] = value
    fields["at"] = repr(time.time())
    redis.xadd(keys.chat_events(), fields, maxlen=STREAM_MAX_LENGTH, approximate=True)


@dataclass(frozen=True)
class ChatEntry:
    entry_id: str
    agent_login: str  # `agent`: the earlier shape's Finesse login (now also written, as the name)
    kind: str
    fields: dict[str, str]

    @property
    def agent(self) -> ChatAgent:
        """The agent as the chat side named them; an entry of the earlier shape names a Finesse login."""
        if not any(name in self.fields for name in ("agent_id", "agent_name", "backend")):
            return ChatAgent(name=self.agent_login or None)
        return ChatAgent(
            self.fields.get("agent_id") or None,
            self.fields.get("agent_name") or None,
            self.fields.get("backend") or None,
        )

    def to_event(self, agent_id: str) -> ChatEvent | None:
        at = float(self.fields.get("at") or 0.0)
        if self.kind == "assigned":
            return ChatAssigned(agent_id, self.fields.get("chat", ""), at=at)
        if self.kind == "ended":
            return ChatEnded(agent_id, self.fields.get("chat", ""), at=at)
        if self.kind == "ready":
            return ChatReadyChanged(agent_id, self.fields.get("ready") == "1", at=at)
        return None


class ChatEventConsumer:
    """Reads the stream as one member of the consumer group; pending entries first after a restart."""

    def __init__(self, redis: Redis, consumer: str = "listener-1") -> None:
        self.redis = redis
        self.consumer = consumer
        self._pending_first = True
        try:
            redis.xgroup_create(keys.chat_events(), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, block_ms: int = 1000, count: int = 100) -> list[ChatEntry]:
        start = "0" if self._pending_first else ">"
        answer = replies.stream_reads(
            self.redis.xreadgroup(
                GROUP,
                self.consumer,
                {keys.chat_events(): start},
                count=count,
                block=None if self._pending_first else block_ms,
            )
        )
        entries = [self._entry(entry_id, data) for _stream, items in answer or [] for entry_id, data in items]
        if self._pending_first and not entries:
            self._pending_first = False
        return entries

    def ack(self, entry: ChatEntry) -> None:
        self.redis.xack(keys.chat_events(), GROUP, entry.entry_id)

    @staticmethod
    def _entry(entry_id: bytes | str, data: dict[bytes, bytes]) -> ChatEntry:
        fields = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in data.items()
        }
        return ChatEntry(
            entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            fields.get("agent", ""),
            fields.get("kind", ""),
            fields,
        )
