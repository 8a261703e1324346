"""Capacity: the figures a deployment is sized from (README.md, "Production").

- **Web**: messages/s one web process (one gunicorn process, its threads) acknowledges: signed
  WhatsApp webhooks, open loop (latency from the scheduled send time), stepping the rate up until
  the ack p99 passes 50 ms or an error or a non-200 answer appears, twice at the same rate (one
  hiccup of a shared machine is not the limit); the figure is the last rate that passed. The workers are paused while it
  runs, so the web process has the machine's cores to itself apart from Redis and the load generator.
- **Worker**: messages/s one `python -m connector worker` delivers to the ECE simulator, which
  answers at once: a backlog is accepted with the worker paused, then timed from its release until
  every inbox is empty (an item leaves its inbox only after ECE took it). The customers' chats are
  started beforehand, so the figure is of messages into open chats, the common case.
- **Redis**: CPU seconds Redis spends per second at 1,000 messages/s, from `INFO cpu`
  (used_cpu_sys + used_cpu_user) over the whole path of the backlog (intake, then delivery),
  divided by its messages. It is CPU time, so it barely depends on what else runs on the machine.

`CAPACITY_QUICK=1` runs short steps and a small backlog: a check that it works, not a figure.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import redis

from bench.cpu import CpuUse, measuring
from bench.loadgen import Result, open_loop
from bench.payloads import signed_whatsapp_request, whatsapp_text
from bench.stack import running_stack
from bench.webhook_ack import paused_workers, wait_drained
from connector.store import keys

QUICK = os.environ.get("CAPACITY_QUICK", "") not in ("", "0")
HOST = "127.0.0.1"
P99_LIMIT_MS = 50.0
STEP_SECONDS = 2.0 if QUICK else 10.0
FIRST_RATE = 100.0
STEP_FACTOR = 1.25
MAX_STEPS = 3 if QUICK else 30
CUSTOMERS = 200
BACKLOG = 400 if QUICK else 6_000
BACKLOG_RATE = 200.0
"""Rate the worker's backlog is posted at: well under any web process's limit."""
DRAIN_DEADLINE = 600.0


def customer(run: str, index: int) -> str:
    return f"1777{run}{index % CUSTOMERS:05d}"


class Webhooks:
    """Unique signed WhatsApp webhooks (a repeat would take the cheaper duplicate path), built
    before each timed run so that signing is not charged to the server's side."""

    def __init__(self, port: int, run: str) -> None:
        self.port, self.run, self.sent = port, run, 0

    def batch(self, count: int) -> list[bytes]:
        first, self.sent = self.sent, self.sent + count
        return [
            signed_whatsapp_request(
                HOST,
                self.port,
                whatsapp_text(customer(self.run, i), "Capacity", f"wamid.capacity.{self.run}.{i}", f"message {i}"),
            )
            for i in range(first, first + count)
        ]

    def post(self, rate: float, seconds: float) -> Result:
        requests = self.batch(int(rate * seconds))
        return open_loop(HOST, self.port, lambda index: requests[index], rate, seconds)


def clean(result: Result) -> bool:
    return result.errors == 0 and set(result.statuses) <= {200}


@dataclass
class Step:
    rate: float
    result: Result
    cpu: CpuUse

    @property
    def passed(self) -> bool:
        return clean(self.result) and self.result.percentile(99) <= P99_LIMIT_MS


def web_steps() -> list[Step]:
    """One web process, workers paused: step the rate up until one fails twice in a row (or MAX_STEPS)."""
    steps: list[Step] = []
    with running_stack(app="wsgi:app", workers=1, sandbox=True, env={"WEB_CONCURRENCY": "1"}) as stack:
        hooks = Webhooks(stack.port, "1")
        hooks.post(50.0, 2.0)  # warm: imports, connections, the Lua script cache
        store = redis.Redis(unix_socket_path=str(stack.redis_socket))
        wait_drained(store, DRAIN_DEADLINE)
        rate = FIRST_RATE
        with paused_workers(stack.process.pid):
            retried = False
            for _ in range(MAX_STEPS):
                with measuring(stack.process.pid) as cpu:
                    result = hooks.post(rate, STEP_SECONDS)
                steps.append(Step(rate, result, cpu))
                if not steps[-1].passed:
                    if retried:
                        break
                    retried = True  # once per rate: one hiccup of a shared machine is not the limit
                    continue
                retried = False
                rate = round(rate * STEP_FACTOR, -1)
    return steps


@dataclass
class Delivery:
    messages: int
    accepted: int
    seconds: float | None
    redis_cpu_seconds: float
    cpu: CpuUse
    dead_letters: int

    @property
    def rate(self) -> float | None:
        return self.messages / self.seconds if self.seconds else None

    @property
    def redis_per_1000(self) -> float:
        """Redis CPU seconds per second at 1,000 messages/s (i.e. cores of Redis)."""
        return 1000 * self.redis_cpu_seconds / max(self.accepted, 1)


def redis_cpu(store: redis.Redis) -> float:
    info = store.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def delivery() -> Delivery:
    """One worker: chats started first, then a backlog accepted while it is paused and timed from
    its release until every inbox is empty."""
    with running_stack(app="wsgi:app", workers=1, sandbox=True) as stack:
        store = redis.Redis(unix_socket_path=str(stack.redis_socket))
        hooks = Webhooks(stack.port, "2")
        hooks.post(BACKLOG_RATE, CUSTOMERS / BACKLOG_RATE)  # one message per customer: every chat starts
        if wait_drained(store, DRAIN_DEADLINE) is None:
            raise RuntimeError("the warm-up messages were not delivered")
        cpu_before = redis_cpu(store)
        with measuring(stack.process.pid) as cpu:
            with paused_workers(stack.process.pid):
                posted = hooks.post(BACKLOG_RATE, BACKLOG / BACKLOG_RATE)
            released = time.monotonic()
            drained = wait_drained(store, DRAIN_DEADLINE)
            seconds = time.monotonic() - released if drained is not None else None
        redis_seconds = redis_cpu(store) - cpu_before
        return Delivery(
            messages=BACKLOG,
            accepted=posted.statuses.get(200, 0),
            seconds=seconds,
            redis_cpu_seconds=redis_seconds,
            cpu=cpu,
            dead_letters=int(store.llen(keys.dead_letters())),
        )


def run() -> str:
    steps = web_steps()
    deliveries = delivery()
    return report(steps, deliveries)


def _web_line(step: Step) -> str:
    r = step.result
    answers = ", ".join(f"{k} x{v}" for k, v in sorted(r.statuses.items()))
    answers += f", errors {r.errors}" if r.errors else ""
    return (
        f"| {step.rate:,.0f} | {r.throughput:,.0f} | {r.percentile(50):.1f} | {r.percentile(99):.1f} | {answers} "
        f"| {step.cpu.per_message_ms('web', r.count):.2f} | {'pass' if step.passed else 'FAIL'} |"
    )


def report(steps: list[Step], delivered: Delivery) -> str:
    passing = [s for s in steps if s.passed]
    best = passing[-1] if passing else None
    capped = bool(steps) and steps[-1].passed
    web_figure = f"{best.rate:,.0f}" if best else "below the first step"
    if best and capped:
        web_figure += " or more (the last step still passed)"
    worker_figure = f"{delivered.rate:,.0f}" if delivered.rate else f"not drained within {DRAIN_DEADLINE:.0f} s"
    lines = [
        "## Capacity (sizing figures)",
        "",
        "The stack `make run` starts, on the same cores as the load generator"
        + (" (CAPACITY_QUICK: a check, not a figure)." if QUICK else "."),
        "",
        "| what | figure |",
        "| --- | ---: |",
        f"| messages/s one web process acknowledges (ack p99 ≤ {P99_LIMIT_MS:.0f} ms, no error) | {web_figure} |",
        f"| messages/s one worker delivers to ECE (answering at once) | {worker_figure} |",
        f"| Redis CPU seconds per second at 1,000 messages/s (intake + delivery) | {delivered.redis_per_1000:.2f} |",
        "",
        f"Web process, one gunicorn process (workers paused), open loop, {STEP_SECONDS:.0f} s a step, the rate "
        f"times {STEP_FACTOR} until a rate fails twice:",
        "",
        "| rate/s | answered/s | p50 ms | p99 ms | answers | web CPU ms/message | verdict |",
        "| ---: | ---: | ---: | ---: | --- | ---: | --- |",
        *(_web_line(step) for step in steps),
        "",
        f"Worker: {delivered.accepted:,} of {delivered.messages:,} messages accepted while it was paused "
        f"({CUSTOMERS} customers with open chats), delivered in "
        + (f"{delivered.seconds:.1f} s" if delivered.seconds is not None else "(not drained)")
        + f"; CPU per message: {delivered.cpu.summary(delivered.accepted)} (web and worker over intake and "
        f"delivery); Redis {1000 * delivered.redis_cpu_seconds / max(delivered.accepted, 1):.3f} ms by INFO cpu; "
        f"dead letters: {delivered.dead_letters}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
