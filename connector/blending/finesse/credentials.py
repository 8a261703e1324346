"""Agents' Finesse credentials, held encrypted in Redis.

An agent logs in to the connector with their Finesse login; the connector verifies it against
Finesse and keeps the password encrypted (Fernet, key derived from CONNECTOR_SECRET_KEY), so the
listener can open that agent's XMPP session. Passwords are never logged or returned by any API.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis import Redis

from connector.store import keys, replies


def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise ValueError("CONNECTOR_SECRET_KEY is required to hold agent credentials")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"connector agent credentials").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


@dataclass
class CredentialStore:
    redis: Redis
    secret_key: str

    def save(self, agent_id: str, login: str, password: str) -> None:
        token = _fernet(self.secret_key).encrypt(f"{login}\0{password}".encode())
        self.redis.hset(keys.agent_credentials(), mapping={agent_id: token})

    def remove(self, agent_id: str) -> None:
        self.redis.hdel(keys.agent_credentials(), agent_id)

    def get(self, agent_id: str) -> tuple[str, str] | None:
        """(login, password) for Basic auth / XMPP, or None; a token the key cannot open is None
        (the secret key was rotated: the agent logs in again)."""
        token = replies.bytes_or_none(self.redis.hget(keys.agent_credentials(), agent_id))
        if token is None:
            return None
        try:
            login, _, password = _fernet(self.secret_key).decrypt(token).decode().partition("\0")
        except InvalidToken:
            return None
        return login, password

    def agents(self) -> list[str]:
        return sorted(a.decode() for a in replies.bytes_list(self.redis.hkeys(keys.agent_credentials())))
