"""The real stack for a benchmark: `python -m connector run` on a fresh embedded Redis."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from connector.settings import PROJECT_ROOT

SANDBOX_CONFIG = PROJECT_ROOT / "entrypoints" / "sandbox"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def redis_socket(self) -> Path:
        return self.data_dir / "redis" / "redis.sock"


@contextmanager
def running_stack(
    app: str = "bench.noop_app:app",
    workers: int = 2,
    sandbox: bool = False,
    env: dict[str, str] | None = None,
    log_level: str = "WARNING",
) -> Iterator[Stack]:
    """The stack at `log_level`. Below WARNING its logs go to a file in its data folder, as a
    deployment's would, so the console stays readable; at WARNING they share the console."""
    data_dir = Path(tempfile.mkdtemp(prefix="cc-bench-", dir="/tmp"))
    port = free_port()
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        CONNECTOR_CONFIG_DIR=str(SANDBOX_CONFIG),
        CONNECTOR_DATA_DIR=str(data_dir),
        PUBLIC_BASE_URL="https://connector.example.com",
        LOG_LEVEL=log_level,
    )
    env.update(extra)
    log = open(data_dir / "stack.log", "wb") if log_level != "WARNING" else None  # noqa: SIM115 - closed below
    argv = [sys.executable, "-m", "connector", "run", "--port", str(port), "--workers", str(workers), "--app", app]
    if sandbox:
        argv.append("--sandbox")
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the stack did not become ready")
            time.sleep(0.2)
        yield Stack(port, data_dir, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        if log is not None:
            log.close()
        shutil.rmtree(data_dir, ignore_errors=True)
