"""Chat-side events for the blending module, carried on a Redis stream.

The chat side (the ECE callback's `assigned` / `complete`, later the Hybrid Chat router) publishes
here; the listener consumes with a consumer group and acknowledges an entry only after the blending
service has handled it, so a listener restart re-reads what it had not finished. Agents are named as
the chat side knows them (login name); the consumer maps them to Finesse agent ids.
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


def publish_chat_assigned(redis: Redis, agent_login: str, chat_id: str) -> None:
    _publish(redis, {"kind": "assigned", "agent": agent_login, "chat": chat_id})


def publish_chat_ended(redis: Redis, agent_login: str, chat_id: str) -> None:
    _publish(redis, {"kind": "ended", "agent": agent_login, "chat": chat_id})


def publish_chat_ready(redis: Redis, agent_login: str, ready: bool) -> None:
    _publish(redis, {"kind": "ready", "agent": agent_login, "ready": "1" if ready else "0"})


def _publish(redis: Redis, fields: dict[FieldT, EncodableT]) -> None:
    fields["at"] = repr(time.time())
    redis.xadd(keys.chat_events(), fields, maxlen=STREAM_MAX_LENGTH, approximate=True)


@dataclass(frozen=True)
class ChatEntry:
    entry_id: str
    agent_login: str
    kind: str
    fields: dict[str, str]

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
