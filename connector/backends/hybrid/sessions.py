"""An agent's sessions of the agent API: a random token, kept in Redis only as its SHA-256.

A login (`POST /agent/login`, `/agent/gadget/login`) issues a token. A browser holds it in the
agent's own cookie (COOKIE_NAME: HttpOnly, SameSite=Strict, Secure over https; never the operator's
session); another client sends it as `Authorization: Bearer <token>`. A session lives
IDLE_SECONDS after its last use (each use extends it) and never longer than MAX_SECONDS after the
login; `POST /agent/logout` ends it at once.

A cookie session's writes carry its CSRF token in `X-CSRF-Token` (a random value of the session,
compared in constant time): a page of another site can make the browser send the cookie, never the
header. A bearer client needs none: no browser adds an Authorization header on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis

from connector.store import keys, replies

COOKIE_NAME = "cc_agent"
"""The agent's session cookie; the operator's is Flask's `session`, never opened under /agent/."""
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PREFIX = "cca_"  # noqa: S105 - a token's marker, not a secret
IDLE_SECONDS = 12 * 3600
"""A session unused this long ends (a shift, with its breaks)."""
MAX_SECONDS = 24 * 3600
"""A session ends this long after its login, used or not: the agent logs in again each day."""


@dataclass(frozen=True)
class AgentSession:
    digest: str
    """SHA-256 of the token: the session's name in Redis (the token itself is never stored)."""
    agent_id: str
    login: str
    name: str | None
    csrf_token: str
    issued_at: float
    expires_at: float
    """When it ends unless used again (never later than issued_at + MAX_SECONDS)."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(redis: Redis, agent_id: str, login: str, name: str | None, *, via: str) -> tuple[str, AgentSession]:
    """A new session for the agent; returns the token (shown once) and the session."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = time.time()
    record = {
        "agent_id": agent_id,
        "login": login,
        "name": name,
        "csrf": secrets.token_urlsafe(24),
        "issued_at": now,
        "via": via,
    }
    token_digest = digest(token)
    pipe = redis.pipeline(transaction=True)
    pipe.set(keys.hybrid_session(token_digest), json.dumps(record, separators=(",", ":")), ex=IDLE_SECONDS)
    pipe.sadd(keys.hybrid_agent_sessions(agent_id), token_digest)
    pipe.expire(keys.hybrid_agent_sessions(agent_id), MAX_SECONDS)
    replies.execute(pipe)
    return token, _session(token_digest, record, now)


def resolve(redis: Redis, token: str) -> AgentSession | None:
    """The live session of `token`, its idle time restarted; None for an unknown, ended or revoked one."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    token_digest = digest(token)
    key = keys.hybrid_session(token_digest)
    raw = replies.bytes_or_none(redis.getex(key, ex=IDLE_SECONDS))  # a missing key stays missing
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        found = _session(token_digest, record, time.time())
    except (ValueError, KeyError, TypeError):
        redis.delete(key)
        return None
    if found.issued_at + MAX_SECONDS <= time.time():
        redis.delete(key)
        return None
    return found


def revoke(redis: Redis, session: AgentSession) -> bool:
    """End the session; True when it was the agent's last live one."""
    pipe = redis.pipeline(transaction=True)
    pipe.delete(keys.hybrid_session(session.digest))
    pipe.srem(keys.hybrid_agent_sessions(session.agent_id), session.digest)
    pipe.smembers(keys.hybrid_agent_sessions(session.agent_id))
    others = sorted(replies.bytes_set(replies.execute(pipe)[2]))
    if not others:
        return True
    check = redis.pipeline(transaction=False)
    for other in others:
        check.exists(keys.hybrid_session(other.decode()))
    alive = replies.execute(check)
    ended = [other for other, exists in zip(others, alive, strict=True) if not exists]
    if ended:
        redis.srem(keys.hybrid_agent_sessions(session.agent_id), *ended)
    return len(ended) == len(others)


def csrf_valid(session: AgentSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf_token.encode(), (given or "").encode())


def _session(token_digest: str, record: dict[str, Any], now: float) -> AgentSession:
    issued_at = float(record["issued_at"])
    name = record.get("name")
    return AgentSession(
        digest=token_digest,
        agent_id=str(record["agent_id"]),
        login=str(record["login"]),
        name=str(name) if name else None,
        csrf_token=str(record["csrf"]),
        issued_at=issued_at,
        expires_at=min(now + IDLE_SECONDS, issued_at + MAX_SECONDS),
    )
