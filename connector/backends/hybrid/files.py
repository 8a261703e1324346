"""Files passed between a customer and an agent, kept in Redis for a week.

A customer's file is fetched by the worker from the provider (the channel's own checks apply) and
kept here for the agent to download (`GET /agent/api/files/<id>`, the agent's session). An agent's
file is kept here for the customer's provider to fetch: channels send a file by URL, so it is served
at `{PUBLIC_BASE_URL}/agent/files/<id>?expires=…&signature=…`, a link signed with the deployment's
secret key that works until it expires and for nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote

from redis import Redis

from connector.store import keys, replies

FILE_TTL_SECONDS = 7 * 24 * 3600
MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest file kept; each channel's own limit is usually lower and applies first."""
LINK_SECONDS = 24 * 3600
"""How long a provider may fetch an agent's file (they fetch within minutes)."""


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    name: str
    mime_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


class FileTooLarge(ValueError):
    pass


def store(redis: Redis, name: str, mime_type: str, data: bytes) -> StoredFile:
    if len(data) > MAX_FILE_BYTES:
        raise FileTooLarge(f"{name} is {len(data)} bytes; files of up to {MAX_FILE_BYTES} bytes are passed on")
    file_id = uuid.uuid4().hex
    key = keys.hybrid_file(file_id)
    pipe = redis.pipeline(transaction=True)
    pipe.hset(key, mapping={"name": name, "mime_type": mime_type, "data": data})
    pipe.expire(key, FILE_TTL_SECONDS)
    replies.execute(pipe)
    return StoredFile(file_id, name, mime_type, data)


def load(redis: Redis, file_id: str) -> StoredFile | None:
    raw = replies.bytes_hash(redis.hgetall(keys.hybrid_file(file_id)))
    if not raw:
        return None
    return StoredFile(file_id, raw[b"name"].decode(), raw[b"mime_type"].decode(), raw.get(b"data", b""))


def signed_url(base_url: str, secret: str, file_id: str, *, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + LINK_SECONDS)
    return f"{base_url}/agent/files/{quote(file_id)}?expires={expires}&signature={_signature(secret, file_id, expires)}"


def link_valid(secret: str, file_id: str, expires: str, signature: str, *, now: float | None = None) -> bool:
    """The link is ours (constant-time compare) and has not expired."""
    if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(signature.encode(), _signature(secret, file_id, int(expires)).encode())


def _signature(secret: str, file_id: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"agent-file:{file_id}:{expires}".encode(), hashlib.sha256).hexdigest()
