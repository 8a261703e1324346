"""The one way every process reaches Redis: settings in, a redis-py client out.

Web, workers (RQ takes this client), listener and the supervisor all call `connect()`, so the same
environment gives every process the same Redis:

- `REDIS_URL`: one server, as redis-py's URL says (`redis://`, `rediss://` for TLS, `unix://`);
- `REDIS_SENTINELS` + `REDIS_SENTINEL_MASTER`: the master is asked of Redis Sentinel (redis-py's
  `Sentinel.master_for`), and asked again whenever a connection to it fails, so after a failover new
  connections reach the promoted replica. A command that fails while the sentinels switch
  (connection refused or reset, a timeout, or the old master answering READONLY, which redis-py
  turns into a connection error) is retried with backoff for about FAILOVER_RETRY_SECONDS; past
  that the caller sees the error: the intake answers 503 (the provider retries) and a worker's loop
  tries again later (docs/architecture.md, "Redis durability").

Neither set: `python -m connector run` starts the embedded Redis and passes its URL on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis as redis_lib
from redis.backoff import ExponentialBackoff
from redis.connection import SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

from connector.settings import Settings

SOCKET_TIMEOUT_SECONDS = 10.0
"""Longest wait for one answer (RQ raises it for its blocking dequeue)."""
HEALTH_CHECK_SECONDS = 30
"""An idle pooled connection is PINGed before reuse after this long, so a dead one is replaced."""
SENTINEL_TIMEOUT_SECONDS = 2.0
"""A sentinel that does not answer this fast is skipped for the next one."""
FAILOVER_BACKOFF = (0.1, 1.0)
"""First wait and longest wait between two tries of a command during a failover (doubling)."""
FAILOVER_RETRIES = 8
FAILOVER_RETRY_SECONDS = 6.4
"""About how long a command keeps trying through a failover (0.2 + 0.4 + 0.8 + 5 x 1.0 s)."""


class MasterConnection(SentinelManagedConnection):
    """redis-py's sentinel-managed connection, but a read interrupted by an exception (RQ's warm
    shutdown raises one in the middle of its blocking dequeue) closes the connection, as redis-py's
    plain `Connection` does. redis-py 5.2 leaves it open (redis/redis-py#4292, open): it goes back to
    the pool with its reply unread, and the next command there reads that reply (or waits behind the
    blocking command): a worker on Sentinel never finished its warm shutdown."""

    def read_response(
        self,
        disable_decoding: bool = False,
        *,
        disconnect_on_error: bool | None = True,
        push_request: bool | None = False,
    ) -> Any:
        return super().read_response(
            disable_decoding=disable_decoding, disconnect_on_error=disconnect_on_error, push_request=push_request
        )


class MasterSSLConnection(MasterConnection, SSLConnection):
    """MasterConnection over TLS."""


class RedisNotConfigured(RuntimeError):
    """No Redis is named: the process cannot run without one."""


class RedisSettingsError(ValueError):
    """The Redis variables contradict each other or are malformed; the message names the variable."""


def configured(settings: Settings) -> bool:
    """Whether the environment names a Redis (else `run` starts the embedded one)."""
    return bool(settings.redis_url or settings.redis_sentinels)


def sentinel_addresses(settings: Settings) -> list[tuple[str, int]]:
    """REDIS_SENTINELS as (host, port) pairs; RedisSettingsError naming the bad entry."""
    addresses = []
    for entry in settings.redis_sentinels:
        host, _, port = entry.rpartition(":")
        host = host.strip("[]")  # [::1]:26379
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisSettingsError(f"REDIS_SENTINELS entry {entry!r} is not host:port (e.g. redis-a:26379)")
        addresses.append((host, int(port)))
    return addresses


def validate(settings: Settings) -> None:
    """Every problem of the Redis variables, before anything connects (RedisSettingsError)."""
    if settings.redis_url and settings.redis_sentinels:
        raise RedisSettingsError("set REDIS_URL or REDIS_SENTINELS, not both")
    if settings.redis_sentinels:
        sentinel_addresses(settings)
        if not settings.redis_sentinel_master:
            raise RedisSettingsError("REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER (the master's name) is not")
    elif settings.redis_sentinel_master:
        raise RedisSettingsError("REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS (host:port,...) is not")
    if settings.redis_url:
        scheme = urlsplit(settings.redis_url).scheme
        if scheme not in {"redis", "rediss", "unix"}:
            raise RedisSettingsError(f"REDIS_URL must start with redis://, rediss:// or unix://, got {scheme!r}")
        if settings.redis_tls and scheme != "rediss":
            raise RedisSettingsError("REDIS_TLS=1 with REDIS_URL needs a rediss:// URL")
    tls = settings.redis_tls or (settings.redis_url or "").startswith("rediss://")
    if settings.redis_tls_ca_file is not None:
        if not tls:
            raise RedisSettingsError("REDIS_TLS_CA_FILE is set but TLS is off: set REDIS_TLS=1 (or a rediss:// URL)")
        if not Path(settings.redis_tls_ca_file).is_file():
            raise RedisSettingsError(f"REDIS_TLS_CA_FILE {str(settings.redis_tls_ca_file)!r} is not a readable file")


def connect(settings: Settings) -> redis_lib.Redis:
    """The client of this deployment's Redis (see the module docstring)."""
    validate(settings)
    if settings.redis_sentinels:
        return _sentinel_master(settings)
    if not settings.redis_url:
        raise RedisNotConfigured(
            "no Redis is configured: set REDIS_URL (or REDIS_SENTINELS and REDIS_SENTINEL_MASTER), or start "
            "the stack with `python -m connector run`, which starts the embedded Redis"
        )
    options: dict[str, Any] = {"health_check_interval": HEALTH_CHECK_SECONDS, "socket_timeout": SOCKET_TIMEOUT_SECONDS}
    if settings.redis_url.startswith("rediss://"):
        options.update(_tls(settings))
    client = redis_lib.Redis.from_url(settings.redis_url, **options)
    # The URL's own user and password win in from_url; REDIS_USERNAME / REDIS_PASSWORD are meant to win.
    client.connection_pool.connection_kwargs.update(_auth(settings))
    return client


def _sentinel_master(settings: Settings) -> redis_lib.Redis:
    tls = _tls(settings) if settings.redis_tls else {}
    sentinel_options: dict[str, Any] = {
        "socket_timeout": SENTINEL_TIMEOUT_SECONDS,
        "socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
        **({"ssl": True, **tls} if tls else {}),
    }
    if settings.redis_sentinel_password:
        sentinel_options["password"] = settings.redis_sentinel_password
    # redis-py's sentinel module carries no annotations
    sentinel = Sentinel(sentinel_addresses(settings), sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    client: redis_lib.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        settings.redis_sentinel_master,
        connection_class=MasterSSLConnection if settings.redis_tls else MasterConnection,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SENTINEL_TIMEOUT_SECONDS,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=Retry(ExponentialBackoff(cap=FAILOVER_BACKOFF[1], base=FAILOVER_BACKOFF[0]), FAILOVER_RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ReadOnlyError],
        **_auth(settings),
        **tls,
    )
    return client


def _auth(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_password:
        options["password"] = settings.redis_password
    return options


def _tls(settings: Settings) -> dict[str, Any]:
    """TLS options that verify the server's certificate and name (redis-py's default, said aloud)."""
    options: dict[str, Any] = {"ssl_cert_reqs": "required"}
    if settings.redis_tls_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.redis_tls_ca_file)
    return options


def describe(settings: Settings) -> str:
    """Where this deployment's Redis is, for the banner and logs: no password in it."""
    if settings.redis_sentinels:
        tls = " (TLS)" if settings.redis_tls else ""
        return f"master {settings.redis_sentinel_master!r} via sentinels {','.join(settings.redis_sentinels)}{tls}"
    url = settings.redis_url or ""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
