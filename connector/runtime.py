"""The process's runtime: settings, the Redis client and the loaded configuration.

Web, worker and listener processes each install one at start; RQ jobs, which run outside any Flask
request, read it with `current()`. One process serves one deployment, so one runtime suffices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis as redis_lib

from connector.config.loader import load_config
from connector.config.model import Config
from connector.settings import Settings
from connector.store.inbox import Inboxes


class RedisNotConfigured(RuntimeError):
    pass


@dataclass
class Runtime:
    settings: Settings
    _config: Config | None = field(default=None, repr=False)

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
    def inboxes(self) -> Inboxes:
        return Inboxes(
            self.redis, wake_ttl_seconds=int(self.settings.wake_ttl_seconds), dispatchers=self.settings.dispatchers
        )

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.settings.config_dir)
        return self._config

    def reload_config(self) -> Config:
        self._config = load_config(self.settings.config_dir)
        return self._config


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
