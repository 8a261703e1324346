"""`make run`'s walk-through logs no warning of its own: the sandbox logs its Finesse agents in to the
connector, so when an ECE agent takes the first chat, media blending sets them NOT_READY in Finesse
with their own credentials instead of being refused (401 "blending change not taken").

The whole `python -m connector run --sandbox` runs, as a newcomer starts it; the simulators listen on
their fixed ports (connector/sandbox/main.py), so the test waits its turn if another run holds them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
import requests

from connector.sandbox.main import (
    CHANNEL_SANDBOX_PORT,
    DEMO_AGENTS,
    FINESSE_CONTROL_PORT,
    FINESSE_PUBLISHER_PORT,
    FINESSE_SUBSCRIBER_PORT,
    FINESSE_XMPP_PORT,
)
from connector.settings import PROJECT_ROOT
from connector.store import keys
from tests.e2e.test_supervisor import free_port, ready
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

SANDBOX_PORTS = (
    CHANNEL_SANDBOX_PORT,
    FINESSE_PUBLISHER_PORT,
    FINESSE_SUBSCRIBER_PORT,
    FINESSE_CONTROL_PORT,
    FINESSE_XMPP_PORT,
)
SANDBOX = f"http://127.0.0.1:{CHANNEL_SANDBOX_PORT}"
FINESSE_CONTROL = f"http://127.0.0.1:{FINESSE_CONTROL_PORT}/control"
HANDLING_CHAT = "21"
"""The sandbox's NOT_READY reason code "Handling Chat" (connector/sandbox/main.py, DEMO_REASON_CODES)."""


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def sandbox_run() -> Iterator[tuple[int, Path, Path]]:
    """`python -m connector run --sandbox` with its own Redis: (web port, data dir, the file its output goes to)."""
    wait_for(
        lambda: not any(port_taken(p) for p in SANDBOX_PORTS),
        timeout=120,
        interval=1,
        what=f"the sandbox's ports {SANDBOX_PORTS} to be free (is `make run` running?)",
    )
    data_dir = Path(tempfile.mkdtemp(prefix="cc-sbx-", dir="/tmp"))
    output = data_dir / "output.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CONNECTOR_CONFIG_DIR", "PUBLIC_BASE_URL")}
    env.update(CONNECTOR_DATA_DIR=str(data_dir), LOG_LEVEL="INFO")
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "connector", "run", "--sandbox", "--port", str(port), "--workers", "1"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield port, data_dir, output
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)


def finesse_agent(agent_id: str) -> dict:
    state = requests.get(f"{FINESSE_CONTROL}/state", timeout=5).json()
    return next(a for a in state["agents"] if a["id"] == agent_id)


def queued_conversation() -> str | None:
    try:
        state = requests.get(f"{SANDBOX}/ece/control/state", timeout=5).json()
    except requests.RequestException:
        return None
    return next((c["id"] for c in state["conversations"] if c["state"] == "queued"), None)


def tail(output: Path, lines: int = 40) -> str:
    return "\n".join(output.read_text(errors="replace").splitlines()[-lines:])


def test_the_walk_through_sets_the_agent_not_ready_with_no_blending_warning(sandbox_run):
    port, data_dir, output = sandbox_run
    try:
        walk_through(port, data_dir, output)
    except AssertionError as failed:
        raise AssertionError(f"{failed}\n--- the run's last lines:\n{tail(output)}") from None


def walk_through(port: int, data_dir: Path, output: Path) -> None:
    wait_for(lambda: ready(port), timeout=90, interval=0.5, what="/readyz to answer 200")
    redis = redis_lib.Redis(unix_socket_path=str(data_dir / "redis" / "redis.sock"))
    try:
        agent_ids = {agent_id for agent_id, *_ in DEMO_AGENTS}
        wait_for(
            lambda: agent_ids <= {k.decode() for k in redis.hkeys(keys.agent_credentials())},
            timeout=60,
            interval=0.5,
            what="the sandbox to log its agents in to the connector",
        )
    finally:
        redis.close()

    # The walk-through: a WhatsApp customer writes, and ECE's agent Alice (Finesse agent 1001) takes the chat.
    sent = requests.post(
        f"{SANDBOX}/customer/send",
        data={"asset": "sandbox-whatsapp", "customer": "15550004321", "text": "Where is my parcel?"},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    conversation = wait_for(queued_conversation, timeout=30, what="the chat to wait in ECE's queue")
    assigned = requests.post(
        f"{SANDBOX}/ece/control/conversations/{conversation}/assign",
        json={"agent_id": "1001", "agent_name": "Alice"},
        timeout=10,
    )
    assert assigned.status_code == 201, assigned.text
    wait_for(
        lambda: (
            finesse_agent("1001")["state"] == "NOT_READY" and finesse_agent("1001")["reason_code_id"] == HANDLING_CHAT
        ),
        timeout=45,
        interval=0.5,
        what="media blending to set Alice NOT_READY (Handling Chat) in Finesse",
    )
    time.sleep(1)  # anything the same step logged afterwards is in the file too
    logged = output.read_text(errors="replace")
    assert "blending change sent" in logged
    assert "blending change not taken" not in logged, [
        line for line in logged.splitlines() if "blending change not taken" in line
    ]
    assert "sandbox agent logged in to the connector" in logged
