"""End-to-end fixtures: the web app on a real loopback HTTP server and real worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from rq import Worker

from connector.sandbox.http import serving
from connector.settings import PROJECT_ROOT
from tests.conftest import CONFIG_DIR
from tests.helpers import wait_for


@pytest.fixture
def live_server(app) -> Iterator[str]:
    with serving(app) as server:
        yield server.url


class WorkerProcess:
    """`python -m connector worker` in its own process group (its RQ scheduler child included)."""

    def __init__(self, redis_url: str, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "connector", "worker", "--name", name],
            cwd=PROJECT_ROOT,
            env={
                **os.environ,
                "REDIS_URL": redis_url,
                "CONNECTOR_CONFIG_DIR": str(CONFIG_DIR),
                "LOG_LEVEL": "WARNING",
                **env,
            },
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def kill(self) -> None:
        """SIGKILL the whole group: the worker dies mid-job, with no chance to clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # reap a leftover scheduler child


@pytest.fixture
def start_worker(redis_url: str, redis) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(name: str | None = None, wait: bool = True, **env: str) -> WorkerProcess:
        worker = WorkerProcess(redis_url, name or f"test-worker-{len(started) + 1}", env)
        started.append(worker)
        if wait:
            wait_for(
                lambda: any(w.name == worker.name for w in Worker.all(connection=redis)),
                timeout=20,
                what=f"worker {worker.name} to register",
            )
        return worker

    yield start
    for worker in started:
        worker.stop()


from tests.e2e.stack import stack, stack_factory  # noqa: E402,F401 - fixtures for tests/e2e/*
