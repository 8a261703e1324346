"""One soak run: start the stack, run the load with the fault schedule, stop the faults, wait for the
drain, account, write the report. `make soak` and tests/e2e/test_soak.py call `soak()`.

Knobs (environment of `make soak`): SOAK_MESSAGES (10000), SOAK_DURABILITY (everysec | always |
replicated), SOAK_ROUNDS (5: each conversation's customer messages, each answered by the agent),
SOAK_CONCURRENCY (24 conversations at once), SOAK_WORKERS (2), SOAK_WEB_WORKERS (2),
SOAK_ECE_DOWN_SECONDS (60), SOAK_KILL_EVERY (4 s), SOAK_FAULTS (full | light | none), SOAK_SEED (1),
SOAK_KEEP (keep the run's folder and process logs).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis as redis_lib

from bench.soak.check import Outcome, arrived_in, arrived_out, check, leftovers
from bench.soak.faults import FaultRecord, FaultRunner, Schedule
from bench.soak.load import Counters, Load
from bench.soak.report import RunInfo, render
from bench.soak.stack import SoakStack

RESULTS = Path(__file__).resolve().parent.parent / "results"
DURABILITIES = ("everysec", "always", "replicated")
QUIET_SECONDS = 20.0
"""The drain is over when Redis holds no work and nothing arrived for this long (retries wait 2 s at most)."""


@dataclass
class SoakResult:
    outcome: Outcome
    faults: list[FaultRecord]
    report: str
    path: Path | None
    counters: Counters
    provider_failures: dict[str, int]
    """Sends the provider simulators failed on purpose, per status."""


def soak(
    messages: int = 10_000,
    durability: str = "everysec",
    *,
    rounds: int = 5,
    concurrency: int = 24,
    workers: int = 2,
    web_workers: int = 2,
    schedule: Schedule | None = None,
    seed: int = 1,
    drain_timeout: float = 300.0,
    results: Path | None = RESULTS,
) -> SoakResult:
    """`messages` in all (customer and agent), so `messages / (2 * rounds)` conversations."""
    if durability not in DURABILITIES:
        raise ValueError(f"durability must be one of {', '.join(DURABILITIES)}")
    conversations = max(1, messages // (2 * rounds))
    stack = SoakStack(workers=workers, web_workers=web_workers, durability=durability).start()
    load = Load(stack, conversations, rounds, concurrency, seed)
    reader = stack.client()
    load.reached = lambda conversation: {n for n, _ in arrived_in(stack, load, conversation, reader)}
    runner = FaultRunner(stack, schedule or Schedule([], []), seed, busy=lambda: load.counters.in_flight > 0)
    started = time.time()
    try:
        worker = threading.Thread(target=load.run, name="soak-load")
        runner.start()
        worker.start()
        worker.join()
        load_done = time.time()
        runner.stop()
        client = stack.client()
        drain_deadline = time.monotonic() + drain_timeout
        idle_since, seen = time.monotonic(), -1
        while time.monotonic() < drain_deadline:
            try:
                clean = leftovers(client).clean
                if clean and _all_arrived(stack, load, client):
                    break
                # Redis empty and nothing new arriving for a while: what is missing is lost, not late.
                now_seen = _arrivals(stack, load, client)
                if now_seen != seen or not clean:
                    idle_since, seen = time.monotonic(), now_seen
                elif time.monotonic() - idle_since > QUIET_SECONDS:
                    break
            except Exception:  # noqa: S110 - Redis restarting: ask again
                pass
            time.sleep(0.5)
        drained = time.time()
        time.sleep(2.0)  # a duplicate, if any, would land now
        load.finish()
        outcome = check(stack, load, runner.records, client)
        outcome.errors += runner.errors
        info = RunInfo(
            messages_target=messages,
            conversations=conversations,
            rounds=rounds,
            durability=durability,
            workers=workers,
            web_workers=web_workers,
            started=started,
            load_seconds=load_done - started,
            drain_seconds=drained - load_done,
            seams=[
                f"ECE connection refused: {stack.ece_refuser.kind}",
                f"Provider failures: {stack.provider_failures.kind}",
            ],
        )
        report = render(info, outcome, runner.records, load.counters)
        path = None
        if results is not None:
            results.mkdir(exist_ok=True)
            path = results / f"soak-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(started))}.md"
            path.write_text(report)
        return SoakResult(outcome, runner.records, report, path, load.counters, stack.provider_failures.injected())
    finally:
        load.stop.set()
        runner.stop()
        stack.stop()


def _arrivals(stack: SoakStack, load: Load, client: redis_lib.Redis) -> int:
    return sum(len(arrived_in(stack, load, c, client)) + len(arrived_out(stack, c)) for c in load.conversations)


def _all_arrived(stack: SoakStack, load: Load, client: redis_lib.Redis) -> bool:
    """Every acknowledged message at its far end (the drain is over, or something is lost)."""
    for conversation in load.conversations:
        wanted_in = {m.seq for m in conversation.messages if m.direction == "in" and m.acked_at is not None}
        if not wanted_in <= {n for n, _ in arrived_in(stack, load, conversation, client)}:
            return False
        wanted_out = {m.seq for m in conversation.messages if m.direction == "out" and m.acked_at is not None}
        if not wanted_out <= {n for n, _ in arrived_out(stack, conversation)}:
            return False
    return True


def main() -> int:
    """`make soak`: the knobs from the environment; exits 1 when anything was lost, doubled or reordered."""
    env = os.environ
    kind = env.get("SOAK_FAULTS", "full")
    schedule = {
        "full": Schedule.soak(float(env.get("SOAK_ECE_DOWN_SECONDS", "60")), float(env.get("SOAK_KILL_EVERY", "4"))),
        "light": Schedule.light(),
        "none": Schedule([], []),
    }[kind]
    result = soak(
        int(env.get("SOAK_MESSAGES", "10000")),
        env.get("SOAK_DURABILITY", "everysec"),
        rounds=int(env.get("SOAK_ROUNDS", "5")),
        concurrency=int(env.get("SOAK_CONCURRENCY", "24")),
        workers=int(env.get("SOAK_WORKERS", "2")),
        web_workers=int(env.get("SOAK_WEB_WORKERS", "2")),
        schedule=schedule,
        seed=int(env.get("SOAK_SEED", "1")),
    )
    print(result.report, flush=True)
    if result.path is not None:
        print(f"report: {result.path}", flush=True)
    return 1 if result.outcome.failures else 0
