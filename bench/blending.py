"""Media blending benchmark: blending latency with 200 agents, real processes on loopback.

The Finesse simulator (`python -m connector sandbox`) and the routing listener
(`python -m connector listen`) run as separate processes on an embedded Redis; every agent has an
XMPP session. Measured:
- call arrives → chat side marks the agent INTERRUPTED: from just before the simulator is told to
  ring the agent (its notification goes out within that call) to the first poll that sees the flag;
- chat assigned → NOT_READY request reaches Finesse: from the chat event's publication to the
  simulator's record of the PUT.
Goal: p99 ≤ 50 ms for both.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis as redis_lib
import requests

from bench.loadgen import Result
from connector.blending.chat_events import publish_chat_assigned
from connector.blending.finesse.credentials import CredentialStore
from connector.embedded_redis import EmbeddedRedis
from connector.sandbox.main import (
    FINESSE_ADMIN,
    FINESSE_CONTROL_PORT,
    FINESSE_PUBLISHER_PORT,
    FINESSE_XMPP_CA,
    FINESSE_XMPP_PORT,
)
from connector.settings import PROJECT_ROOT
from connector.store import keys

AGENTS = [str(5000 + n) for n in range(200)]
CONTROL = f"http://127.0.0.1:{FINESSE_CONTROL_PORT}/control"
RATE_PER_SECOND = 50.0

CONFIG = f"""
finesse:
  publisher: http://127.0.0.1:{FINESSE_PUBLISHER_PORT}
  subscriber: http://127.0.0.1:{FINESSE_PUBLISHER_PORT + 1}
  admin_user: {FINESSE_ADMIN[0]}
  admin_password: {FINESSE_ADMIN[1]}
  events: xmpp
  xmpp_port: {FINESSE_XMPP_PORT}
  ca_bundle: {FINESSE_XMPP_CA}
  not_ready_reason: Handling Chat
  liveness_interval_seconds: 5
  sync_interval_seconds: 3600
"""


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench setup: timed out waiting for {what}")
        time.sleep(0.1)


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


class FirstSeen(threading.Thread):
    """Polls the chat side's interrupted set every millisecond; records when each agent first shows."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        super().__init__(daemon=True)
        self.redis = redis
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.time()
            for member in self.redis.smembers(keys.chat_interrupted()):
                self.seen.setdefault(member.decode(), now)
            time.sleep(0.001)


def run() -> str:
    folder = Path(tempfile.mkdtemp(prefix="cc-bench-blend-", dir="/tmp"))
    server = EmbeddedRedis(folder / "redis").start()
    config_dir = folder / "config"
    config_dir.mkdir()
    (config_dir / "bench.yaml").write_text(CONFIG)
    secret = secrets.token_hex(16)
    env = {
        **os.environ,
        "REDIS_URL": server.url,
        "CONNECTOR_CONFIG_DIR": str(config_dir),
        "CONNECTOR_SECRET_KEY": secret,
        "LOG_LEVEL": "WARNING",
    }
    children: list[subprocess.Popen[bytes]] = []
    redis = redis_lib.Redis.from_url(server.url)
    try:
        children.append(subprocess.Popen([sys.executable, "-m", "connector", "sandbox"], cwd=PROJECT_ROOT, env=env))
        _wait(lambda: _up(f"{CONTROL}/state"), 30, "the simulator")
        store = CredentialStore(redis, secret)
        for agent in AGENTS:
            password = f"pw-{agent}"
            requests.post(
                f"{CONTROL}/agents",
                json={"id": agent, "password": password, "extension": f"7{agent}", "state": "READY"},
                timeout=5,
            ).raise_for_status()
            store.save(agent, agent, password)
        children.append(subprocess.Popen([sys.executable, "-m", "connector", "listen"], cwd=PROJECT_ROOT, env=env))
        _wait(lambda: redis.scard(keys.agents()) >= len(AGENTS), 60, "agent sync")
        _wait(
            lambda: len(set(requests.get(f"{CONTROL}/xmpp/sessions", timeout=5).json()["sessions"])) >= len(AGENTS),
            120,
            "200 XMPP sessions",
        )
        interrupt = _measure_interrupt(redis)
        not_ready = _measure_not_ready(redis)
    finally:
        for child in reversed(children):
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return report(interrupt, not_ready)


def _measure_interrupt(redis: redis_lib.Redis) -> Result:
    poller = FirstSeen(redis)
    poller.start()
    sent: dict[str, float] = {}
    session = requests.Session()
    dialogs: list[str] = []
    start = time.time()
    for index, agent in enumerate(AGENTS):
        time.sleep(max(0.0, start + index / RATE_PER_SECOND - time.time()))
        sent[agent] = time.time()
        answer = session.post(f"{CONTROL}/calls", json={"agent_id": agent, "call_type": "ACD_IN"}, timeout=5)
        dialogs.append(answer.json()["id"])
    _wait(lambda: len(poller.seen) >= len(AGENTS), 30, "every agent INTERRUPTED")
    poller.stop.set()
    result = Result(latencies_ms=[(poller.seen[a] - sent[a]) * 1000 for a in AGENTS])
    for dialog in dialogs:
        session.post(f"{CONTROL}/calls/{dialog}/end", json={}, timeout=5)
    _wait(lambda: redis.scard(keys.chat_interrupted()) == 0, 60, "calls to end and chat to be restored")
    return result


def _measure_not_ready(redis: redis_lib.Redis) -> Result:
    requests.delete(f"{CONTROL}/requests", timeout=5)
    sent: dict[str, float] = {}
    start = time.time()
    for index, agent in enumerate(AGENTS):
        time.sleep(max(0.0, start + index / RATE_PER_SECOND - time.time()))
        sent[agent] = time.time()
        publish_chat_assigned(redis, agent, f"bench-chat-{agent}")

    def put_times() -> dict[str, float]:
        found: dict[str, float] = {}
        for record in requests.get(f"{CONTROL}/requests", params={"api_only": "1"}, timeout=10).json()["requests"]:
            agent = record["path"].rsplit("/", 1)[-1]
            if record["method"] == "PUT" and agent in sent:
                found.setdefault(agent, record["at"])
        return found

    _wait(lambda: len(put_times()) >= len(AGENTS), 60, "a NOT_READY request for every agent")
    reached = put_times()
    return Result(latencies_ms=[(reached[a] - sent[a]) * 1000 for a in AGENTS])


def report(interrupt: Result, not_ready: Result) -> str:
    def row(name: str, result: Result) -> str:
        ok = "met" if result.percentile(99) <= 50 else "NOT met"
        return (
            f"| {name} | {result.count} | {result.percentile(50):.1f} | {result.percentile(99):.1f} "
            f"| {max(result.latencies_ms):.1f} | {ok} |"
        )

    return "\n".join(
        [
            "## Media blending with 200 agents",
            "",
            f"200 agents, each with an XMPP session; events at {RATE_PER_SECOND:.0f}/s. Goal p99 ≤ 50 ms.",
            "",
            "| path | samples | p50 ms | p99 ms | max ms | goal |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
            row("call arrives → chat side INTERRUPTED", interrupt),
            row("chat assigned → NOT_READY request at Finesse", not_ready),
        ]
    )
