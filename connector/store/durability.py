"""When an acknowledgement may go out: `CONNECTOR_DURABILITY`, decided in one place.

Every answer that tells an outside party "stored, you may forget it" (a provider's webhook, ECE's
callback batch, an agent's message through the agent API) calls `Durability.confirm()` after its
writes and before it answers (docs/architecture.md, "Redis durability"):

- `everysec` (default): nothing more. Redis writes each command to its AOF (the kernel's page cache)
  before it answers and fsyncs once a second: a crash of the Redis process loses nothing
  acknowledged, a crash of its host (power, kernel) can lose the last second or two.
- `always`: nothing more here either: Redis itself runs `appendfsync always` and fsyncs the AOF
  before it answers the write, so the 200 follows the fsync. The embedded Redis is started so; an
  external one is checked at start (`check_server`).
- `replicated`: `WAIT 1 <CONNECTOR_REPLICA_WAIT_MS>`. No replica confirmed in time → NotReplicated,
  answered 503 with Retry-After: the item is stored on the master and is handled, and the sender's
  retry is deduplicated, so the 503 costs a repeat, never a loss or a duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from flask import Flask, Response, jsonify, request
from redis import Redis
from redis.exceptions import RedisError, ResponseError

from connector.settings import Settings
from connector.store import keys, replies

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1
"""What a 503 for a missing replica asks the sender to wait: a replica that lagged catches up fast."""


class Mode(StrEnum):
    EVERYSEC = "everysec"
    ALWAYS = "always"
    REPLICATED = "replicated"


class NotReplicated(Exception):
    """No replica confirmed the writes in time: answered 503 so the sender retries."""


@dataclass(frozen=True)
class Durability:
    mode: Mode = Mode.EVERYSEC
    replica_wait_ms: int = 1000
    replicas: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Durability:
        """ValueError naming the variable when CONNECTOR_DURABILITY or CONNECTOR_REPLICA_WAIT_MS is wrong."""
        raw = settings.durability.strip().lower()
        try:
            mode = Mode(raw)
        except ValueError:
            choices = ", ".join(m.value for m in Mode)
            raise ValueError(f"CONNECTOR_DURABILITY must be one of {choices}; got {settings.durability!r}") from None
        if settings.replica_wait_ms <= 0:
            raise ValueError(
                f"CONNECTOR_REPLICA_WAIT_MS must be a positive number of ms; got {settings.replica_wait_ms}"
            )
        return cls(mode, settings.replica_wait_ms)

    @property
    def appendfsync(self) -> str:
        """The AOF policy a Redis this connector starts runs with."""
        return "always" if self.mode is Mode.ALWAYS else "everysec"

    def confirm(self, redis: Redis) -> None:
        """After the writes an answer acknowledges: with `replicated`, wait for a replica to hold them.

        WAIT counts replicas that acknowledged the replication offset of *its own connection's* last
        write, and a pooled client may have written on another connection: the probe's INCR, sent
        first on the same connection, lifts that offset past every write this process has made."""
        if self.mode is not Mode.REPLICATED:
            return
        pipe = redis.pipeline(transaction=False)
        pipe.incr(keys.durability_probe())
        pipe.wait(self.replicas, self.replica_wait_ms)
        _, confirmed = replies.execute(pipe)
        if int(confirmed) < self.replicas:
            log.warning(
                "no replica confirmed the write within %d ms: answered 503, the sender retries",
                self.replica_wait_ms,
                extra={"replicas": int(confirmed), "path": request.path if request else None},
            )
            raise NotReplicated(f"no replica confirmed the write within {self.replica_wait_ms} ms")

    def check_server(self, redis: Redis) -> None:
        """At start: log, loudly, when the Redis in use cannot keep the promise of this mode.

        It does not refuse to start: a web process that will not start accepts nothing, and the
        providers' retries run out (hours) while the operator fixes Redis; a running one that
        acknowledges with a weaker guarantee loses at most the last second's items, and only if Redis
        crashes in that window. The ERROR says what to fix."""
        if self.mode is Mode.ALWAYS:
            self._check_appendfsync(redis)
        elif self.mode is Mode.REPLICATED:
            self._check_replicas(redis)

    def _check_appendfsync(self, redis: Redis) -> None:
        try:
            answer = cast(dict[str, Any], redis.config_get("appendfsync"))
            appendonly = cast(dict[str, Any], redis.config_get("appendonly"))
        except ResponseError as exc:  # managed services rename or disable CONFIG
            log.warning(
                "CONNECTOR_DURABILITY=always: cannot check Redis's appendfsync (%s); make sure it is 'always'", exc
            )
            return
        except RedisError as exc:
            log.warning("CONNECTOR_DURABILITY=always: Redis did not answer the appendfsync check (%s)", exc)
            return
        fsync = _text(answer.get("appendfsync"))
        aof = _text(appendonly.get("appendonly"))
        if fsync != "always" or aof != "yes":
            log.error(
                "CONNECTOR_DURABILITY=always but Redis runs appendonly %s, appendfsync %s: an acknowledged "
                "message can be lost if Redis crashes; set `appendonly yes` and `appendfsync always` on it",
                aof,
                fsync,
            )

    def _check_replicas(self, redis: Redis) -> None:
        try:
            info = cast(dict[str, Any], redis.info("replication"))
        except RedisError as exc:
            log.warning("CONNECTOR_DURABILITY=replicated: cannot read Redis's replication state (%s)", exc)
            return
        connected = int(info.get("connected_slaves", 0))
        if connected < self.replicas:
            log.error(
                "CONNECTOR_DURABILITY=replicated but the Redis master has %d replicas connected: every "
                "acknowledgement is answered 503 until one is",
                connected,
            )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def install(app: Flask) -> None:
    """One answer for NotReplicated on every route that confirms (webhooks, ECE callback, agent API)."""

    @app.errorhandler(NotReplicated)
    def not_replicated(error: NotReplicated) -> tuple[Response, int]:
        answer = jsonify(error="unavailable", message=f"{error}; retry")
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return answer, 503
