"""Redis Sentinel: the master is SIGKILLed under load, the sentinels promote a replica, and the
connector (web app and a worker process, both on REDIS_SENTINELS) carries on. Every message
acknowledged with a 200 is handled afterwards with `replicated`; with `everysec` the test reports
what the asynchronous replication lost (the window docs/architecture.md, "Redis durability", states)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connector import create_app
from connector.channels.base import thread_id_for
from connector.embedded_redis import SentinelGroup
from connector.runtime import Runtime
from connector.sandbox.http import serving
from connector.settings import Settings
from connector.store import connection, keys, threads
from tests.conftest import CONFIG_DIR, PUBLIC_BASE_URL
from tests.e2e.conftest import WorkerProcess
from tests.helpers import WHATSAPP_ASSET, wait_for, whatsapp_headers, whatsapp_payload

pytestmark = pytest.mark.e2e

SENDERS = 4
"""Customers writing at once, each on their own conversation."""
SEND_SECONDS = 9.0
KILL_AT_SECONDS = 2.0
RETRY_SECONDS = 15.0
"""How long a provider keeps retrying one message that got no 200 (503 or no answer)."""
WORKER_ENV = {
    "CONNECTOR_LEASE_SECONDS": "2",
    "CONNECTOR_SWEEP_INTERVAL_SECONDS": "0.5",
    "CONNECTOR_WAKE_TTL_SECONDS": "2",
}


def customer(sender: int) -> str:
    return f"1555888{sender:04d}"


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    folder = Path(tempfile.mkdtemp(prefix="cc-sentinel-", dir="/tmp"))
    # Two replicas: after the failover the promoted one still has a replica to confirm `replicated` writes.
    sentinels = SentinelGroup(folder, replicas=2, sentinels=3, down_after_ms=1000, failover_timeout_ms=3000)
    try:
        yield sentinels.start()
    finally:
        sentinels.stop()
        shutil.rmtree(folder, ignore_errors=True)


class Provider:
    """WhatsApp delivering webhooks as providers do: a message that gets no 200 is sent again."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acknowledged: list[str] = []
        self.refusals = 0
        self._lock = threading.Lock()

    def deliver(self, wa_id: str, wamid: str) -> None:
        body = whatsapp_payload([(wa_id, wamid, f"text of {wamid}")])
        session = requests.Session()
        deadline = time.monotonic() + RETRY_SECONDS
        while time.monotonic() < deadline:
            try:
                if session.post(self.url, data=body, headers=whatsapp_headers(body), timeout=15).status_code == 200:
                    with self._lock:
                        self.acknowledged.append(wamid)
                    return
            except requests.RequestException:
                pass
            with self._lock:
                self.refusals += 1
            time.sleep(0.2)

    def customer_writes(self, sender: int, until: float) -> None:
        n = 0
        while time.monotonic() < until:
            self.deliver(customer(sender), f"wamid.c{sender}.n{n:05d}")
            n += 1
            time.sleep(0.01)


def handled(settings: Settings) -> set[str]:
    redis = connection.connect(settings)
    ids: set[str] = set()
    for sender in range(SENDERS):
        thread = thread_id_for("whatsapp", WHATSAPP_ASSET, customer(sender))
        ids.update(e["provider_id"] for e in threads.timeline(redis, thread) if e.get("direction") == "in")
    return ids


@pytest.mark.parametrize("durability", ["replicated", "everysec"])
def test_the_master_killed_under_load_the_connector_carries_on_after_the_failover(group, tmp_path, durability):
    settings = Settings.from_env(
        redis_url=None,
        redis_sentinels=tuple(group.sentinel_list.split(",")),
        redis_sentinel_master=group.master_name,
        config_dir=CONFIG_DIR,
        public_base_url=PUBLIC_BASE_URL,
        secret_key="test-secret-key",
        data_dir=tmp_path,
        durability=durability,
        replica_wait_ms=500,
    )
    app = create_app(runtime=Runtime(settings))
    worker = WorkerProcess(
        "",  # no REDIS_URL: the worker asks the sentinels
        f"sentinel-worker-{durability}",
        {
            "REDIS_SENTINELS": group.sentinel_list,
            "REDIS_SENTINEL_MASTER": group.master_name,
            "CONNECTOR_DURABILITY": durability,
            **WORKER_ENV,
        },
    )
    first_master = group.master()
    try:
        with serving(app) as server:
            provider = Provider(f"{server.url}/webhooks/whatsapp/{WHATSAPP_ASSET}")
            until = time.monotonic() + SEND_SECONDS
            senders = [threading.Thread(target=provider.customer_writes, args=(s, until)) for s in range(SENDERS)]
            for sender in senders:
                sender.start()
            time.sleep(KILL_AT_SECONDS)
            before_kill = len(provider.acknowledged)
            first_master.kill()  # SIGKILL: no AOF flush, no goodbye to the replicas
            killed_at = time.monotonic()
            wait_for(lambda: group.master() is not first_master, timeout=15, interval=0.1, what="a failover")
            failover_seconds = time.monotonic() - killed_at
            for sender in senders:
                sender.join(RETRY_SECONDS + SEND_SECONDS)
            after_failover = len(provider.acknowledged) - before_kill

        acknowledged = set(provider.acknowledged)
        assert before_kill > 20 and after_failover > 20, "messages were acknowledged before the kill and after it"
        assert worker.process.poll() is None, "the worker survived the failover"
        # The worker drains the new master; what it never finds there was lost with the old one.
        redis = connection.connect(settings)
        wait_for(
            lambda: all(
                redis.llen(keys.inbox(thread_id_for("whatsapp", WHATSAPP_ASSET, customer(s)))) == 0
                for s in range(SENDERS)
            ),
            timeout=30,
            interval=0.2,
            what="every inbox drained on the new master",
        )
        lost = acknowledged - handled(settings)
        print(
            f"\n[{durability}] acknowledged {len(acknowledged)}, lost {len(lost)}, failover {failover_seconds:.1f} s, "
            f"refused and retried {provider.refusals}"
        )
        if durability == "replicated":
            assert not lost, f"{len(lost)} acknowledged messages lost"
        # everysec: the replicas lag the master by the replication link's latency; what the killed
        # master acknowledged and had not yet sent them is lost. Reported above, not asserted.
        os.killpg(worker.process.pid, signal.SIGTERM)
        worker.process.wait(15)  # a warm shutdown after the failover: no connection left with a stale reply
    finally:
        worker.stop()
