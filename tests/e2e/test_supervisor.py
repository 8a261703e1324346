"""`python -m connector run`: the whole stack starts, works, and stops without leaving orphans."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis as redis_lib
import requests

from connector.channels.base import thread_id_for
from connector.settings import PROJECT_ROOT
from connector.store import threads
from tests.conftest import CONFIG_DIR
from tests.helpers import WHATSAPP_ASSET, wait_for, whatsapp_headers, whatsapp_payload

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stack() -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    data_dir = Path(tempfile.mkdtemp(prefix="cc-run-", dir="/tmp"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        CONNECTOR_CONFIG_DIR=str(CONFIG_DIR),
        CONNECTOR_DATA_DIR=str(data_dir),
        PUBLIC_BASE_URL="https://connector.example.com",
        LOG_LEVEL="WARNING",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "run", "--port", str(port), "--workers", "2"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process, port, data_dir
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)


def ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.RequestException:  # not listening yet, or still booting
        return False


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_run_starts_everything_relays_and_stops_cleanly_on_sigterm(stack):
    process, port, data_dir = stack
    wait_for(lambda: ready(port), timeout=60, interval=0.2, what="/readyz to answer 200")
    children = descendants(process.pid)
    names = " ".join(" ".join(c.cmdline()) for c in children)
    assert "redis-server" in names and "gunicorn" in names and names.count("connector worker") >= 2

    body = whatsapp_payload([("15550009999", "wamid.run1", "hello")])
    response = requests.post(
        f"http://127.0.0.1:{port}/webhooks/whatsapp/{WHATSAPP_ASSET}",
        data=body,
        headers=whatsapp_headers(body),
        timeout=5,
    )
    assert response.status_code == 200
    redis = redis_lib.Redis(unix_socket_path=str(data_dir / "redis" / "redis.sock"))
    thread_id = thread_id_for("whatsapp", WHATSAPP_ASSET, "15550009999")
    wait_for(lambda: threads.timeline(redis, thread_id), timeout=20, what="the workers to drain the message")
    assert threads.load(redis, thread_id).entry_point == "Support"
    redis.close()

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"orphans left: {[p.cmdline() for p in alive]}"
    assert (data_dir / "redis" / "appendonly.aof").exists()


def test_children_die_with_a_killed_supervisor(stack):
    process, port, _ = stack
    wait_for(lambda: ready(port), timeout=60, interval=0.2, what="/readyz to answer 200")
    children = descendants(process.pid)
    process.kill()
    process.wait(10)
    _gone, alive = psutil.wait_procs(children, timeout=20)
    for leftover in alive:
        leftover.kill()
    assert not alive, f"orphans left: {[p.cmdline() for p in alive]}"
