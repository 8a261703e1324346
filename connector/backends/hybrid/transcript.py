"""A Hybrid Chat chat's messages both ways, as the agent's desktop shows them.

Entries are `{"message_id", "at", "from": "customer" | "agent" | "system", "text"?, "attachments"?,
"agent"?}`. The customer's side is written by the drain (once per provider message: the drain's
effects), the agent's by the agent desk; the record is the outbox and inbox, this is the view.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis
from redis.client import Pipeline

from connector.store import keys, replies

MAX_ENTRIES = 2000
"""Entries kept per chat (the oldest go first): a chat is a conversation, not an archive."""


def append(redis: Redis, chat_id: str, sender: str, message_id: str, **fields: Any) -> dict[str, Any]:
    pipe = redis.pipeline(transaction=False)
    entry = queue(pipe, chat_id, sender, message_id, **fields)
    replies.execute(pipe)
    return entry


def queue(pipe: Pipeline, chat_id: str, sender: str, message_id: str, **fields: Any) -> dict[str, Any]:
    """The entry's writes queued on `pipe`: a caller's transaction can make them one step with its own."""
    entry = {"message_id": message_id, "at": time.time(), "from": sender, **fields}
    pipe.rpush(keys.hybrid_transcript(chat_id), json.dumps(entry, separators=(",", ":")))
    pipe.ltrim(keys.hybrid_transcript(chat_id), -MAX_ENTRIES, -1)
    return entry


def read(redis: Redis, chat_id: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in replies.bytes_list(redis.lrange(keys.hybrid_transcript(chat_id), 0, -1))]
