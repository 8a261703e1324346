"""A Redis lease: one process at a time holds a key, and a standby takes it over when it lapses.

The listener holds `keys.listener_lease()` so that, with listeners on several hosts sharing one
Redis, only one drives the Finesse agents (XMPP sessions, state changes) at a time.

Invariants:
- the key holds the holder's token with a PX expiry; it is taken with SET NX PX, and renewed or
  released only by a script that first checks the token, so a holder whose lease lapsed and was
  taken can never extend or delete its successor's;
- the holder considers itself the holder only until `HOLD_FRACTION` of the TTL after it *sent* its
  last successful SET or renewal (measured on its own monotonic clock): Redis expires the key no
  sooner than a full TTL after it received that command, so the holder gives up at least a third
  of a TTL before any standby can take over, and that margin is its time to stop acting.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError

from connector.store import replies
from connector.store.tokens import DELETE_IF_HELD

log = logging.getLogger(__name__)

HOLD_FRACTION = 2 / 3
"""Share of the TTL after the last successful renewal during which the holder still acts."""

RENEWALS_PER_TTL = 5
"""Renewal attempts per TTL: several tries before HOLD_FRACTION runs out when Redis hiccups."""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class Lease:
    """One process's claim on `key`. `acquire` takes it when free, `keep` renews it on a thread
    until `release` or until it is lost (then `on_lost` runs once), `held` says whether to act."""

    def __init__(self, redis: Redis, key: str, ttl_seconds: float, *, owner: str) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"a lease needs a positive TTL, got {ttl_seconds}")
        self.redis = redis
        self.key = key
        self.ttl_seconds = ttl_seconds
        self.token = f"{owner}:{secrets.token_hex(8)}"
        """Unique per process and per Lease: a restarted process on the same host is someone else."""
        self._valid_until = float("-inf")
        self._stopped = threading.Event()
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(DELETE_IF_HELD)

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl_seconds * 1000))

    def held(self) -> bool:
        """True while this process may act as the holder (see HOLD_FRACTION)."""
        return time.monotonic() < self._valid_until

    def acquire(self) -> bool:
        """Take the lease if nobody holds it (or renew it if this process already does)."""
        sent = time.monotonic()
        if self.redis.set(self.key, self.token, nx=True, px=self._ttl_ms):
            self._granted(sent)
            return True
        return self.renew()

    def renew(self) -> bool:
        """Extend the lease if this process still holds it; False (and `held` False) when it lapsed
        or another process took it. A RedisError leaves `held` to run out on its own."""
        sent = time.monotonic()
        if self._renew(keys=[self.key], args=[self.token, self._ttl_ms]):
            self._granted(sent)
            return True
        self._valid_until = float("-inf")
        return False

    def release(self) -> None:
        """Stop renewing and delete the key if it is still this process's, so a standby takes over at
        once instead of after the TTL. Redis unreachable: the key lapses by itself."""
        self._stopped.set()
        self._valid_until = float("-inf")
        try:
            self._release(keys=[self.key], args=[self.token])
        except RedisError as exc:
            log.warning("lease %s not released (it lapses by itself): %s", self.key, exc)

    def holder(self) -> str | None:
        """The token of whoever holds the lease now (owner name first), for logs and status."""
        value = replies.bytes_or_none(self.redis.get(self.key))
        return value.decode() if value is not None else None

    def keep(self, on_lost: Callable[[], None]) -> threading.Thread:
        """Renew every TTL / RENEWALS_PER_TTL on a daemon thread until `release`; when a renewal is
        refused or `held` runs out, call `on_lost` once and stop. Call after `acquire` succeeded; a
        renewal thread of an earlier term (one still stuck in a call to an unreachable Redis) ends."""
        self._stopped.set()
        self._stopped = stopped = threading.Event()
        thread = threading.Thread(target=self._keep, args=(on_lost, stopped), name="lease-renewal", daemon=True)
        thread.start()
        return thread

    def _keep(self, on_lost: Callable[[], None], stopped: threading.Event) -> None:
        interval = self.ttl_seconds / RENEWALS_PER_TTL
        while not stopped.wait(interval):
            try:
                if self.renew():
                    continue
                reason = "taken by another process or expired"
            except RedisError as exc:
                if self.held():
                    log.warning("lease %s not renewed, retrying: %s", self.key, exc)
                    continue
                reason = f"not renewed in time: {exc}"
            if stopped.is_set():
                return  # released (or a new term began) while the call was in flight: not a loss
            self._valid_until = float("-inf")
            log.warning("lease %s lost (%s)", self.key, reason)
            on_lost()
            return

    def _granted(self, sent: float) -> None:
        # max: a late answer to an older renewal never shortens what a newer one granted
        self._valid_until = max(self._valid_until, sent + self.ttl_seconds * HOLD_FRACTION)
