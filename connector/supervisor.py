"""`python -m connector run`: the whole stack in the foreground, stopped cleanly by Ctrl-C / SIGTERM.

Children run in their own sessions so a terminal's Ctrl-C reaches only the supervisor, which then
stops them in order (web first so nothing new arrives, then workers finish their jobs, Redis last
with its AOF flushed). Each child also gets PR_SET_PDEATHSIG, so even a SIGKILLed supervisor leaves
no orphans. A child that dies on its own is restarted with a growing delay; one that exits with
EXIT_TO_RELOAD (the listener applying a reloaded `finesse:` section) is restarted at once.

SIGHUP reloads the provisioned files in every process (connector/config/reload.py): the supervisor
loads them first and, if one has a problem, logs every problem at ERROR and changes nothing;
otherwise it starts a new generation, which each child applies at its next configuration check.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import redis as redis_lib

from connector.config import reload
from connector.config.loader import ConfigError
from connector.embedded_redis import EmbeddedRedis
from connector.processes import die_with_parent
from connector.settings import PROJECT_ROOT, Settings
from connector.store import connection
from connector.store.durability import Durability, Mode

log = logging.getLogger("connector.supervisor")

STOP_TIMEOUT_SECONDS = 20
SANDBOX_ADMIN_PASSWORD = "sandbox-admin"  # noqa: S105 - the published demo login of the loopback sandbox
"""The operator login `make run` prints; used only with --sandbox when CONNECTOR_ADMIN_PASSWORD is unset."""


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=PROJECT_ROOT, start_new_session=True, preexec_fn=die_with_parent
        )
        self.started_at = time.monotonic()
        log.info("started %s", self.name, extra={"pid": self.process.pid})

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", self.name)
            self.process.kill()
            self.process.wait()


def default_web_workers() -> int:
    """gunicorn's WEB_CONCURRENCY when set, else one process more than the cores: a process that
    stalls (a slow Redis answer, a GC pause) leaves the others all the cores, and new keep-alive
    connections, which a gthread process accepts greedily, spread over more than two processes."""
    configured = os.environ.get("WEB_CONCURRENCY", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return (os.cpu_count() or 1) + 1


def gunicorn_argv(python: str, *, app: str, bind: str, workers: int, settings: Settings) -> list[str]:
    """The web process, as `run` starts it and `python -m connector web` runs it alone: threaded
    workers, so a slow client cannot block intake for others, with enough threads
    (CONNECTOR_WEB_THREADS) for the agents' open event streams besides."""
    return [
        *(python, "-m", "gunicorn", app),
        *("--bind", bind),
        # gthread, but its threads get whole requests only: slow clients wait in its event loop
        *("--workers", str(workers), "--worker-class", "connector.web_worker.BufferingWorker"),
        *("--threads", str(max(1, settings.web_threads))),
        *("--graceful-timeout", "10"),
        *("--logger-class", "connector.gunicorn_logger.JsonLogger"),
    ]


@dataclass
class Supervisor:
    settings: Settings
    port: int = 8000
    workers: int = 2
    web_workers: int = field(default_factory=lambda: default_web_workers())
    sandbox: bool = False
    wsgi_app: str = "wsgi:app"
    listen: bool = False
    children: list[Child] = field(default_factory=list)
    redis: EmbeddedRedis | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _reload: threading.Event = field(default_factory=threading.Event)
    _env: dict[str, str] = field(default_factory=dict)

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        connection.validate(self.settings)
        if self.settings.redis_url:
            env["REDIS_URL"] = self.settings.redis_url
        elif not self.settings.redis_sentinels:
            env["REDIS_URL"] = self.start_embedded_redis().url
        # The children read REDIS_SENTINELS and the other Redis variables from this environment as is.
        if self.sandbox:
            env["CONNECTOR_SANDBOX"] = "1"
            # The sandbox's published demo login (it listens on loopback only); a deployment sets its own.
            env.setdefault("CONNECTOR_ADMIN_PASSWORD", SANDBOX_ADMIN_PASSWORD)
        if not env.get("CONNECTOR_SECRET_KEY"):
            # One key shared by this run's processes (sessions, agents' encrypted credentials); it
            # dies with the run, so a production deployment must set its own.
            env["CONNECTOR_SECRET_KEY"] = secrets.token_hex(32)
            log.warning("CONNECTOR_SECRET_KEY is not set; using a key that lasts for this run only")
        env["CONNECTOR_CONFIG_DIR"] = str(self.settings.config_dir)
        self._env = env
        env.setdefault("PUBLIC_BASE_URL", f"http://localhost:{self.port}")
        python = sys.executable
        self.children.append(Child("web", self.gunicorn_argv(python), env))
        for index in range(self.workers):
            self.children.append(Child(f"worker-{index + 1}", [python, "-m", "connector", "worker"], env))
        if self.sandbox:
            self.children.append(Child("sandbox", [python, "-m", "connector", "sandbox"], env))
        if self.listen:
            self.children.append(Child("listener", [python, "-m", "connector", "listen", "--wait-for-section"], env))
        for child in self.children:
            child.start()
        self._banner(env)
        try:
            self._watch()
        finally:
            self._shutdown()
        return 0

    def start_embedded_redis(self) -> EmbeddedRedis:
        """The embedded Redis, its AOF fsynced as CONNECTOR_DURABILITY says (`always`: before each answer)."""
        durability = Durability.from_settings(self.settings)
        if durability.mode is Mode.REPLICATED:
            raise SystemExit(
                "CONNECTOR_DURABILITY=replicated needs a Redis with a replica: set REDIS_SENTINELS "
                "(or REDIS_URL); the embedded Redis has none, so every webhook would be answered 503"
            )
        self.redis = EmbeddedRedis(Path(self.settings.data_dir) / "redis", appendfsync=durability.appendfsync)
        self.redis.start()
        log.info("embedded Redis started", extra={"url": self.redis.url, "appendfsync": durability.appendfsync})
        return self.redis

    def gunicorn_argv(self, python: str) -> list[str]:
        return gunicorn_argv(
            python, app=self.wsgi_app, bind=f"127.0.0.1:{self.port}", workers=self.web_workers, settings=self.settings
        )

    def _banner(self, env: dict[str, str]) -> None:
        print("\n".join(self.banner_lines(env)), flush=True)

    def banner_lines(self, env: dict[str, str]) -> list[str]:
        """What `make run` prints: every address in it answers (tests/test_supervisor_banner.py asks each)."""
        base = f"http://localhost:{self.port}"
        return [
            "",
            "Channel connector is running" + (" with the sandbox" if self.sandbox else ""),
            f"  webhooks   {base}/webhooks/<channel>/<asset>",
            f"  operators  {base}/admin/  {self._login_line(env)}",
            f"  api        {base}/api/v1/  (API reference)   OpenAPI {base}/api/v1/openapi.json  (tokens: Accounts)",
            f"  health     {base}/healthz   readiness {base}/readyz",
            f"  redis      {connection.describe(self._redis_settings(env))}",
            f"  config     {env['CONNECTOR_CONFIG_DIR']}",
            *(["  sandbox    the simulators print their addresses and demo logins below"] if self.sandbox else []),
            "Press Ctrl-C to stop everything.",
            "",
        ]

    def _redis_settings(self, env: dict[str, str]) -> Settings:
        """The settings the children reach Redis with: the embedded server's URL when it runs."""
        url = env.get("REDIS_URL") or None
        return replace(self.settings, redis_url=url) if url and not self.settings.redis_sentinels else self.settings

    @staticmethod
    def _login_line(env: dict[str, str]) -> str:
        password = env.get("CONNECTOR_ADMIN_PASSWORD")
        if password == SANDBOX_ADMIN_PASSWORD:
            return f"log in as admin / {password}"
        if password:
            return "log in as admin with CONNECTOR_ADMIN_PASSWORD"
        return "set CONNECTOR_ADMIN_PASSWORD to create the admin login"

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            for child in self.children:
                if child.alive() or self._stop.is_set():
                    continue
                code = child.process.returncode if child.process else None
                if code == reload.EXIT_TO_RELOAD:
                    log.info("%s exited to apply reloaded configuration; restarting it now", child.name)
                    child.start()
                    continue
                delay = min(30.0, 2.0**child.restarts)
                if time.monotonic() - child.started_at > 60:
                    child.restarts = 0
                    delay = 1.0
                log.error("%s exited with %s; restarting in %.0f s", child.name, code, delay)
                if self._stop.wait(delay):
                    return
                child.restarts += 1
                child.start()

    def _on_signal(self, signum: int, _frame: object) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)
        self._stop.set()

    def _on_reload_signal(self, _signum: int, _frame: object) -> None:
        self._reload.set()  # the watch loop reloads: no file or Redis work inside a signal handler

    def reload(self) -> bool:
        """SIGHUP: validate the files here; if good, start a new generation every child applies."""
        log.info("reloading the provisioned files on SIGHUP", extra={"config_dir": str(self.settings.config_dir)})
        client = connection.connect(self._redis_settings(self._env))
        try:
            # Checked with the environment the children get, since they will load the files with it.
            generation, _ = reload.trigger(
                client, self.settings.config_dir, requested_by="SIGHUP", via="signal", env=self._env
            )
        except ConfigError:
            return False  # trigger logged every problem at ERROR
        except redis_lib.RedisError as exc:
            log.error("reload not started: Redis did not answer (%s)", exc)
            return False
        finally:
            client.close()  # type: ignore[no-untyped-call]  # redis-py's Redis.close is unannotated
        log.info("reload started: the processes apply generation %d within a second", generation)
        return True

    def _shutdown(self) -> None:
        self._stop.set()
        # Web first (no new intake), then workers finish their current job, Redis last.
        for group in (["web"], None):
            targets = [c for c in self.children if (group is None or c.name in group)]
            for child in targets:
                child.terminate()
            deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
            for child in targets:
                child.wait(deadline)
        if self.redis is not None:
            self.redis.stop()
        log.info("stopped")
