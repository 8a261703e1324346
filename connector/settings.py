"""Environment → typed settings, read in one place.

Every process (web, worker, listener, CLI) builds its settings with `Settings.from_env()`; nothing
else reads `os.environ` for configuration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be a whole number, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None
    """Redis to use; unset means start the embedded redis-server under `data_dir`."""

    config_dir: Path = PROJECT_ROOT / "entrypoints"
    """Folder of provisioned YAML files (`entrypoints/*.yaml`)."""

    templates_dir: Path = PROJECT_ROOT / "message_templates"
    """Folder of default system-message templates, one sub-folder per locale."""

    public_base_url: str = "http://localhost:8000"
    """The URL providers call; webhook signatures are checked against it, never the request URL."""

    secret_key: str = ""
    """Flask session signing key; a random per-process key is used when unset (dev only)."""

    admin_password: str | None = None
    """Bootstraps the `admin` operator user."""

    api_token: str = ""
    """Bearer token of the read-only agents API until operator accounts and API tokens exist."""

    log_level: str = "INFO"
    """Root log level."""

    data_dir: Path = PROJECT_ROOT / "var"
    """Embedded Redis data (AOF) and other local state."""

    max_body_bytes: int = 3 * 1024 * 1024
    """Largest webhook body accepted; Meta sends up to 3 MB, anything larger is answered 413."""

    lease_seconds: float = 30.0
    """How long a drain job may hold a conversation without renewing; a dead worker's lease lapses after it."""

    sweep_interval_seconds: float = 5.0
    """How often a worker looks for inboxes with items and no live lease."""

    wake_ttl_seconds: float = 30.0
    """How long a queued drain wake-up is trusted; after it the sweeper re-wakes a waiting inbox."""

    dispatchers: int = 2
    """Most drain dispatch jobs at once: parallel conversations, without one RQ job per message."""

    drain_threads: int = 4
    """Drain loops per dispatch job, side by side: draining mostly waits on ECE and providers."""

    availability_cache_seconds: float = 2.0
    """How long an entry point's availability answer is reused by a worker: a burst of new chats
    asks ECE once, not five calls per chat (0: ask every time)."""

    worker_nice: int = 10
    """CPU priority step of workers below the web process: under a burst, acknowledging webhooks
    (which providers time out and retry) comes before draining inboxes (which only queue)."""

    sandbox: bool = False
    """Run with the simulators and the sandbox configuration (customer files may then come from
    loopback and private addresses)."""

    retry_base_seconds: float = 1.0
    """First wait after a retryable failure (ECE or provider down, 5xx, 429); doubles, with jitter."""

    retry_max_seconds: float = 30.0
    """Longest wait between two attempts of the same item."""

    retry_horizon_seconds: float = 3600.0
    """How long an item is retried before it goes to the dead-letter list (a long ECE outage keeps
    the customer's messages, in order, for this long)."""

    media_allowlist: tuple[str, ...] = ()
    """Extra hosts (`host` or `*.suffix`) customer files may be fetched from, besides the providers'."""

    template_output_cap: int = 2000
    """Longest rendered system message, in characters."""

    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {
            "redis_url": env.get("REDIS_URL") or None,
            "config_dir": Path(env.get("CONNECTOR_CONFIG_DIR") or PROJECT_ROOT / "entrypoints"),
            "templates_dir": Path(env.get("CONNECTOR_TEMPLATES_DIR") or PROJECT_ROOT / "message_templates"),
            "public_base_url": (env.get("PUBLIC_BASE_URL") or "http://localhost:8000").rstrip("/"),
            "secret_key": env.get("CONNECTOR_SECRET_KEY", ""),
            "admin_password": env.get("CONNECTOR_ADMIN_PASSWORD") or None,
            "api_token": env.get("CONNECTOR_API_TOKEN", ""),
            "log_level": (env.get("LOG_LEVEL") or "INFO").upper(),
            "data_dir": Path(env.get("CONNECTOR_DATA_DIR") or PROJECT_ROOT / "var"),
            "max_body_bytes": _int("CONNECTOR_MAX_BODY_BYTES", 3 * 1024 * 1024),
            "lease_seconds": _float("CONNECTOR_LEASE_SECONDS", 30.0),
            "sweep_interval_seconds": _float("CONNECTOR_SWEEP_INTERVAL_SECONDS", 5.0),
            "wake_ttl_seconds": _float("CONNECTOR_WAKE_TTL_SECONDS", 30.0),
            "dispatchers": _int("CONNECTOR_DISPATCHERS", 2),
            "worker_nice": _int("CONNECTOR_WORKER_NICE", 10),
            "drain_threads": _int("CONNECTOR_DRAIN_THREADS", 4),
            "availability_cache_seconds": _float("CONNECTOR_AVAILABILITY_CACHE_SECONDS", 2.0),
            "sandbox": env.get("CONNECTOR_SANDBOX", "") in {"1", "true", "yes"},
            "retry_base_seconds": _float("CONNECTOR_RETRY_BASE_SECONDS", 1.0),
            "retry_max_seconds": _float("CONNECTOR_RETRY_MAX_SECONDS", 30.0),
            "retry_horizon_seconds": _float("CONNECTOR_RETRY_HORIZON_SECONDS", 3600.0),
            "media_allowlist": tuple(
                h.strip() for h in (env.get("CONNECTOR_MEDIA_ALLOWLIST") or "").split(",") if h.strip()
            ),
            "template_output_cap": _int("CONNECTOR_TEMPLATE_OUTPUT_CAP", 2000),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
