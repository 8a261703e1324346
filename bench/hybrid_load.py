"""Hybrid Chat end to end: offers and agent messages through the real stack and the simulators.

One run of the real stack (`python -m connector run`: gunicorn `wsgi:app`, 2 RQ workers, the listener,
on a fresh embedded Redis) with the simulators (`python -m connector sandbox`), on the sandbox
configuration plus AGENTS local agents (skills `english`, MAX_CHATS chats each). Each
agent logs in over the agent API (`POST /agent/login`, then its Bearer token), reads its Server-Sent
Events (`GET /agent/api/stream`; when a response ends it reconnects at once with `Last-Event-ID`)
and goes READY. Then, on that one stack:

1. Offers: signed in-app webhooks (`connector/sandbox/signing.py`), each from a new customer, at RATE
   new chats/s (open loop) into the Support queue. Each agent's client accepts and closes every chat
   it is offered, so its slots stay free. Measured: the webhook's send → the `chat_offered` event's
   arrival in the agent's client. Goal: p95 ≤ 150 ms, no offer lost or duplicated.
2. Agent messages: HELD_CHATS more chats, which the agents accept and keep; once their system
   messages reached the customer, the agents send MESSAGES texts into them (`POST
   /agent/api/chats/<id>/messages`) at MESSAGE_RATE/s (open loop, round robin over the chats).
   Measured: the agent's send → the in-app provider simulator's record of the delivery (its
   `/providers/sent`, stamped with the same clock). Goal: p95 ≤ 50 ms, none lost or duplicated.

The client is asyncio over raw HTTP/1.1 (bench/loadgen.py's connections), as cheap as it can be: it
shares the 2 cores with the stack.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from bench.cpu import CpuUse, measuring
from bench.figures import percentile
from bench.loadgen import Connection, build_request
from bench.stack import SANDBOX_CONFIG, running_stack
from connector.sandbox.signing import inapp_headers
from connector.settings import PROJECT_ROOT
from connector.supervisor import default_web_workers

HOST = "127.0.0.1"
SANDBOX = "http://127.0.0.1:8100"
ASSET = "sandbox-app"
INAPP_SECRET = "sandbox-inapp-secret-0123456789"  # entrypoints/sandbox/sandbox.yaml, asset sandbox-app
WORKERS = 2
"""RQ worker processes, as `make run` starts them."""
AGENTS = 20
MAX_CHATS = 4
PASSWORD_VARIABLE = "HYBRID_BENCH_AGENT_PASSWORD"

WARMUP_CHATS = 50
WARMUP_RATE = 25.0
RATE = 100.0
SECONDS = 10.0
OFFER_GOAL_MS = 150.0

HELD_CHATS = 50
HELD_RATE = 25.0
MESSAGE_RATE = 100.0
MESSAGES = 1000
MESSAGE_GOAL_MS = 50.0
TEXT_PREFIX = "hybrid-bench "
OFFER_PREFIX = "bench-offer-"
"""The customers of the measured offer phase (the warm-up's and the held chats' are others)."""

WAIT_SECONDS = 90.0
"""Longest wait for the last offer, accept or delivery of a phase before it is reported as lost."""


def agent_config(password_variable: str = PASSWORD_VARIABLE) -> str:
    """The bench's agents, in a provisioning file beside the sandbox's (the password from the
    environment, as a provisioned local agent's is written)."""
    lines = ["hybrid_agents:"]
    for n in range(1, AGENTS + 1):
        lines.append(
            f'  - {{login: bench-{n:02d}, name: Bench {n:02d}, password: "${{{password_variable}}}", '
            f"skills: [english], max_chats: {MAX_CHATS}}}"
        )
    return "\n".join(lines) + "\n"


def inapp_webhook(customer: str, text: str) -> tuple[bytes, dict[str, str]]:
    """A customer's in-app text as the app's backend posts it, signed with the asset's secret."""
    body = json.dumps(
        {
            "message_id": str(uuid.uuid4()),
            "customer": {"id": customer, "name": f"Customer {customer}"},
            "type": "text",
            "text": text,
            "sent_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
    ).encode()
    return body, {"Content-Type": "application/json", **inapp_headers(INAPP_SECRET, body)}


@dataclass
class Agent:
    login: str
    agent_id: str
    token: str
    idle: list[Connection] = field(default_factory=list)
    stream_ready: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Offers:
    """Phase 1: one webhook per customer, and what each customer's chat became."""

    sent_at: dict[str, float] = field(default_factory=dict)
    webhook_status: dict[str, int] = field(default_factory=dict)
    arrivals: dict[str, list[tuple[float, str, str]]] = field(default_factory=dict)
    """customer → [(arrival, chat id, agent)] of every `chat_offered` for their chats."""
    stamps: dict[str, tuple[float, float]] = field(default_factory=dict)
    """customer → (their chat queued, its first offer published), as the connector stamped them."""

    def acked(self) -> list[str]:
        return [c for c, status in self.webhook_status.items() if status == 200]

    def only(self, prefix: str) -> Offers:
        """The customers of one phase (their ids start with `prefix`), with everything recorded for
        them over the whole run: an offer repeated later, during another phase, still counts."""
        return Offers(
            {c: v for c, v in self.sent_at.items() if c.startswith(prefix)},
            {c: v for c, v in self.webhook_status.items() if c.startswith(prefix)},
            {c: v for c, v in self.arrivals.items() if c.startswith(prefix)},
            {c: v for c, v in self.stamps.items() if c.startswith(prefix)},
        )

    def latencies_ms(self) -> list[float]:
        return [(self.arrivals[c][0][0] - self.sent_at[c]) * 1000 for c in self.acked() if c in self.arrivals]

    def lost(self) -> int:
        return sum(1 for c in self.acked() if c not in self.arrivals)

    def duplicated(self) -> int:
        return sum(len(items) - 1 for items in self.arrivals.values())

    def span(self) -> float:
        """Seconds from the first webhook's send to the last offer's arrival."""
        if not self.sent_at or not self.arrivals:
            return 0.0
        return max(items[0][0] for items in self.arrivals.values()) - min(self.sent_at.values())

    def stages_ms(self) -> dict[str, list[float]]:
        """Where the time went: webhook sent → chat queued (intake, the inbound drain, the gate) →
        offer published (waiting for the router and a free agent) → arrival in the client (the stream)."""
        stages: dict[str, list[float]] = {"webhook → chat queued": [], "queued → offer made": [], "offer → client": []}
        for customer in self.acked():
            if customer not in self.stamps or customer not in self.arrivals:
                continue
            queued, published = self.stamps[customer]
            stages["webhook → chat queued"].append((queued - self.sent_at[customer]) * 1000)
            stages["queued → offer made"].append((published - queued) * 1000)
            stages["offer → client"].append((self.arrivals[customer][0][0] - published) * 1000)
        return stages


@dataclass
class Messages:
    """Phase 2: the agents' texts, by (chat number, message number)."""

    sent_at: dict[tuple[int, int], float] = field(default_factory=dict)
    acked_at: dict[tuple[int, int], float] = field(default_factory=dict)
    status: dict[tuple[int, int], int] = field(default_factory=dict)
    arrivals: dict[tuple[int, int], list[float]] = field(default_factory=dict)
    repeats: int = 0
    """Sends the simulator recognised by their message id and counted instead of recording again."""

    def acked(self) -> list[tuple[int, int]]:
        return [key for key, status in self.status.items() if status == 200]

    def latencies_ms(self) -> list[float]:
        return [(min(self.arrivals[k]) - self.sent_at[k]) * 1000 for k in self.acked() if k in self.arrivals]

    def lost(self) -> int:
        return sum(1 for k in self.acked() if k not in self.arrivals)

    def duplicated(self) -> int:
        return self.repeats + sum(len(v) - 1 for v in self.arrivals.values())

    def out_of_order(self) -> int:
        """Message n + 1 of a chat recorded before message n although n was acknowledged before
        n + 1 was sent."""
        count = 0
        for (chat, n), later_sent in self.sent_at.items():
            earlier = (chat, n - 1)
            if n == 0 or earlier not in self.arrivals or (chat, n) not in self.arrivals:
                continue
            if self.acked_at.get(earlier, float("inf")) <= later_sent and min(self.arrivals[(chat, n)]) < min(
                self.arrivals[earlier]
            ):
                count += 1
        return count


@dataclass
class Run:
    port: int
    agents: list[Agent] = field(default_factory=list)
    mode: str = "close"
    """What the agents do with an offer: "close" (accept, then close) or "hold" (accept, keep)."""

    offers: Offers = field(default_factory=Offers)
    withdrawn: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    held: dict[str, Agent] = field(default_factory=dict)
    actions: set[asyncio.Task[None]] = field(default_factory=set)
    webhook_idle: list[Connection] = field(default_factory=list)
    stopping: bool = False

    # -- HTTP -----------------------------------------------------------------------------------

    async def post(self, idle: list[Connection], path: str, body: bytes, headers: dict[str, str]) -> int:
        connection = idle.pop() if idle else Connection(HOST, self.port)
        try:
            status = await connection.request(build_request(HOST, self.port, path, body, headers))
        except (OSError, asyncio.IncompleteReadError):
            return 0
        idle.append(connection)
        return status

    async def agent_post(self, agent: Agent, path: str, payload: dict[str, Any] | None = None) -> int:
        headers = {"Authorization": f"Bearer {agent.token}"}
        body = b""
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        return await self.post(agent.idle, path, body, headers)

    async def webhook(self, customer: str, text: str = "Hello") -> None:
        body, headers = inapp_webhook(customer, text)
        self.offers.sent_at[customer] = time.time()
        self.offers.webhook_status[customer] = await self.post(
            self.webhook_idle, f"/webhooks/inapp/{ASSET}", body, headers
        )

    # -- each agent's client --------------------------------------------------------------------

    async def read_stream(self, agent: Agent) -> None:
        """The agent's SSE stream, for as long as the run lasts (HTTP/1.0: the body is the raw
        stream until the server ends it, no chunked framing to undo)."""
        last_id: str | None = None
        while not self.stopping:
            try:
                reader, writer = await asyncio.open_connection(HOST, self.port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            head = [
                "GET /agent/api/stream HTTP/1.0",
                f"Host: {HOST}:{self.port}",
                f"Authorization: Bearer {agent.token}",
                "Accept: text/event-stream",
            ]
            if last_id:
                head.append(f"Last-Event-ID: {last_id}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
            try:
                status = await reader.readuntil(b"\r\n\r\n")
                if b" 200 " not in status.split(b"\r\n", 1)[0]:
                    raise RuntimeError(f"{agent.login}: the stream answered {status[:60]!r}")
                data: list[bytes] = []
                retry_ms = 0
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    line = line.rstrip(b"\r\n")
                    if not line:
                        if data:
                            self.on_event(agent, json.loads(b"\n".join(data)))
                            data = []
                        elif last_id:
                            agent.stream_ready.set()  # the id-only block: nothing after it is missed
                        continue
                    name, _, value = line.partition(b":")
                    value = value[1:] if value.startswith(b" ") else value
                    if name == b"id":
                        last_id = value.decode()
                    elif name == b"data":
                        data.append(value)
                    elif name == b"retry" and value.isdigit():
                        retry_ms = int(value)
            except (OSError, asyncio.IncompleteReadError):
                retry_ms = 100
            finally:
                writer.close()
            if retry_ms > 1000:
                # The process had no waiting slot free: it sent what there was and ended at once.
                self.refused["stream without a slot"] += 1
                await asyncio.sleep(0.2)

    def on_event(self, agent: Agent, event: dict[str, Any]) -> None:
        if event.get("type") == "offer_withdrawn":
            self.withdrawn += 1
            return
        if event.get("type") != "chat_offered":
            return
        arrived = time.time()
        chat_id = str(event["chat_id"])
        customer = str(event["chat"]["customer"]["id"])
        self.offers.arrivals.setdefault(customer, []).append((arrived, chat_id, agent.login))
        self.offers.stamps.setdefault(customer, (float(event["chat"]["started_at"]), float(event["at"])))
        task = asyncio.create_task(self.take(agent, chat_id))
        self.actions.add(task)
        task.add_done_callback(self.actions.discard)

    async def take(self, agent: Agent, chat_id: str) -> None:
        if await self.agent_post(agent, f"/agent/api/chats/{chat_id}/accept") != 200:
            self.refused["accept"] += 1
            return
        if self.mode == "hold":
            self.held[chat_id] = agent
        elif await self.agent_post(agent, f"/agent/api/chats/{chat_id}/close", {}) != 200:
            self.refused["close"] += 1

    async def settle_actions(self) -> None:
        while self.actions:
            await asyncio.gather(*list(self.actions))


async def open_loop(rate: float, count: int, send: Callable[[int], Coroutine[Any, Any, None]]) -> None:
    """`count` sends at `rate` per second on schedule, whatever the answers take (no coordinated
    omission: a slow answer never delays the next send)."""
    begin = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []
    for index in range(count):
        delay = begin + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(index)))
    await asyncio.gather(*tasks)


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def sandbox_sent() -> list[dict[str, Any]]:
    answer = requests.get(f"{SANDBOX}/providers/sent", params={"channel": "inapp", "asset": ASSET}, timeout=30)
    answer.raise_for_status()
    sent: list[dict[str, Any]] = answer.json()["sent"]
    return sent


async def quiet_outbound(quiet_seconds: float = 2.0) -> None:
    """Until the in-app simulator has recorded nothing new for `quiet_seconds` (the system messages of
    the chats opened so far have all gone out)."""
    deadline = time.monotonic() + WAIT_SECONDS
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = len(await asyncio.to_thread(sandbox_sent))
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_seconds:
            return
        await asyncio.sleep(0.5)


# -- the run ------------------------------------------------------------------------------------------


def login(port: int, login_name: str, password: str) -> Agent:
    answer = requests.post(
        f"http://{HOST}:{port}/agent/login", json={"login": login_name, "password": password}, timeout=10
    )
    answer.raise_for_status()
    body = answer.json()
    return Agent(login_name, body["agent_id"], body["token"])


def set_ready(port: int, agent: Agent) -> None:
    answer = requests.put(
        f"http://{HOST}:{port}/agent/api/me/state",
        json={"state": "READY"},
        headers={"Authorization": f"Bearer {agent.token}"},
        timeout=10,
    )
    answer.raise_for_status()
    if answer.json()["chat_state"] != "READY":
        raise RuntimeError(f"{agent.login} is {answer.json()['chat_state']}, not READY")


async def drive(
    port: int, password: str, pids: tuple[int, int], cpu_use: list[CpuUse]
) -> tuple[Run, Messages, dict[str, float]]:
    """The two phases; `cpu_use` gets the offer phase's CPU by role of the stack (`pids[0]`) and of
    the simulators (`pids[1]`)."""
    run = Run(port)
    run.agents = [await asyncio.to_thread(login, port, f"bench-{n:02d}", password) for n in range(1, AGENTS + 1)]
    streams = [asyncio.create_task(run.read_stream(agent)) for agent in run.agents]
    timings: dict[str, float] = {}
    try:
        for agent in run.agents:
            await asyncio.wait_for(agent.stream_ready.wait(), 30)
            await asyncio.to_thread(set_ready, port, agent)

        # Warm-up (not measured): the web and worker processes' first chats.
        await open_loop(WARMUP_RATE, WARMUP_CHATS, lambda i: run.webhook(f"bench-warmup-{i:05d}"))
        await wait_until(lambda: all(c in run.offers.arrivals for c in run.offers.acked()))
        await run.settle_actions()
        run.refused.clear()
        run.withdrawn = 0
        await quiet_outbound()

        # 1. Offers at RATE new chats/s.
        started, cpu = time.perf_counter(), time.process_time()
        with measuring(pids[0]) as stack_cpu, measuring(pids[1]) as sandbox_cpu:
            await open_loop(RATE, int(RATE * SECONDS), lambda i: run.webhook(f"{OFFER_PREFIX}{i:05d}"))
            timings["offers_sent_seconds"] = time.perf_counter() - started
            await wait_until(lambda: all(c in run.offers.arrivals for c in run.offers.acked()))
            await run.settle_actions()
        cpu_use += [stack_cpu, sandbox_cpu]
        timings["offers_seconds"] = time.perf_counter() - started
        timings["offers_client_cpu"] = time.process_time() - cpu

        # 2. Agent messages into held chats.
        run.mode = "hold"
        refused_before = run.refused["accept"]
        await open_loop(HELD_RATE, HELD_CHATS, lambda i: run.webhook(f"bench-held-{i:05d}"))
        await wait_until(lambda: len(run.held) + run.refused["accept"] - refused_before >= HELD_CHATS)
        await run.settle_actions()
        await quiet_outbound()
        chats = list(run.held.items())
        if not chats:
            raise RuntimeError("no chat was held: the agents accepted none")
        messages = Messages()

        async def send(index: int) -> None:
            number, n = index % len(chats), index // len(chats)
            chat_id, agent = chats[number]
            messages.sent_at[(number, n)] = time.time()
            status = await run.agent_post(
                agent, f"/agent/api/chats/{chat_id}/messages", {"text": f"{TEXT_PREFIX}{number}:{n}"}
            )
            messages.acked_at[(number, n)] = time.time()
            messages.status[(number, n)] = status

        started = time.perf_counter()
        await open_loop(MESSAGE_RATE, MESSAGES, send)
        timings["messages_sent_seconds"] = time.perf_counter() - started

        def collect() -> bool:
            messages.arrivals.clear()
            messages.repeats = 0
            for record in sandbox_sent():
                text = record.get("text") or ""
                if record.get("kind") != "text" or not text.startswith(TEXT_PREFIX):
                    continue
                number, _, n = text[len(TEXT_PREFIX) :].partition(":")
                messages.arrivals.setdefault((int(number), int(n)), []).append(float(record["at"]))
                messages.repeats += int(record.get("duplicate") or 0)
            return all(k in messages.arrivals for k in messages.acked())

        deadline = time.monotonic() + WAIT_SECONDS
        while not await asyncio.to_thread(collect) and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
        return run, messages, timings
    finally:
        run.stopping = True
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)


@contextmanager
def simulators(env: dict[str, str]) -> Iterator[int]:
    """`python -m connector sandbox` on the bench's configuration. (`run --sandbox` always reads
    entrypoints/sandbox/, so the stack runs without it and the simulators are started here, as the
    supervisor would start them.)"""
    full = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | env
    process = subprocess.Popen(
        [sys.executable, "-m", "connector", "sandbox"], cwd=PROJECT_ROOT, env=full, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{SANDBOX}/providers/sent", params={"channel": "inapp"}, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the sandbox simulators did not start (is port 8100 taken?)")
            time.sleep(0.3)
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def run() -> str:
    password = secrets.token_urlsafe(18)
    config_dir = Path(tempfile.mkdtemp(prefix="cc-bench-hybrid-config-", dir="/tmp"))
    try:
        for source in SANDBOX_CONFIG.glob("*.y*ml"):
            shutil.copy(source, config_dir / source.name)
        (config_dir / "hybrid-bench-agents.yaml").write_text(agent_config())
        load_before = os.getloadavg()
        env = {
            "CONNECTOR_CONFIG_DIR": str(config_dir),
            "CONNECTOR_SANDBOX": "1",  # as `run --sandbox` sets it: the simulators are on loopback
            "PUBLIC_BASE_URL": "https://connector.example.com",
            "LOG_LEVEL": "WARNING",
            PASSWORD_VARIABLE: password,
        }
        cpu_use: list[CpuUse] = []
        with simulators(env) as sandbox_pid, running_stack(app="wsgi:app", workers=WORKERS, env=env) as stack:
            pids = (stack.process.pid, sandbox_pid)
            result, messages, timings = asyncio.run(drive(stack.port, password, pids, cpu_use))
        return report(result, messages, timings, load_before, cpu_use)
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)


def report(
    run: Run,
    messages: Messages,
    timings: dict[str, float],
    load_before: tuple[float, float, float],
    cpu_use: list[CpuUse],
) -> str:
    offers = run.offers.only(OFFER_PREFIX)
    offer_ms = offers.latencies_ms()
    message_ms = messages.latencies_ms()
    webhooks_refused = sum(1 for s in offers.webhook_status.values() if s != 200)
    messages_refused = sum(1 for s in messages.status.values() if s != 200)
    offer_met = percentile(offer_ms, 0.95) <= OFFER_GOAL_MS and not offers.lost() and not offers.duplicated()
    message_met = percentile(message_ms, 0.95) <= MESSAGE_GOAL_MS and not messages.lost() and not messages.duplicated()
    offered_per_agent = Counter(agent for items in offers.arrivals.values() for _at, _chat, agent in items)
    threads = os.environ.get("CONNECTOR_WEB_THREADS", "48")
    span = offers.span()

    def row(name: str, load: str, values: list[float], lost: int, duplicated: int, goal: str, met: bool) -> str:
        return (
            f"| {name} | {load} | {len(values)} | {percentile(values, 0.5):.1f} | {percentile(values, 0.95):.1f} "
            f"| {percentile(values, 0.99):.1f} | {max(values, default=float('nan')):.1f} | {lost} | {duplicated} "
            f"| {goal}: {'met' if met else 'NOT met'} |"
        )

    return "\n".join(
        [
            "## Hybrid Chat end to end: offers and agent messages",
            "",
            f"One run of the real stack (gunicorn `wsgi:app`, {default_web_workers()} processes x {threads} threads, "
            f"{WORKERS} RQ workers, the listener) and the sandbox simulators, on the same cores as this client.",
            f"{AGENTS} local agents (skill english, {MAX_CHATS} chats each) logged in over the agent API, went READY",
            "and read their Server-Sent Events.",
            "Offers: signed in-app webhooks, each from a new customer, into the Support queue at "
            f"{RATE:.0f} new chats/s",
            f"for {SECONDS:.0f} s (open loop, after {WARMUP_CHATS} warm-up chats not measured); each agent's client",
            "accepts and closes every chat it is offered; measured from the webhook's send to the `chat_offered`",
            "event's arrival in the client.",
            f"Messages: the agents hold {HELD_CHATS} chats and send {MESSAGES} texts into them at "
            f"{MESSAGE_RATE:.0f}/s (open loop, round",
            "robin); measured from the agent's `POST /agent/api/chats/<id>/messages` to the in-app simulator's record",
            "of the delivery.",
            "",
            "| path | load | count | p50 ms | p95 ms | p99 ms | max ms | lost | duplicated | goal |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            row(
                "webhook → offer on the agent's stream",
                f"{RATE:.0f} new chats/s",
                offer_ms,
                offers.lost(),
                offers.duplicated(),
                f"p95 ≤ {OFFER_GOAL_MS:.0f} ms",
                offer_met,
            ),
            row(
                "agent message → in-app simulator",
                f"{MESSAGE_RATE:.0f} messages/s into {len({k[0] for k in messages.sent_at})} chats",
                message_ms,
                messages.lost(),
                messages.duplicated(),
                f"p95 ≤ {MESSAGE_GOAL_MS:.0f} ms",
                message_met,
            ),
            "",
            f"Counts: {len(offers.webhook_status)} webhooks ({webhooks_refused} not answered 200); "
            f"{len(offers.arrivals)} chats offered, to {len(offered_per_agent)} agents "
            f"(at most {max(offered_per_agent.values(), default=0)} to one); {run.withdrawn} offers withdrawn; "
            f"{run.refused['accept']} accepts and {run.refused['close']} closes refused; "
            f"{run.refused['stream without a slot']} streams ended for want of a slot; "
            f"{len(messages.status)} messages sent ({messages_refused} not answered 200), "
            f"{messages.out_of_order()} out of order.",
            f"Sending took {timings.get('offers_sent_seconds', 0):.1f} s and "
            f"{timings.get('messages_sent_seconds', 0):.1f} s (scheduled {SECONDS:.0f} s and "
            f"{MESSAGES / MESSAGE_RATE:.0f} s). The last offer arrived {span:.1f} s after the first webhook "
            f"({len(offer_ms) / span if span else 0:.0f} offers/s); this client used "
            f"{timings.get('offers_client_cpu', 0):.1f} s of CPU in the {timings.get('offers_seconds', 0):.1f} s of "
            "the offer phase.",
            *_cpu_lines(cpu_use, len(offers.webhook_status), timings.get("offers_seconds", 0.0)),
            "Load average before the run: "
            + " / ".join(f"{x:.2f}" for x in load_before)
            + f" on {os.cpu_count()} cores (other processes share the machine).",
            "",
            "Where an offer's time went (the connector's own stamps: the chat's `started_at`, the event's `at`):",
            "",
            "| stage | p50 ms | p95 ms | p99 ms |",
            "| --- | ---: | ---: | ---: |",
            *(
                f"| {stage} | {percentile(values, 0.5):.1f} | {percentile(values, 0.95):.1f} "
                f"| {percentile(values, 0.99):.1f} |"
                for stage, values in offers.stages_ms().items()
            ),
        ]
    )


def _cpu_lines(cpu_use: list[CpuUse], chats: int, seconds: float) -> list[str]:
    """CPU per new chat by role in the offer phase, and how much of the 2 cores' time it took."""
    if not cpu_use or not chats:
        return []
    stack, sandbox = cpu_use
    total = sum(stack.seconds.values()) + sum(sandbox.seconds.values())
    share = total / (seconds * (os.cpu_count() or 1)) if seconds else 0.0
    simulators = sum(sandbox.seconds.values()) * 1000 / chats
    return [
        "CPU per new chat in the offer phase (webhook, offer, accept, close and the system messages to the "
        f"customer): {stack.summary(chats)}, simulators {simulators:.1f} ms; {total:.1f} CPU seconds in all, "
        f"{share:.0%} of the machine over the phase.",
    ]


if __name__ == "__main__":
    print(run())
