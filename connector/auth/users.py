"""Operator accounts in Redis: hashed passwords (werkzeug's scrypt), one role each.

Roles, weakest first: viewer (reads everything), editor (also changes templates and rules), admin
(everything: integrations, assets, dead letters, import, users). A role check is always "at least".
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from redis import Redis
from werkzeug.security import check_password_hash, generate_password_hash

from connector.store import keys, replies

ROLES = ("viewer", "editor", "admin")
ADMIN = "admin"
MIN_PASSWORD_LENGTH = 8
MAX_FAILURES = 5
"""Failed logins of one account within LOCKOUT_SECONDS before it is locked for the rest of it."""
LOCKOUT_SECONDS = 900
_DUMMY_HASH = generate_password_hash("not a password")  # unknown users cost the same time as known ones


@dataclass(frozen=True)
class User:
    """An operator; the Flask-Login user object (its id is the name)."""

    name: str
    role: str
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return self.name

    def can(self, role: str) -> bool:
        """At least `role`."""
        return ROLES.index(self.role) >= ROLES.index(role)


class AccountError(ValueError):
    """A bad account change, every problem of it at once; each message says what to do. `errors` maps
    the offending input to its messages, "_schema" for a change that conflicts with the accounts as
    they are (the last admin); `field` is the first input named (None for such a conflict alone)."""

    def __init__(self, message: str | Mapping[str, list[str]], field: str | None = None) -> None:
        errors = {field or "_schema": [message]} if isinstance(message, str) else dict(message)
        super().__init__("; ".join(m for messages in errors.values() for m in messages))
        self.errors = errors
        self.field = next((name for name in errors if name != "_schema"), None)

    @property
    def messages(self) -> list[str]:
        return [m for messages in self.errors.values() for m in messages]


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"passwords have at least {MIN_PASSWORD_LENGTH} characters"
    return None


class LockedOut(Exception):
    pass


class Users:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def get(self, name: str) -> User | None:
        raw = replies.bytes_or_none(self.redis.hget(keys.users(), name))
        if raw is None:
            return None
        return User(name=name, role=json.loads(raw)["role"])

    def listing(self) -> list[User]:
        stored = replies.bytes_hash(self.redis.hgetall(keys.users()))
        return [User(name=name.decode(), role=json.loads(raw)["role"]) for name, raw in sorted(stored.items())]

    def save(self, name: str, role: str, password: str | None = None) -> User:
        """Create or update; a new account needs a password. AccountError names every problem at once."""
        errors: dict[str, list[str]] = {}
        if not name or len(name) > 64 or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
            errors["name"] = ["user names are 1-64 letters, digits, _ . -"]
        if role not in ROLES:
            errors["role"] = [f"role must be one of {', '.join(ROLES)}"]
        current = replies.bytes_or_none(self.redis.hget(keys.users(), name)) if "name" not in errors else None
        record = json.loads(current) if current else {"created_at": time.time()}
        if current and record["role"] == ADMIN and role != ADMIN and self._admins() == [name]:
            errors["_schema"] = ["the last admin cannot lose the admin role"]
        if password is not None and (weak := password_problem(password)):
            errors["password"] = [weak]
        elif password is None and not current:
            errors["password"] = ["a new account needs a password"]
        if errors:
            raise AccountError(errors)
        if password is not None:
            record["password_hash"] = generate_password_hash(password)
        record["role"] = role
        self.redis.hset(keys.users(), name, json.dumps(record))
        return User(name=name, role=role)

    def delete(self, name: str) -> bool:
        if self._admins() == [name]:
            raise AccountError("the last admin cannot be deleted")
        return bool(self.redis.hdel(keys.users(), name))

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password is right; LockedOut after MAX_FAILURES recent failures."""
        failures_key = keys.login_failures(name)
        if int(replies.bytes_or_none(self.redis.get(failures_key)) or 0) >= MAX_FAILURES:
            raise LockedOut(name)
        raw = replies.bytes_or_none(self.redis.hget(keys.users(), name))
        record = json.loads(raw) if raw else None
        if check_password_hash(record["password_hash"] if record else _DUMMY_HASH, password) and record:
            self.redis.delete(failures_key)
            return User(name=name, role=record["role"])
        pipe = self.redis.pipeline()
        pipe.incr(failures_key)
        pipe.expire(failures_key, LOCKOUT_SECONDS)
        replies.execute(pipe)
        return None

    def bootstrap_admin(self, password: str) -> None:
        """CONNECTOR_ADMIN_PASSWORD: the `admin` account exists with this password and the admin role."""
        raw = replies.bytes_or_none(self.redis.hget(keys.users(), ADMIN))
        record = json.loads(raw) if raw else None
        if record and record["role"] == ADMIN and check_password_hash(record["password_hash"], password):
            return
        self.save(ADMIN, ADMIN, password)

    def _admins(self) -> list[str]:
        return [u.name for u in self.listing() if u.role == ADMIN]
