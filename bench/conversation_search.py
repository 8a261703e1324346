"""Conversation list benchmark: what one page of the list costs with SCAN_LIMIT threads in Redis.

THREADS threads are written the way the drain's commit writes them (their hash and activity score),
each with a customer name and a first message of threads.FIRST_TEXT_LIMIT characters (the most a
search reads), on a fresh embedded Redis. Each listing is then asked REPEAT times after one warm-up;
the table shows the time of `listing()` (Redis round trips and matching, not the page's HTML) and
Redis's own time per command kind over the run (INFO commandstats), which is what a search takes
from every other client. Goal: p95 < 100 ms, so the page stays under the pages benchmark's 200 ms.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import redis as redis_lib

from connector.conversations import State
from connector.embedded_redis import EmbeddedRedis
from connector.operations import conversations as view
from connector.store import keys, threads

THREADS = view.SCAN_LIMIT
REPEAT = 20
GOAL_MS = 100.0
STATES = (State.QUEUED, State.ASSIGNED, State.CLOSED, State.CLOSED, State.UNAVAILABLE)


def seed(redis: redis_lib.Redis, now: float) -> None:
    pipe = redis.pipeline(transaction=False)
    for i in range(THREADS):
        thread = threads.Thread(
            id=f"bench{i:05d}",
            channel="whatsapp",
            asset="sandbox-whatsapp",
            customer=f"1555{i:07d}",
            state=STATES[i % len(STATES)],
            integration="BenchECE",
            entry_point=f"EP{i % 100:03d}",
            details={"profile_name": f"Customer {i}"},
            agent_id=f"agent{i % 30}",
            agent_name=f"Agent {i % 30}",
            first_text=(f"Hello, a question about order {i} and its delivery, which " * 5)[: threads.FIRST_TEXT_LIMIT],
        )
        pipe.hset(keys.thread(thread.id), mapping=threads.fields_of(thread))
        pipe.zadd(keys.threads_by_activity(), {thread.id: now - 60 * (THREADS - i)})  # one a minute
    pipe.execute()


def cases(now: float) -> list[tuple[str, view.Filters]]:
    today = datetime.fromtimestamp(now, UTC).date()
    return [
        ("no filter", view.Filters()),
        ("one day (dates only)", view.Filters(since=today, until=today)),
        ("search matching none", view.Filters(search="no such customer")),
        ("search by name", view.Filters(search="customer 49")),
        ("state active", view.Filters(state=view.ACTIVE)),
        ("state, agent and entry point", view.Filters(state="assigned", agent="agent 6", entry_point="EP006")),
        ("search and one day", view.Filters(search="order", since=today, until=today)),
    ]


def run() -> str:
    folder = Path(tempfile.mkdtemp(prefix="cc-bench-", dir="/tmp"))
    server = EmbeddedRedis(folder / "redis").start()
    rows = []
    try:
        redis = redis_lib.Redis.from_url(server.url)
        now = time.time()
        seed(redis, now)
        for label, filters in cases(now):
            view.listing(redis, filters)  # warm-up: the script is loaded, the connection made
            redis.config_resetstat()
            timings = []
            for _ in range(REPEAT):
                started = time.perf_counter()
                found = view.listing(redis, filters)
                timings.append((time.perf_counter() - started) * 1000)
            stats = redis.info("commandstats")
            redis_ms = sum(float(v["usec"]) for v in stats.values()) / 1000 / REPEAT
            timings.sort()
            p95 = timings[int(len(timings) * 0.95) - 1]
            rows.append((label, found.matched, found.scanned, statistics.median(timings), p95, redis_ms))
        redis.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return report(rows)


def report(rows: list[tuple[str, int, int, float, float, float]]) -> str:
    lines = [
        "## Conversation list: search and filters",
        "",
        f"{THREADS} threads (SCAN_LIMIT) on an embedded Redis, first messages of {threads.FIRST_TEXT_LIMIT} "
        f"characters; `listing()` asked {REPEAT} times per case after one warm-up.",
        "",
        "| case | matched | threads read | p50 ms | p95 ms | Redis ms per listing | p95 under 100 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, matched, scanned, p50, p95, redis_ms in rows:
        ok = "yes" if p95 < GOAL_MS else "NO"
        lines.append(f"| {label} | {matched} | {scanned} | {p50:.1f} | {p95:.1f} | {redis_ms:.1f} | {ok} |")
    lines += ["", f"Goal: p95 < {GOAL_MS:.0f} ms for every case."]
    return "\n".join(lines)
