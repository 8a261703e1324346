"""Webhook ack benchmark: signed WhatsApp webhook acknowledgements vs a no-op endpoint, same gunicorn.

Goal on the 2-core machine: ack p99 ≤ 15 ms at 300 requests/s, and ack throughput ≥ 50 % of the
no-op endpoint's.

The stack is the one `make run` starts, simulators included. The throughput runs pause the workers
for both endpoints, so they compare what the web tier spends per request; the workers then relay
the backlog to the ECE simulator (the whole pipeline's rate), and the fixed-rate run keeps them
relaying while webhooks arrive, as in production. Every accepted message must leave its inbox, and
none may end as a dead letter.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil
import redis

from bench.loadgen import Result, build_request, closed_loop, open_loop
from bench.payloads import whatsapp_text
from bench.stack import Stack, running_stack
from connector.sandbox.signing import meta_signature
from connector.store import keys
from connector.supervisor import default_web_workers

ASSET = "sandbox-whatsapp"
SECRET = b"sandbox-meta-secret"
HOST = "127.0.0.1"
TRIES = 3
INFO_TRIES = 2
PREBUILT = 40_000
"""Signed webhooks built ahead of a timed run: more than a 10 s run sends at the intake's top speed."""
DRAIN_DEADLINE = 600.0
"""Longest wait for the workers to empty every inbox before the figure says they did not."""


def whatsapp_body(index: int) -> bytes:
    customer = f"1555{index % 500:07d}"  # 500 customers, so inboxes and drains are realistic
    return whatsapp_text(customer, "Bench Customer", f"wamid.bench.{index}", f"benchmark message {index}")


class Load:
    """The requests of one stack's runs.

    Requests are built before each timed run: the load generator shares the 2 cores, and signing
    bodies while measuring would charge the client's work to the webhook's side. Each signed webhook
    is unique (a repeat would take the cheaper duplicate path); the no-op endpoint dedupes nothing,
    so its requests are reused.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.first = 0
        self.prebuilt: list[bytes] = []
        self.noops = [
            build_request(HOST, port, "/bench/noop", whatsapp_body(i), {"Content-Type": "application/json"})
            for i in range(1000)
        ]

    def build_ack(self, index: int) -> bytes:
        body = whatsapp_body(index)
        signature = meta_signature(SECRET, body)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        return build_request(HOST, self.port, f"/webhooks/whatsapp/{ASSET}", body, headers)

    def noop(self, index: int) -> bytes:
        return self.noops[index % len(self.noops)]

    def ack(self, index: int) -> bytes:
        ready = self.prebuilt
        return ready[index] if index < len(ready) else self.build_ack(self.first + index)

    def acks_from(self, first: int) -> Callable[[int], bytes]:
        """Webhooks numbered from `first`, the first PREBUILT of them built now."""
        self.first = first
        self.prebuilt = [self.build_ack(first + i) for i in range(PREBUILT)]
        return self.ack

    def warm(self) -> None:
        """Imports, connections, the Lua script cache and the relay (the ECE session, the bench
        customers' chats) before anything is measured."""
        closed_loop(HOST, self.port, self.noop, 1.0, 4)
        closed_loop(HOST, self.port, self.acks_from(10_000_000), 1.0, 4)

    def compare(self, stack: Stack, tries: int, seconds: float, concurrency: int) -> tuple[list[Result], list[Result]]:
        """(no-op runs, webhook runs), alternating, with the workers paused for both: each run
        measures what the web tier spends per request. Each run opens fresh connections: gunicorn's
        processes accept keep-alive connections greedily, so a run whose connections all land on
        one process measures one core (seen as 2,000 against 5,000 no-op requests/s)."""
        noop_tries, ack_tries = [], []
        with paused_workers(stack.process.pid):
            for attempt in range(tries):
                noop_tries.append(closed_loop(HOST, self.port, self.noop, seconds, concurrency))
                acks = self.acks_from(20_000_000 + attempt * 1_000_000)
                ack_tries.append(closed_loop(HOST, self.port, acks, seconds, concurrency))
        return noop_tries, ack_tries


def run(seconds: float = 10.0, rate: float = 300.0, concurrency: int = 16) -> str:
    # The stack `make run` starts, simulators included, so the workers relay every accepted
    # message to the ECE simulator as they would to ECE.
    with running_stack(sandbox=True) as stack:
        store = redis.Redis(unix_socket_path=str(stack.redis_socket))
        load = Load(stack.port)
        load.warm()
        wait_drained(store, DRAIN_DEADLINE)
        noop_tries, ack_tries = load.compare(stack, TRIES, seconds, concurrency)

        # The backlog those runs left, relayed by the workers with nothing else running.
        backlog = queued_items(store)
        drain_seconds = wait_drained(store, DRAIN_DEADLINE)

        # Fixed rate with everything live: each accepted message is relayed while others arrive.
        noop_rate = open_loop(HOST, stack.port, load.noop, rate, seconds)
        ack_rate = open_loop(HOST, stack.port, load.acks_from(40_000_000), rate, seconds)
        settle_seconds = wait_drained(store, DRAIN_DEADLINE)
        dead = store.llen(keys.dead_letters())

    # The runs above log at WARNING; a deployment's default, INFO, adds one JSON line per accepted
    # message. The same comparison on a stack at INFO shows what that line costs.
    with running_stack(sandbox=True, log_level="INFO") as stack:
        load = Load(stack.port)
        load.warm()
        info_noop, info_ack = load.compare(stack, INFO_TRIES, seconds, concurrency)

    pipeline = Pipeline(backlog, drain_seconds, settle_seconds, dead)
    return report(
        Comparison(noop_tries, ack_tries),
        Comparison(info_noop, info_ack),
        noop_rate,
        ack_rate,
        pipeline,
        rate,
        concurrency,
    )


@dataclass
class Comparison:
    """Alternating closed-loop runs of both endpoints; the best of each is compared."""

    noop_tries: list[Result]
    ack_tries: list[Result]

    @property
    def noop(self) -> Result:
        return max(self.noop_tries, key=lambda r: r.throughput)

    @property
    def ack(self) -> Result:
        return max(self.ack_tries, key=lambda r: r.throughput)

    @property
    def ratio(self) -> float:
        return self.ack.throughput / self.noop.throughput if self.noop.throughput else 0.0

    def spread(self, tries: list[Result]) -> str:
        return "[" + ", ".join(f"{r.throughput:,.0f}" for r in tries) + "]"


@dataclass
class Pipeline:
    """What the workers did with the accepted messages: the backlog's size and drain time, how
    long after the fixed-rate run the last message left its inbox, and the dead letters."""

    backlog: int
    drain_seconds: float | None
    settle_seconds: float | None
    dead_letters: int


def queued_items(store: redis.Redis) -> int:
    threads = [m.decode() for m in store.smembers(keys.active_inboxes())]
    pipe = store.pipeline(transaction=False)
    for thread in threads:
        pipe.llen(keys.inbox(thread))
    return sum(pipe.execute())


def wait_drained(store: redis.Redis, deadline_seconds: float) -> float | None:
    """Seconds until no conversation has items waiting (None: not within the deadline)."""
    started = time.monotonic()
    while store.scard(keys.active_inboxes()):
        if time.monotonic() - started > deadline_seconds:
            return None
        time.sleep(0.1)
    return time.monotonic() - started


@contextmanager
def paused_workers(supervisor_pid: int) -> Iterator[None]:
    """SIGSTOP the RQ worker processes of the stack for the block, SIGCONT after."""
    workers = [
        p
        for p in psutil.Process(supervisor_pid).children(recursive=True)
        if "connector worker" in " ".join(p.cmdline())
    ]
    for process in workers:
        process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for process in workers:
            process.send_signal(signal.SIGCONT)


def _row(name: str, result: Result) -> str:
    statuses = ", ".join(f"{k} x{v}" for k, v in sorted(result.statuses.items()))
    return (
        f"| {name} | {result.throughput:,.0f} | {result.percentile(50):.2f} | {result.percentile(99):.2f} "
        f"| {statuses}{f', errors {result.errors}' if result.errors else ''} |"
    )


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else f"not within {DRAIN_DEADLINE:.0f} s"


def report(
    warning: Comparison,
    info: Comparison,
    noop_rate: Result,
    ack_rate: Result,
    pipeline: Pipeline,
    rate: float,
    concurrency: int,
) -> str:
    ratio = warning.ratio
    p99_ok = ack_rate.percentile(99) <= 15.0 and ack_rate.errors == 0
    drain_rate = (
        f"{pipeline.backlog / pipeline.drain_seconds:,.0f} messages/s" if pipeline.drain_seconds else "rate unknown"
    )
    lines = [
        "## Webhook acknowledgement",
        "",
        "The stack `make run` starts (gunicorn "
        f"{default_web_workers()}x4, 2 workers, the sandbox simulators), all on the same 2 cores.",
        "",
        f"Maximum throughput of the web tier, closed loop, {concurrency} keep-alive connections, best of "
        f"{TRIES} alternating runs (no-op {warning.spread(warning.noop_tries)}, webhook "
        f"{warning.spread(warning.ack_tries)} requests/s), LOG_LEVEL=WARNING. The workers are paused during "
        "these runs, for both endpoints, so both measure only what gunicorn spends:",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | answers |",
        "| --- | ---: | ---: | ---: | --- |",
        _row("no-op Flask endpoint", warning.noop),
        _row("signed WhatsApp webhook", warning.ack),
        "",
        f"- ack throughput / no-op throughput: **{ratio:.0%}** (goal ≥ 50 %): {'met' if ratio >= 0.5 else 'NOT met'}",
        f"- at LOG_LEVEL=INFO, the default, which writes one JSON line per accepted message (to a file here), "
        f"best of {INFO_TRIES} on a fresh stack: no-op {info.noop.throughput:,.0f}, webhook "
        f"{info.ack.throughput:,.0f} requests/s: **{info.ratio:.0%}**",
        f"- then the workers relayed the {pipeline.backlog:,} messages the WARNING runs left to the ECE simulator "
        f"in {_seconds(pipeline.drain_seconds)} ({drain_rate} for the whole pipeline on these 2 cores)",
        "",
        f"Fixed rate, open loop, {rate:.0f} requests/s (latency from the scheduled send time), with the "
        "workers relaying each accepted message to the ECE simulator meanwhile:",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | answers |",
        "| --- | ---: | ---: | ---: | --- |",
        _row("no-op Flask endpoint", noop_rate),
        _row("signed WhatsApp webhook", ack_rate),
        "",
        f"- ack p99 at {rate:.0f} req/s: **{ack_rate.percentile(99):.2f} ms** (goal ≤ 15 ms): "
        + ("met" if p99_ok else "NOT met"),
        f"- every inbox was empty {_seconds(pipeline.settle_seconds)} after the last answer; "
        f"dead letters: {pipeline.dead_letters}",
    ]
    return "\n".join(lines)
