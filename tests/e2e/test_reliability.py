"""The foundation's promises, with real processes: no message lost, none twice, none out of order."""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis as redis_lib
import requests

from connector import create_app
from connector.channels.base import thread_id_for
from connector.embedded_redis import EmbeddedRedis
from connector.runtime import Runtime
from connector.settings import Settings
from connector.store import keys, threads
from tests.conftest import CONFIG_DIR, PUBLIC_BASE_URL
from tests.e2e.conftest import WorkerProcess
from tests.helpers import WHATSAPP_ASSET, wait_for, whatsapp_headers, whatsapp_payload

pytestmark = pytest.mark.e2e

CUSTOMER = "15557770000"
THREAD = thread_id_for("whatsapp", WHATSAPP_ASSET, CUSTOMER)
FAST_LEASE = {
    "CONNECTOR_LEASE_SECONDS": "2",
    "CONNECTOR_SWEEP_INTERVAL_SECONDS": "0.5",
    "CONNECTOR_WAKE_TTL_SECONDS": "2",
}


def handled_ids(redis) -> list[str]:
    """The customer's messages handled, in order (the timeline also shows what went back to them)."""
    return [entry["provider_id"] for entry in threads.timeline(redis, THREAD) if entry.get("direction") == "in"]


class AcceptOrder:
    """Records the order in which Redis ran the intake script for each message (MONITOR).

    MONITOR also shows a call that Redis refused with NOSCRIPT (its script cache is empty after a
    restart or on a fresh server, so the first calls of concurrent threads may all be refused and
    re-sent after loading it). Such a call never ran, and its re-send is the later one: `order`
    keeps each message's last call."""

    pattern = re.compile(rf"cc:seen:whatsapp:{WHATSAPP_ASSET}:(wamid\.[\w.-]+)")

    def __init__(self, redis_url: str) -> None:
        self.client = redis_lib.Redis.from_url(redis_url)
        self.calls: list[str] = []
        self._monitor = self.client.monitor().__enter__()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                command = self._monitor.next_command()["command"]
            except (redis_lib.ConnectionError, ValueError):
                return
            if command.startswith("EVALSHA") or command.startswith("EVAL "):
                match = self.pattern.search(command)
                if match:
                    self.calls.append(match.group(1))

    @property
    def order(self) -> list[str]:
        last = {message: index for index, message in enumerate(self.calls)}
        return sorted(last, key=last.__getitem__)

    def stop(self) -> None:
        self._stop.set()
        self.client.ping()  # wakes the monitor loop
        self._thread.join(5)
        self._monitor.connection.disconnect()


def test_200_concurrent_messages_are_handled_in_arrival_order_once(live_server, start_worker, redis, redis_url):
    workers = [start_worker() for _ in range(3)]
    accept_order = AcceptOrder(redis_url)
    url = f"{live_server}/webhooks/whatsapp/{WHATSAPP_ASSET}"
    failures: list[str] = []

    def customer_device(sender: int) -> None:
        session = requests.Session()
        for n in range(25):
            body = whatsapp_payload([(CUSTOMER, f"wamid.s{sender}.n{n}", f"message {n} from {sender}")])
            response = session.post(url, data=body, headers=whatsapp_headers(body), timeout=10)
            if response.status_code != 200:
                failures.append(f"{sender}/{n}: {response.status_code}")

    senders = [threading.Thread(target=customer_device, args=(s,)) for s in range(8)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(60)

    assert not failures
    wait_for(lambda: len(handled_ids(redis)) >= 200, timeout=30, what="200 handled messages")
    time.sleep(0.3)  # a duplicate, if any, would land now
    accept_order.stop()
    handled = handled_ids(redis)
    assert len(handled) == 200 and len(set(handled)) == 200, "none lost, none twice"
    assert handled == accept_order.order, "handled in exactly the order Redis accepted them"
    for sender in range(8):
        mine = [h for h in handled if h.startswith(f"wamid.s{sender}.")]
        assert mine == [f"wamid.s{sender}.n{n}" for n in range(25)]
    assert redis.llen(keys.inbox(THREAD)) == 0
    assert all(w.process.poll() is None for w in workers)


def test_redis_restart_between_intake_and_drain_keeps_inboxes_and_dedupe_records():
    """A clean restart (SIGTERM) with the items still in their inboxes: they and the dedupe records
    come back, so a provider's retry after the restart is still a duplicate. Delivery through a
    SIGKILL mid-drain, on the simulators, is tests/e2e/test_delivery_redis_kill.py; a worker killed
    mid-drain, tests/e2e/test_delivery_worker_kill.py."""
    folder = Path(tempfile.mkdtemp(prefix="cc-restart-", dir="/tmp"))  # short: unix socket path limit
    server = EmbeddedRedis(folder).start()
    try:
        settings = Settings.from_env(
            redis_url=server.url, config_dir=CONFIG_DIR, public_base_url=PUBLIC_BASE_URL, secret_key="x"
        )
        client = create_app(runtime=Runtime(settings)).test_client()
        ids = [f"wamid.r{i}" for i in range(40)]
        for wamid in ids:
            body = whatsapp_payload([(CUSTOMER, wamid, "hi")])
            assert (
                client.post(
                    f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body)
                ).status_code
                == 200
            )

        server.stop()  # SIGTERM: Redis flushes its AOF and exits
        server.start()  # the same folder: the AOF is replayed

        check = redis_lib.Redis.from_url(server.url)
        assert check.llen(keys.inbox(THREAD)) == 40
        worker = WorkerProcess(server.url, "restart-worker", {"CONNECTOR_SWEEP_INTERVAL_SECONDS": "0.5"})
        try:
            wait_for(lambda: len(handled_ids(check)) >= 40, timeout=30, what="drain after restart")
        finally:
            worker.stop()
        assert handled_ids(check) == ids
        # The dedupe records survived too: a provider retry after the restart is still a duplicate,
        # answered 200 by the same app (its kept Redis connection died with the restart).
        body = whatsapp_payload([(CUSTOMER, ids[0], "hi")])
        retry = client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))
        assert retry.status_code == 200
        assert check.llen(keys.inbox(THREAD)) == 0
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_sweeper_rewakes_an_inbox_whose_wakeup_was_lost(client, start_worker, redis):
    body = whatsapp_payload([(CUSTOMER, "wamid.lost", "hi")])
    assert (
        client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body)).status_code
        == 200
    )
    redis.delete("rq:queue:inbound")  # the wake-up job is gone, as if Redis lost it
    redis.pexpire(keys.wake(THREAD), 1500)  # the flags lapse after the wake TTL
    for slot in redis.zrange(keys.dispatchers(), 0, -1):  # its dispatcher slot fell silent long ago
        redis.zadd(keys.dispatchers(), {slot: 0})
    start_worker(**FAST_LEASE)
    wait_for(lambda: handled_ids(redis) == ["wamid.lost"], timeout=15, what="the sweeper to re-wake the inbox")
