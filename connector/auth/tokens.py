"""API tokens for `/api/v1`: random, shown once, stored only as their SHA-256.

A token acts as its user with that user's current role (demoting a user demotes their tokens).
SHA-256 without salt is right here: tokens are 256 random bits, not guessable passwords.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from redis import Redis

from connector.auth.users import User, Users
from connector.store import keys, replies

PREFIX = "cct_"


@dataclass(frozen=True)
class TokenInfo:
    id: str
    """The first 12 hex digits of the digest: enough to name and revoke a token, useless to use it."""
    user: str
    label: str
    created_at: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokens:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def issue(self, user: str, label: str) -> str:
        token = PREFIX + secrets.token_urlsafe(32)
        record = {"user": user, "label": label[:100], "created_at": time.time()}
        self.redis.hset(keys.api_tokens(), _digest(token), json.dumps(record))
        return token

    def describe(self, token: str) -> TokenInfo | None:
        """What is stored about `token` (to show right after issuing it)."""
        digest = _digest(token)
        raw = replies.bytes_or_none(self.redis.hget(keys.api_tokens(), digest))
        if raw is None:
            return None
        record = json.loads(raw)
        return TokenInfo(digest[:12], record["user"], record["label"], record["created_at"])

    def resolve(self, token: str) -> User | None:
        raw = replies.bytes_or_none(self.redis.hget(keys.api_tokens(), _digest(token)))
        if raw is None:
            return None
        return Users(self.redis).get(json.loads(raw)["user"])

    def listing(self, user: str | None = None) -> list[TokenInfo]:
        found = []
        stored = replies.bytes_hash(self.redis.hgetall(keys.api_tokens()))
        for digest, raw in stored.items():
            record = json.loads(raw)
            if user is None or record["user"] == user:
                found.append(TokenInfo(digest.decode()[:12], record["user"], record["label"], record["created_at"]))
        return sorted(found, key=lambda t: t.created_at)

    def revoke(self, token_id: str, user: str | None = None) -> bool:
        """Revoke by id (any user's when `user` is None, i.e. an admin)."""
        stored = replies.bytes_hash(self.redis.hgetall(keys.api_tokens()))
        for digest, raw in stored.items():
            if digest.decode().startswith(token_id) and len(token_id) >= 12:
                if user is not None and json.loads(raw)["user"] != user:
                    return False
                removed = self.redis.hdel(keys.api_tokens(), digest)  # type: ignore[arg-type]  # typed str, takes bytes
                return bool(removed)
        return False
