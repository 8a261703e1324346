"""The process's runtime: settings, the Redis client and the loaded configuration.

Web, worker and listener processes each install one at start; RQ jobs, which run outside any Flask
request, read it with `current()`. One process serves one deployment, so one runtime suffices.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property

import redis as redis_lib

from connector.channels import channel_class
from connector.channels.base import Channel
from connector.config import reload
from connector.config.loader import ConfigError, load_config
from connector.config.model import Asset, Config
from connector.config.overrides import ConfigOverrides
from connector.config.reload import ProcessStatus, ReloadStore
from connector.errors import PermanentError
from connector.settings import Settings
from connector.store import connection, keys, replies
from connector.store.boxes import Boxes
from connector.store.dispatch import Dispatch
from connector.store.durability import Durability
from connector.store.timers import Timers

log = logging.getLogger(__name__)

CONFIG_CHECK_SECONDS = 1.0
"""How stale a process's view of configuration changes may be: UI/API writes and reloads of the
provisioned files (one Redis MGET per period)."""


@dataclass(frozen=True)
class _Snapshot:
    """One consistent configuration: the provisioned files and the merge of the UI/API items over
    them. Built completely, then published by replacing one reference, so a reader holds the old
    one or the new one, never a mix."""

    base: Config
    merged: Config
    version: int
    """The UI/API store's version `merged` was built from."""


@dataclass
class Runtime:
    settings: Settings
    role: str = "web"
    """What this process is (web, worker, listener): names it in the reload status."""
    _config: Config | None = field(default=None, repr=False)
    """The provisioned files in use (tests may replace it: the next `config` merges over it)."""
    _generation: int = field(default=0, repr=False)
    """The reload generation of the provisioned files this process last acted on (-1: unknown)."""
    _snapshot: _Snapshot | None = field(default=None, repr=False)
    _checked_at: float = field(default=float("-inf"), repr=False)
    _changes: int = field(default=0, repr=False)
    _checked_changes: int = field(default=-1, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _channels: dict[tuple[str, str], tuple[Asset, Channel]] = field(default_factory=dict, repr=False)
    _channels_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def redis(self) -> redis_lib.Redis:
        """This deployment's Redis: REDIS_URL or the Sentinels' master (store/connection.py)."""
        return connection.connect(self.settings)

    @cached_property
    def durability(self) -> Durability:
        """What an acknowledgement waits for (CONNECTOR_DURABILITY, store/durability.py)."""
        return Durability.from_settings(self.settings)

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

    @cached_property
    def timers(self) -> Timers:
        return Timers(self.redis)

    @property
    def provisioned(self) -> Config:
        """The configuration of the `entrypoints/` files alone (read-only in the UI), of the reload
        generation this process runs."""
        return self._view()[0]

    @property
    def overrides(self) -> ConfigOverrides:
        return ConfigOverrides(self.redis, self.settings.templates_dir)

    @property
    def config(self) -> Config:
        """Provisioned files plus the items made in the UI or API (connector/config/overrides.py).

        Rebuilt when the store's version counter or the files' reload generation moves, checked at
        most every CONFIG_CHECK_SECONDS; writes through this runtime show at once (`config_changed`).
        Without Redis (check-config, unit tests of pure code) or when Redis is briefly unreachable,
        the last known one serves."""
        return self._view()[1]

    @property
    def name(self) -> str:
        """This process in the reload status: `role:host:pid` (read each time: a fork changes the pid)."""
        return f"{self.role}:{socket.gethostname()}:{os.getpid()}"

    def config_changed(self) -> None:
        """Re-read the store on the next `config` (after a write by this process). Not under the lock,
        so an operator's request never waits for a reload in progress: any change of the count forces
        the next check, and a check started before this call does not count as done after it."""
        self._changes += 1

    def _fresh(self) -> bool:
        return self._checked_changes == self._changes and time.monotonic() - self._checked_at < CONFIG_CHECK_SECONDS

    def _view(self) -> tuple[Config, Config]:
        """(provisioned, merged) of one snapshot; the check, when due, runs under the lock so one
        thread loads and the others wait for its result instead of loading too."""
        base = self._config
        if base is None:
            base = self._load_at_start()
        if not connection.configured(self.settings):
            return base, base
        snapshot = self._snapshot
        if snapshot is not None and snapshot.base is base and self._fresh():
            return snapshot.base, snapshot.merged
        with self._lock:
            return self._refresh()

    def _load_at_start(self) -> Config:
        """The files, read the first time configuration is asked for (ConfigError: the process does
        not start). The generation is read first: a reload after it makes this process load again."""
        with self._lock:
            if self._config is not None:
                return self._config
            if not connection.configured(self.settings):
                self._config = load_config(self.settings.config_dir)
                return self._config
            try:
                generation = ReloadStore(self.redis).generation()
            except redis_lib.RedisError:
                generation = -1  # unknown: the first check that reaches Redis loads the files again
            self._config = load_config(self.settings.config_dir)
            self._generation = generation
            if generation >= 0:
                self._record(generation, None)
            return self._config

    def _refresh(self) -> tuple[Config, Config]:
        """Under the lock: read the version and the generation (one MGET); load the files again if
        the generation moved, merge the UI/API items if anything moved, then publish."""
        assert self._config is not None  # _view loaded it
        snapshot = self._snapshot
        if snapshot is not None and snapshot.base is self._config and self._fresh():
            return snapshot.base, snapshot.merged  # another thread checked while this one waited
        started, changes = time.monotonic(), self._changes
        base = self._config
        attempted: int | None = None
        error: Exception | None = None
        try:
            version, generation = self._counters()
            if generation != self._generation:
                attempted = generation
                try:
                    base = load_config(self.settings.config_dir)
                except Exception as exc:  # ConfigError above all; anything else must not stop this process either
                    error = exc
            if snapshot is None or snapshot.base is not base or snapshot.version != version:
                snapshot = _Snapshot(base, self.overrides.merged(base), version)
        except redis_lib.RedisError as exc:
            self._checked_at, self._checked_changes = started, changes
            if snapshot is None or snapshot.base is not self._config:
                return self._config, self._config  # nothing merged over these files yet
            log.warning("configuration store unreachable; using the last loaded", extra={"error": str(exc)})
            return snapshot.base, snapshot.merged
        self._publish(snapshot)
        self._checked_at, self._checked_changes = started, changes
        if attempted is not None:
            self._acted_on(attempted, error)
        return snapshot.base, snapshot.merged

    def _counters(self) -> tuple[int, int]:
        """The UI/API store's version and the files' reload generation, in one round trip."""
        version, generation = replies.bytes_or_none_list(
            self.redis.mget(keys.config_version(), keys.config_generation())
        )
        return int(version or 0), int(generation or 0)

    def _publish(self, snapshot: _Snapshot) -> None:
        """Replace the configuration (under the lock: a reader that sees one reference moved and not
        the other waits for the lock, so it never pairs old files with a new merge)."""
        self._snapshot = snapshot
        self._config = snapshot.base

    def _acted_on(self, generation: int, error: Exception | None) -> None:
        """Log and record what this process did with a generation; it is not tried again (the
        environment that made it fail does not change in a running process; the next reload will)."""
        self._generation = generation
        if error is None:
            config = self._config
            assert config is not None
            log.info(
                "provisioned files reloaded: generation %d",
                generation,
                extra={
                    "generation": generation,
                    "integrations": len(config.integrations),
                    "assets": len(config.assets),
                    "rules": len(config.rules),
                },
            )
            self._record(generation, None)
            return
        text = str(error) if isinstance(error, ConfigError) else f"{type(error).__name__}: {error}"
        log.error(
            "provisioned files of generation %d not loaded here; this process keeps its running configuration:\n%s",
            generation,
            text,
            extra={"generation": generation},
            exc_info=not isinstance(error, ConfigError),
        )
        self._record(generation, text)

    def _record(self, generation: int, error: str | None) -> None:
        status = ProcessStatus(
            name=self.name,
            role=self.role,
            pid=os.getpid(),
            host=socket.gethostname(),
            generation=generation,
            ok=error is None,
            error=error,
            at=time.time(),
        )
        try:
            ReloadStore(self.redis).record(status)
        except redis_lib.RedisError as exc:
            log.warning("reload status not recorded", extra={"error": str(exc)})

    def reload_config(self, requested_by: str, via: str) -> int:
        """Reload the provisioned files everywhere (connector/config/reload.py): load them here
        (ConfigError, and nothing changes anywhere, when one has a problem), start a new generation
        that every other process loads at its next check, and swap this process to it at once.
        Returns the generation."""
        generation, loaded = reload.trigger(self.redis, self.settings.config_dir, requested_by=requested_by, via=via)
        with self._lock:
            if self._generation != generation:
                version = self.overrides.version()  # read before merging: a write in between is seen again, not lost
                self._publish(_Snapshot(loaded, self.overrides.merged(loaded), version))
                self._checked_at, self._checked_changes = time.monotonic(), self._changes
                self._acted_on(generation, None)
        return generation

    def watch_config(self, stop: threading.Event) -> threading.Thread:
        """Check the configuration every CONFIG_CHECK_SECONDS on a daemon thread until `stop`, so a
        process that reads it only when work arrives (an idle worker) still applies a reload, and
        reports it, within a second."""

        def watch() -> None:
            while not stop.wait(CONFIG_CHECK_SECONDS):
                try:
                    self.config  # noqa: B018 - the read is the check
                except Exception:
                    log.exception("configuration check failed")

        thread = threading.Thread(target=watch, name="config-watch", daemon=True)
        thread.start()
        return thread

    def channel(self, channel: str, asset: str) -> Channel:
        """The channel instance that talks to `asset`'s customers: one per asset while its configuration
        stays the same, so its HTTP session (and connection pool) is reused across sends; a changed
        asset (a UI edit, a reload) gets a new one. PermanentError when the asset is no longer configured."""
        configured = self.config.asset(channel, asset)
        cls = channel_class(channel)
        if cls is None or configured is None:
            raise PermanentError(
                f"{channel} asset {asset!r} is no longer configured: messages for this customer cannot be sent"
            )
        with self._channels_lock:
            cached = self._channels.get((channel, asset))
            if cached is not None and cached[0] == configured:
                return cached[1]
            instance = cls(configured, self.settings)
            self._channels[(channel, asset)] = (configured, instance)
        return instance


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
