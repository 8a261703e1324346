"""What each CONNECTOR_DURABILITY mode costs an acknowledgement, and what it loses when the Redis
master is SIGKILLed under load (docs/architecture.md, "Redis durability").

Every mode runs on the same topology, the one `replicated` needs: a master, two replicas and three
sentinels (redis-server from the embedded package), the stack (`python -m connector run --sandbox`)
on REDIS_SENTINELS. Per mode:

1. ack cost: signed WhatsApp webhooks at a fixed open-loop rate, latency from the scheduled send
   (queueing counted), p50 / p99;
2. loss: the same load, the master SIGKILLed halfway; after the sentinels promote a replica, each
   webhook answered 200 is looked up on the new master (its dedupe record is written with its inbox
   item in one script, so it marks the item stored). Acknowledged and not there = lost. Webhooks
   answered 503 during the switch are not counted: a provider retries them.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.loadgen import Result, open_loop
from bench.stack import running_stack
from bench.webhook_ack import ASSET, HOST, Load
from connector.embedded_redis import SentinelGroup
from connector.settings import Settings
from connector.store import keys
from connector.store.durability import Durability, Mode

REPLICA_WAIT_MS = 1000
FAILOVER_DEADLINE = 30.0


@dataclass
class ModeResult:
    mode: Mode
    ack: Result
    loss_run: Result
    acknowledged: int
    lost: int
    failover_seconds: float | None


def run(seconds: float = 10.0, rate: float = 300.0) -> str:
    return report([measure(mode, seconds, rate) for mode in Mode], seconds, rate)


def measure(mode: Mode, seconds: float, rate: float) -> ModeResult:
    folder = Path(tempfile.mkdtemp(prefix="cc-dur-", dir="/tmp"))
    appendfsync = Durability(mode).appendfsync
    group = SentinelGroup(folder, replicas=2, sentinels=3, appendfsync=appendfsync).start()
    env = {
        "REDIS_SENTINELS": group.sentinel_list,
        "REDIS_SENTINEL_MASTER": group.master_name,
        "CONNECTOR_DURABILITY": mode.value,
        "CONNECTOR_REPLICA_WAIT_MS": str(REPLICA_WAIT_MS),
    }
    try:
        with running_stack(sandbox=True, env=env) as stack:
            load = Load(stack.port)
            load.warm()
            ack = open_loop(HOST, stack.port, load.acks_from(50_000_000), rate, seconds)
            first = 60_000_000
            acknowledged: list[int] = []
            make = load.acks_from(first)
            failover: list[float | None] = []
            killer = threading.Thread(target=lambda: failover.append(kill_master(group, seconds / 2)))
            killer.start()
            loss_run = open_loop(
                HOST, stack.port, make, rate, seconds, on_done=lambda i, s: acknowledged.append(i) if s == 200 else None
            )
            killer.join()
            store = master_client(group)
            stored = pipe_exists(
                store, [keys.dedupe("whatsapp", ASSET, f"wamid.bench.{first + i}") for i in acknowledged]
            )
            lost = sum(1 for present in stored if not present)
            return ModeResult(mode, ack, loss_run, len(acknowledged), lost, failover[0])
    finally:
        group.stop()
        shutil.rmtree(folder, ignore_errors=True)


def kill_master(group: SentinelGroup, after: float) -> float | None:
    """SIGKILL the master `after` seconds from now; seconds until the sentinels name another one
    (None: not within FAILOVER_DEADLINE)."""
    time.sleep(after)
    killed = group.master()
    killed.kill()
    started = time.monotonic()
    while time.monotonic() - started < FAILOVER_DEADLINE:
        try:
            if group.master() is not killed:
                return time.monotonic() - started
        except (redis.RedisError, StopIteration):
            pass
        time.sleep(0.1)
    return None


def master_client(group: SentinelGroup) -> redis.Redis:
    from connector.store.connection import connect

    settings = Settings(redis_sentinels=tuple(group.sentinel_list.split(",")), redis_sentinel_master=group.master_name)
    return connect(settings)


def pipe_exists(store: redis.Redis, names: list[str]) -> list[bool]:
    pipe = store.pipeline(transaction=False)
    for name in names:
        pipe.exists(name)
    return [bool(n) for n in pipe.execute()]


def report(results: list[ModeResult], seconds: float, rate: float) -> str:
    lines = [
        "## Durability modes: ack cost and loss on a master SIGKILL (bench/durability.py)",
        "",
        f"Signed WhatsApp webhooks at {rate:.0f}/s for {seconds:.0f} s, open loop; master + 2 replicas + 3 "
        "sentinels on this machine, the stack on REDIS_SENTINELS. Loss: the same load with the master "
        "SIGKILLed halfway; acknowledged (200) webhooks missing on the promoted replica. A webhook that "
        "arrives during the switch waits (the client retries through the failover for about 6 s): the "
        "kill run's p99 shows that wait; one that waits longer is answered 503 (non-200) and retried.",
        "",
        "| mode | ack p50 ms | ack p99 ms | non-200 | kill run: acknowledged | lost | failover s | non-200 | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        refused = sum(n for status, n in r.ack.statuses.items() if status != 200) + r.ack.errors
        refused_kill = sum(n for status, n in r.loss_run.statuses.items() if status != 200) + r.loss_run.errors
        failover = f"{r.failover_seconds:.1f}" if r.failover_seconds is not None else "none"
        lines.append(
            f"| {r.mode.value} | {r.ack.percentile(50):.1f} | {r.ack.percentile(99):.1f} | {refused} | "
            f"{r.acknowledged} | {r.lost} | {failover} | {refused_kill} | {r.loss_run.percentile(99):.0f} |"
        )
    return "\n".join(lines)
