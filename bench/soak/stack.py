"""The soak's stack: the connector's own processes on a Redis this harness owns, the simulators here.

The harness starts every role itself (gunicorn for web, `python -m connector worker` x N, `python -m
connector listen`) rather than through `python -m connector run`, because a fault must hit exactly one
process: `kill9(role)` SIGKILLs one process group and the watcher restarts it, as the supervisor would
(connector/supervisor.py restarts with a growing delay; here a fixed short one so the schedule decides
the outage). Redis is an `EmbeddedRedis` on a socket in the run's folder, so `kill_redis()` can SIGKILL
it and start it again on the same AOF. The simulators (ECE on a server of its own, whose port can
refuse connections; the providers and the customer emulator on another) run in this process, so the
final check reads their records directly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis as redis_lib
import requests
import yaml

from bench.soak.seams import EceRefuser, ProviderFailureRate
from bench.stack import free_port
from connector.config.loader import load_config
from connector.embedded_redis import EmbeddedRedis
from connector.processes import die_with_parent
from connector.sandbox.ece import EceSimulator
from connector.sandbox.forwarder import TcpForwarder
from connector.sandbox.http import LoopbackServer
from connector.sandbox.server import ChannelSandbox, channel_sandbox, ece_app
from connector.settings import PROJECT_ROOT
from tests.e2e.stack import ASSETS, CALLBACK_TOKEN, CLIENT, HYBRID, INTEGRATION, HybridOptions, write_config

HYBRID_CHANNELS = ("inapp",)
"""Channels whose conversations go to Hybrid Chat; the other four go to ECE."""
AGENT_PASSWORD = "soak-agent-password"
SECRET_KEY = "soak-secret-key-0123456789abcdef"


def hybrid_agents(count: int, max_chats: int) -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "login": f"soak{n}",
            "name": f"Soak {n}",
            "password": AGENT_PASSWORD,
            "skills": ["english"],
            "max_chats": max_chats,
        }
        for n in range(count)
    )


TIMINGS = {
    "CONNECTOR_RETRY_BASE_SECONDS": "0.3",
    "CONNECTOR_RETRY_MAX_SECONDS": "2",
    "CONNECTOR_SWEEP_INTERVAL_SECONDS": "1",
    "CONNECTOR_LEASE_SECONDS": "10",
    "CONNECTOR_WAKE_TTL_SECONDS": "2",
}
"""The recovery timings of the soak's processes: those of the end-to-end tests (tests/e2e/stack.py;
the 2 s wake-up flag of tests/e2e/test_reliability.py), shorter than the defaults (retry 1 to 30 s,
sweep 5 s, lease 30 s, wake-up flag 30 s) so a run of minutes goes through many faults; the report
lists them. A lease shorter than a drain's calls to a slow ECE (2 s each) would hand the thread to a
second worker mid-drain."""


@dataclass
class Role:
    """One process of the stack (its own process group: a worker's RQ scheduler child dies with it)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    def start(self) -> None:
        with open(self.log, "ab") as log:
            # Dies with the harness (PR_SET_PDEATHSIG, tied to the starting thread: the harness's main
            # thread or its watcher, both as long-lived as the run).
            self.process = subprocess.Popen(
                self.argv,
                cwd=PROJECT_ROOT,
                env=self.env,
                start_new_session=True,
                stdout=log,
                stderr=log,
                preexec_fn=die_with_parent,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        if self.alive():
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 20.0) -> None:
        self.signal_group(signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.process.wait(10)


@dataclass
class SoakStack:
    workers: int = 2
    web_workers: int = 2
    durability: str = "everysec"
    """CONNECTOR_DURABILITY of the run: everysec | always (this Redis runs `appendfsync always`)."""
    agents: int = 3
    agent_max_chats: int = 40
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cc-soak-", dir="/tmp")))
    roles: dict[str, Role] = field(default_factory=dict)
    redis: EmbeddedRedis | None = None
    replica: EmbeddedRedis | None = None
    ece: EceSimulator | None = None
    _servers: list[LoopbackServer] = field(default_factory=list)
    _redis_keeper: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "soak-redis"))
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- start and stop ---------------------------------------------------------------------------

    def start(self) -> SoakStack:
        self._redis_keeper.submit(self._start_redis).result()
        ece = EceSimulator(
            client_key=CLIENT[0],
            client_secret=CLIENT[1],
            entry_points=("1001", "1002"),
            callback_auth={"type": "bearer", "token": CALLBACK_TOKEN},
        )
        self.ece = ece
        api = ece_app(ece)
        # A refused-connections fault resets requests mid-body; the simulator's traceback for a request
        # whose client is gone is no news (the connector's retry is what the soak measures).
        api.logger.setLevel(logging.CRITICAL)
        self.ece_server = LoopbackServer(api, threads=64, name="soak-ece").start()
        self.control_server = LoopbackServer(ece_app(ece), threads=16, name="soak-ece-control").start()
        sandbox_server = LoopbackServer(threads=128, name="soak-sandbox").start()
        self._servers += [self.ece_server, self.control_server, sandbox_server]
        self.forwarder = TcpForwarder("127.0.0.1", self.ece_server.port).start()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_dir = self._write_config(self.forwarder.url, sandbox_server.url)
        self.sandbox: ChannelSandbox = channel_sandbox(load_config(config_dir), sandbox_server.url, self.url, self.url)
        sandbox_server.app = self.sandbox.app
        self.ece_refuser = EceRefuser(self.forwarder)
        self.provider_failures = ProviderFailureRate(self.sandbox.providers)
        ece.model.configure_callback(
            f"{self.url}/ece/{INTEGRATION}/callback", {"type": "bearer", "token": CALLBACK_TOKEN}
        )
        ece.start()
        assert self.redis is not None
        env = {
            **os.environ,
            "REDIS_URL": self.redis.url,
            "CONNECTOR_CONFIG_DIR": str(config_dir),
            "CONNECTOR_DATA_DIR": str(self.folder),
            "PUBLIC_BASE_URL": self.url,
            "CONNECTOR_SECRET_KEY": SECRET_KEY,
            "CONNECTOR_DURABILITY": self.durability,
            "CONNECTOR_SANDBOX": "1",
            **TIMINGS,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        python = sys.executable
        web = [
            *(python, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{self.port}"),
            *("--workers", str(self.web_workers), "--worker-class", "gthread", "--threads", "16"),
            *("--graceful-timeout", "5", "--logger-class", "connector.gunicorn_logger.JsonLogger"),
        ]
        self._add("web", web, env)
        for n in range(self.workers):
            # No --name: RQ keeps a SIGKILLed worker's name registered for minutes, so a restart under
            # the same name would be refused; each start gets a fresh one, as under the supervisor.
            self._add(f"worker-{n + 1}", [python, "-m", "connector", "worker"], env)
        self._add("listener", [python, "-m", "connector", "listen", "--wait-for-section"], env)
        for role in self.roles.values():
            role.start()
        self._wait_ready()
        threading.Thread(target=self._watch, name="soak-watch", daemon=True).start()
        return self

    def _start_redis(self) -> None:
        if self.durability == "replicated":
            # A master and one replica on loopback TCP (replication needs it); the 200 waits for WAIT 1.
            self.redis = EmbeddedRedis(self.folder / "redis", appendfsync="everysec", port=free_port()).start()
            self.replica = EmbeddedRedis(
                self.folder / "replica", port=free_port(), extra_args=("--replicaof", "127.0.0.1", str(self.redis.port))
            ).start()
            self._wait_link(self.replica)
        else:
            self.redis = EmbeddedRedis(self.folder / "redis", appendfsync=self._appendfsync).start()

    def _write_config(self, ece_url: str, sandbox_url: str) -> Path:
        options = HybridOptions(
            support={"offer_timeout_seconds": 10, "max_wait_seconds": 3600},
            agents=hybrid_agents(self.agents, self.agent_max_chats),
        )
        folder = write_config(
            self.folder / "config", ece_url, sandbox_url, hybrid=options, support={"max_wait_seconds": 3600}
        )
        path = folder / "e2e.yaml"
        config = yaml.safe_load(path.read_text())
        for rule in config["rules"]:  # ECE for four channels, Hybrid Chat for the rest
            channel = rule["channel"]
            if rule["name"].endswith("-support"):
                rule["action"]["forward_to"] = HYBRID if channel in HYBRID_CHANNELS else INTEGRATION
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return folder

    def _add(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        self.roles[name] = Role(name, argv, dict(env), self.folder / f"{name}.log")

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the soak stack did not become ready; logs in {self.folder}")

    def _watch(self) -> None:
        """Restart a role that died (after a kill -9) within a second, as a supervisor does."""
        while not self._stopping.wait(0.2):
            with self._lock:
                for role in self.roles.values():
                    if not role.alive() and not self._stopping.is_set():
                        role.restarts += 1
                        role.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for name in ("web", *(n for n in self.roles if n != "web")):
                self.roles[name].stop()
        if self.ece is not None:
            self.ece.stop()
        self.forwarder.stop()
        for server in self._servers:
            server.stop()
        for redis_server in (self.redis, self.replica):
            if redis_server is not None:
                self._redis_keeper.submit(redis_server.stop).result()
        self._redis_keeper.shutdown()
        if not os.environ.get("SOAK_KEEP"):
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- faults -----------------------------------------------------------------------------------

    def kill9(self, name: str) -> int:
        """SIGKILL one role's process group; the watcher restarts it. The pid killed."""
        role = self.roles[name]
        assert role.process is not None
        pid = role.process.pid
        role.signal_group(signal.SIGKILL)
        return pid

    def kill9_web_process(self, rng: random.Random) -> int | None:
        """SIGKILL one gunicorn worker (the requests it is answering get no answer); its master
        starts another, as in production."""
        master = self.roles["web"].process
        if master is None:
            return None
        children = Path(f"/proc/{master.pid}/task/{master.pid}/children")
        try:
            pids = [int(p) for p in children.read_text().split()]
        except OSError:
            return None
        if not pids:
            return None
        victim = rng.choice(pids)
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return victim

    def kill_redis(self) -> None:
        """SIGKILL (no clean shutdown: only what the AOF holds survives), then start on the same AOF.

        On the stack's own long-lived thread: redis-server dies with the thread that started it
        (PR_SET_PDEATHSIG follows the thread), and a fault's thread ends with the fault."""
        self._redis_keeper.submit(self._kill_redis).result()

    def _kill_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        if self.replica is None:
            self.redis.start()
            return
        # `replicated`: the master's own AOF may miss the last second, the replica holds every write
        # WAIT confirmed. The replica is promoted, the master comes back as its replica (a full copy
        # of it), then the two swap back, so REDIS_URL keeps naming the master (a Sentinel would
        # move the clients instead).
        master, replica = self.redis, self.replica
        with redis_lib.Redis(port=replica.port) as client:  # failover: a replica without a master serves no sync
            client.execute_command("REPLICAOF", "NO", "ONE")
        master.extra_args = ("--replicaof", "127.0.0.1", str(replica.port))
        master.start()
        master.extra_args = ()
        self._wait_link(master)
        with redis_lib.Redis(port=master.port) as client:
            client.execute_command("REPLICAOF", "NO", "ONE")
        with redis_lib.Redis(port=replica.port) as client:
            client.execute_command("REPLICAOF", "127.0.0.1", str(master.port))
        self._wait_link(replica)

    @staticmethod
    def _wait_link(server: EmbeddedRedis, timeout: float = 30.0) -> None:
        """Until `server`, a replica, has its copy of the master (link up)."""
        deadline = time.monotonic() + timeout
        with redis_lib.Redis(port=server.port, socket_timeout=5) as client:
            while client.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the replica on port {server.port} did not sync")
                time.sleep(0.05)

    @property
    def _appendfsync(self) -> str:
        return "always" if self.durability == "always" else "everysec"

    def client(self) -> redis_lib.Redis:
        assert self.redis is not None
        return redis_lib.Redis.from_url(self.redis.url, socket_timeout=10)

    def alive_roles(self) -> bool:
        return all(role.alive() for role in self.roles.values())

    def ece_url(self) -> str:
        return self.ece_server.url

    @property
    def control_url(self) -> str:
        """The ECE simulator's control API on a port of its own: agents keep typing while the API
        port the connector calls refuses connections."""
        return f"{self.control_server.url}/ece/control"


__all__ = ["ASSETS", "HYBRID_CHANNELS", "SoakStack"]
