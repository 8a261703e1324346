"""`python -m connector listen` stops promptly on SIGTERM even while Finesse is still unreachable
(the supervisor otherwise waits its whole stop timeout and then kills it)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from connector.settings import PROJECT_ROOT
from tests.conftest import CONFIG_DIR

pytestmark = pytest.mark.e2e


def test_sigterm_ends_a_listener_waiting_for_finesse(tmp_path, redis_url):
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    (config / "finesse.yaml").write_text(
        "finesse:\n"
        "  publisher: http://127.0.0.1:9\n"  # discard port: nothing answers
        "  admin_user: admin\n"
        "  admin_password: secret\n"
        "  events: poll\n"
        "  liveness_interval_seconds: 30\n"
    )
    env = {**os.environ, "REDIS_URL": redis_url, "CONNECTOR_CONFIG_DIR": str(config), "LOG_LEVEL": "INFO"}
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "listen"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        seen = ""
        while "not reachable yet" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert "not reachable yet" in seen, seen
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert time.monotonic() - started < 5, "stopped at once, not after the 30 s retry wait"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
