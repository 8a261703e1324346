"""`python -m connector web` as a real process, for the web command's own tests and for the
deployment kit's health check run against it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connector.settings import PROJECT_ROOT
from tests.conftest import CONFIG_DIR
from tests.helpers import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a loopback URL the test built
            return int(response.status)
    except OSError:
        return None


@dataclass
class WebProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


def web_env(redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER")}
    env.update(CONNECTOR_CONFIG_DIR=str(CONFIG_DIR), CONNECTOR_SECRET_KEY="web-test-secret", LOG_LEVEL="INFO")
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


@pytest.fixture
def web(redis_url, tmp_path) -> Iterator[WebProcess]:
    """`python -m connector web --port P --workers 1`, answering /healthz."""
    port = free_port()
    log = tmp_path / "web.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "connector", "web", "--port", str(port), "--workers", "1"],
            cwd=PROJECT_ROOT,
            env=web_env(redis_url),
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    started = WebProcess(process, port, log)
    try:
        wait_for(
            lambda: answers(f"{started.url}/healthz") == 200 or process.poll() is not None,
            timeout=30,
            interval=0.2,
            what="the web process to answer /healthz",
        )
        assert process.poll() is None, started.logged()
        yield started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
