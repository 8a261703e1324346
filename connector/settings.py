"""Environment → typed settings, read in one place.

Every process (web, worker, listener, CLI) builds its settings with `Settings.from_env()`; nothing
else reads `os.environ` for configuration. Each field names its environment variable next to its
default, so a default is written once: an unset or empty variable keeps it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be a whole number, got {raw!r}") from exc


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from exc


def _text(_name: str, raw: str) -> str:
    return raw


def _path(_name: str, raw: str) -> Path:
    return Path(raw)


def _flag(_name: str, raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes"}


def _url(_name: str, raw: str) -> str:
    return raw.rstrip("/")


def _upper(_name: str, raw: str) -> str:
    return raw.upper()


def _hosts(_name: str, raw: str) -> tuple[str, ...]:
    return tuple(h.strip() for h in raw.split(",") if h.strip())


def env(variable: str, default: Any, parse: Callable[[str, str], Any]) -> Any:
    """A setting read from `variable` with `parse`; `default` when the variable is unset or empty."""
    return field(default=default, metadata={"env": variable, "parse": parse})


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = env("REDIS_URL", None, _text)
    """Redis to use; unset (and no REDIS_SENTINELS) means start the embedded redis-server under `data_dir`."""

    redis_sentinels: tuple[str, ...] = env("REDIS_SENTINELS", (), _hosts)
    """Redis Sentinels as `host:port,host:port`: the master is asked of them (instead of REDIS_URL)."""

    redis_sentinel_master: str = env("REDIS_SENTINEL_MASTER", "", _text)
    """The master's name the sentinels monitor (`sentinel monitor <name> ...`); needed with REDIS_SENTINELS."""

    redis_username: str = env("REDIS_USERNAME", "", _text)
    """ACL user for Redis itself (with REDIS_SENTINELS, or over REDIS_URL's)."""

    redis_password: str = env("REDIS_PASSWORD", "", _text)
    """Password for Redis itself (with REDIS_SENTINELS, or over REDIS_URL's)."""

    redis_sentinel_password: str = env("REDIS_SENTINEL_PASSWORD", "", _text)
    """Password of the sentinels (`requirepass` in sentinel.conf), when they have one."""

    redis_tls: bool = env("REDIS_TLS", False, _flag)
    """TLS to the sentinels and the master (certificates verified); with REDIS_URL use `rediss://`."""

    redis_tls_ca_file: Path | None = env("REDIS_TLS_CA_FILE", None, _path)
    """CA bundle that signed the Redis (and sentinel) certificates; the system's CAs when unset."""

    durability: str = env("CONNECTOR_DURABILITY", "everysec", _text)
    """When a webhook is acknowledged: `everysec` (AOF fsync each second), `always` (fsync before the
    answer), `replicated` (a replica confirmed it: WAIT) (docs/architecture.md, "Redis durability")."""

    replica_wait_ms: int = env("CONNECTOR_REPLICA_WAIT_MS", 1000, _int)
    """With `replicated`: how long an acknowledgement waits for a replica before answering 503."""

    config_dir: Path = env("CONNECTOR_CONFIG_DIR", PROJECT_ROOT / "entrypoints", _path)
    """Folder of provisioned YAML files (`entrypoints/*.yaml`)."""

    templates_dir: Path = env("CONNECTOR_TEMPLATES_DIR", PROJECT_ROOT / "message_templates", _path)
    """Folder of default system-message templates, one sub-folder per locale."""

    public_base_url: str = env("PUBLIC_BASE_URL", "http://localhost:8000", _url)
    """The URL providers call; webhook signatures are checked against it, never the request URL."""

    secret_key: str = env("CONNECTOR_SECRET_KEY", "", _text)
    """Flask session signing key; a random per-process key is used when unset (dev only)."""

    admin_password: str | None = env("CONNECTOR_ADMIN_PASSWORD", None, _text)
    """Bootstraps the `admin` operator user."""

    api_token: str = env("CONNECTOR_API_TOKEN", "", _text)
    """Bearer token of the read-only agents API until operator accounts and API tokens exist."""

    log_level: str = env("LOG_LEVEL", "INFO", _upper)
    """Root log level."""

    data_dir: Path = env("CONNECTOR_DATA_DIR", PROJECT_ROOT / "var", _path)
    """Embedded Redis data (AOF) and other local state."""

    max_body_bytes: int = env("CONNECTOR_MAX_BODY_BYTES", 3 * 1024 * 1024, _int)
    """Largest webhook body accepted; Meta sends up to 3 MB, anything larger is answered 413."""

    lease_seconds: float = env("CONNECTOR_LEASE_SECONDS", 30.0, _float)
    """How long a drain job may hold a conversation without renewing; a dead worker's lease lapses after it."""

    sweep_interval_seconds: float = env("CONNECTOR_SWEEP_INTERVAL_SECONDS", 5.0, _float)
    """How often a worker looks for inboxes with items and no live lease."""

    wake_ttl_seconds: float = env("CONNECTOR_WAKE_TTL_SECONDS", 30.0, _float)
    """How long a queued drain wake-up is trusted; after it the sweeper re-wakes a waiting inbox."""

    dispatchers: int = env("CONNECTOR_DISPATCHERS", 2, _int)
    """Most drain dispatch jobs at once: parallel conversations, without one RQ job per message."""

    web_threads: int = env("CONNECTOR_WEB_THREADS", 48, _int)
    """Threads of each web process (gunicorn gthread). An agent's open event stream or long poll holds
    one; a quarter (at least 4) are kept for webhooks and pages, so the default serves ~100 waiting
    agents over three web processes (docs/hybrid.md, "Waiting for events")."""

    drain_threads: int = env("CONNECTOR_DRAIN_THREADS", 4, _int)
    """Drain loops each dispatch job starts with, side by side: draining mostly waits on ECE and
    the providers, and with answers this fast a few loops keep up without contending for the CPU."""

    drain_threads_max: int = env("CONNECTOR_DRAIN_THREADS_MAX", 256, _int)
    """Most drain loops of one dispatch job: a loop whose item waited on a slow call starts another,
    so the calls in flight follow the contact center's latency (docs/architecture.md, "Calls in
    flight"). Each loop holds one conversation at a time, so order per conversation is kept."""

    backlog_warning_seconds: float = env("CONNECTOR_BACKLOG_WARNING_SECONDS", 60.0, _float)
    """`/readyz` and the home page warn when a customer message has waited this long for the
    contact center (readiness stays: intake must keep accepting)."""

    availability_cache_seconds: float = env("CONNECTOR_AVAILABILITY_CACHE_SECONDS", 2.0, _float)
    """How long an entry point's availability answer is reused by a worker: a burst of new chats
    asks ECE once, not five calls per chat (0: ask every time)."""

    worker_nice: int = env("CONNECTOR_WORKER_NICE", 10, _int)
    """CPU priority step of workers below the web process: under a burst, acknowledging webhooks
    (which providers time out and retry) comes before draining inboxes (which only queue)."""

    sandbox: bool = env("CONNECTOR_SANDBOX", False, _flag)
    """Run with the simulators and the sandbox configuration (customer files may then come from
    loopback and private addresses)."""

    retry_base_seconds: float = env("CONNECTOR_RETRY_BASE_SECONDS", 1.0, _float)
    """First wait after a retryable failure (ECE or provider down, 5xx, 429); doubles, with jitter."""

    retry_max_seconds: float = env("CONNECTOR_RETRY_MAX_SECONDS", 30.0, _float)
    """Longest wait between two attempts of the same item."""

    retry_horizon_seconds: float = env("CONNECTOR_RETRY_HORIZON_SECONDS", 3600.0, _float)
    """How long an item is retried before it goes to the dead-letter list (a long ECE outage keeps
    the customer's messages, in order, for this long)."""

    media_allowlist: tuple[str, ...] = env("CONNECTOR_MEDIA_ALLOWLIST", (), _hosts)
    """Extra hosts (`host` or `*.suffix`) customer files may be fetched from, besides the providers'."""

    template_output_cap: int = env("CONNECTOR_TEMPLATE_OUTPUT_CAP", 2000, _int)
    """Longest rendered system message, in characters."""

    listener_lease_seconds: float = env("CONNECTOR_LISTENER_LEASE_SECONDS", 5.0, _float)
    """How long the listener's lease lasts without renewal: one listener drives Finesse agents, and a
    standby takes over within about this long after its death (connector/blending/lease.py)."""

    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """The settings of this process's environment; `overrides` win (tests, the CLI's flags)."""
        values: dict[str, Any] = {}
        for setting in fields(cls):
            variable = setting.metadata.get("env")
            raw = os.environ.get(variable, "") if variable else ""
            if raw != "":
                values[setting.name] = setting.metadata["parse"](variable, raw)
        values.update(overrides)
        return cls(**values)
