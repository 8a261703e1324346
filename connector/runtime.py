"""The process's runtime: settings, the Redis client and the loaded configuration.

Web, worker and listener processes each install one at start; RQ jobs, which run outside any Flask
request, read it with `current()`. One process serves one deployment, so one runtime suffices.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property

import redis as redis_lib

from connector.channels import channel_class
from connector.channels.base import Channel
from connector.config.loader import load_config
from connector.config.model import Config
from connector.config.overrides import ConfigOverrides
from connector.errors import PermanentError
from connector.settings import Settings
from connector.store.boxes import Boxes
from connector.store.dispatch import Dispatch

log = logging.getLogger(__name__)

CONFIG_CHECK_SECONDS = 1.0
"""How stale a process's view of UI/API configuration changes may be (one Redis GET per period)."""


class RedisNotConfigured(RuntimeError):
    pass


@dataclass
class Runtime:
    settings: Settings
    _config: Config | None = field(default=None, repr=False)
    _merged: Config | None = field(default=None, repr=False)
    _merged_version: int = field(default=-1, repr=False)
    _merged_base: Config | None = field(default=None, repr=False)
    _checked_at: float = field(default=float("-inf"), repr=False)
    _channels: dict[tuple[int, str, str], Channel] = field(default_factory=dict, repr=False)
    _channels_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def redis(self) -> redis_lib.Redis:
        url = self.settings.redis_url
        if not url:
            raise RedisNotConfigured(
                "REDIS_URL is not set: start the stack with `python -m connector run` "
                "(it starts the embedded Redis) or point REDIS_URL at a Redis with AOF on"
            )
        return redis_lib.Redis.from_url(url, health_check_interval=30, socket_timeout=10)

    @cached_property
    def boxes(self) -> Boxes:
        return Boxes(
            self.redis, wake_ttl_seconds=int(self.settings.wake_ttl_seconds), dispatchers=self.settings.dispatchers
        )

    @cached_property
    def dispatch(self) -> Dispatch:
        return Dispatch(
            self.redis, wake_ttl_seconds=int(self.settings.wake_ttl_seconds), dispatchers=self.settings.dispatchers
        )

    @property
    def provisioned(self) -> Config:
        """The configuration of the `entrypoints/` files alone (read-only in the UI)."""
        if self._config is None:
            self._config = load_config(self.settings.config_dir)
        return self._config

    @property
    def overrides(self) -> ConfigOverrides:
        return ConfigOverrides(self.redis)

    @property
    def config(self) -> Config:
        """Provisioned files plus the items made in the UI or API (connector/config/overrides.py).

        Rebuilt when the store's version counter moves, checked at most every CONFIG_CHECK_SECONDS;
        writes through this runtime show at once (`config_changed`). Without Redis (check-config,
        unit tests of pure code) or when Redis is briefly unreachable, the last known one serves."""
        provisioned = self.provisioned
        if not self.settings.redis_url:
            return provisioned
        now = time.monotonic()
        stale = self._merged is None or self._merged_base is not provisioned
        if stale or now - self._checked_at >= CONFIG_CHECK_SECONDS:
            try:
                version = self.overrides.version()
                if stale or version != self._merged_version:
                    self._merged = self.overrides.merged(provisioned)
                    self._merged_version = version
                    self._merged_base = provisioned
            except redis_lib.RedisError as exc:
                if self._merged is None or self._merged_base is not provisioned:
                    return provisioned  # nothing merged over these files yet
                log.warning("configuration store unreachable; using the last loaded", extra={"error": str(exc)})
            self._checked_at = now
        assert self._merged is not None  # set above, or was already: only the type checker needs telling
        return self._merged

    def config_changed(self) -> None:
        """Re-read the store on the next `config` (after a write by this process)."""
        self._checked_at = float("-inf")

    def channel(self, channel: str, asset: str) -> Channel:
        """The channel instance that talks to `asset`'s customers: one per configuration and asset, so
        its HTTP session (and connection pool) is reused across sends. PermanentError when the asset
        is no longer configured."""
        config = self.config
        cache_key = (id(config), channel, asset)
        with self._channels_lock:
            instance = self._channels.get(cache_key)
            if instance is None:
                cls = channel_class(channel)
                configured = config.asset(channel, asset)
                if cls is None or configured is None:
                    raise PermanentError(
                        f"{channel} asset {asset!r} is no longer configured: messages for this customer cannot be sent"
                    )
                instance = self._channels[cache_key] = cls(configured, self.settings)
        return instance

    def reload_config(self) -> Config:
        self._config = load_config(self.settings.config_dir)
        return self.config


_current: Runtime | None = None


def install(runtime: Runtime) -> Runtime:
    global _current
    _current = runtime
    return runtime


def current() -> Runtime:
    global _current
    if _current is None:
        _current = Runtime(Settings.from_env())
    return _current
