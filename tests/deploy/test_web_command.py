"""`python -m connector web`: the web process alone, configured as `run` starts it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from connector.settings import PROJECT_ROOT, Settings
from connector.supervisor import Supervisor
from tests.deploy.conftest import answers, free_port, web_env
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def test_web_serves_healthz_as_gunicorn_and_stops_cleanly_on_sigterm(web):
    assert answers(f"{web.url}/healthz") == 200
    cmdline = Path(f"/proc/{web.process.pid}/cmdline").read_bytes().split(b"\0")
    # exec'd: the pid a service manager watches is gunicorn's master, run with the supervisor's options
    assert cmdline[1:4] == [b"-m", b"gunicorn", b"wsgi:app"]
    expected = Supervisor(Settings.from_env(), web_workers=1).gunicorn_argv(sys.executable)[1:]
    bind = expected.index("--bind")
    expected[bind + 1] = f"127.0.0.1:{web.port}"
    assert [part.decode() for part in cmdline[1:-1]] == expected
    web.process.send_signal(signal.SIGTERM)
    assert web.process.wait(20) == 0
    assert "Logging error" not in web.logged(), "gunicorn's own lines are JSON like every other line"


def test_web_bind_wins_over_host_and_port(redis_url, tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "web", "--port", "1", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=PROJECT_ROOT,
        env=web_env(redis_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz") == 200, timeout=30, interval=0.2, what="/healthz")
    finally:
        process.terminate()
        process.wait(20)


def test_web_without_a_redis_says_what_to_set():
    done = subprocess.run(
        [sys.executable, "-m", "connector", "web"],
        cwd=PROJECT_ROOT,
        env=web_env(None),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "set REDIS_URL" in done.stderr
