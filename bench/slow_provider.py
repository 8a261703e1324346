"""Slow provider benchmark (issue 15): ECE callbacks → the customer's provider while it answers slowly.

A provider's send API under load answers in hundreds of milliseconds to seconds. A conversation's
outbox sends one item at a time (its order is kept), so the connector keeps up only by holding many
conversations' sends in flight at once: at 300 events/s and 1 s a send, about 300.

Method: `python -m connector run` with its defaults (2 workers) and the sandbox. CONVERSATIONS
WhatsApp customers each write a first message (signed webhooks, open loop, ECE answering at once);
once ECE holds every conversation and each customer's welcome has been sent, the WhatsApp simulator
is set to answer every send after DELAY seconds (recording it only then, as a slow provider counts a
message sent when it answers) and its peak of sends in flight is reset. Then ECE callbacks, one
agent text event each with a unique id and a unique token in its text, are posted open loop at RATE
per second for SECONDS, round robin over the conversations. The conversations set a ceiling of their
own: one send at a time each, DELAY each, so at most CONVERSATIONS / DELAY sends a second; 600
conversations make it 600/s, twice the offered rate (each conversation gets an event every 2 s).
The simulator stamps each send when it records it, with the same clock as this process (one
machine); latency counts from each callback's scheduled send time.

Goal (issue 15): delivered rate ≥ 95 % of offered.
"""

from __future__ import annotations

import os
import time
from typing import Any

import requests

from bench.deliveries import Deliveries, offer_and_collect, sampling_in_flight
from bench.figures import ece_conversation_ids, met, percentile, wait_until
from bench.loadgen import open_loop
from bench.payloads import ece_agent_text, ece_callback_request, signed_whatsapp_request, whatsapp_text
from bench.stack import running_stack
from connector.sandbox.main import CHANNEL_SANDBOX_PORT
from connector.settings import Settings
from connector.supervisor import default_web_workers

QUICK = os.environ.get("SLOW_PROVIDER_QUICK", "") not in ("", "0")
"""SLOW_PROVIDER_QUICK=1: a short validation run (3 s of load); its figures are not the issue's
measurement."""
RATE = 300.0
"""ECE callbacks (one event each) per second, offered open loop."""
SECONDS = 3.0 if QUICK else 10.0
CONVERSATIONS = 600
"""Above RATE x DELAY, so the conversations' own ceiling (one send at a time each) is not the limit."""
DELAY = 1.0
"""How long the WhatsApp simulator takes to answer each send, in seconds."""
OPEN_RATE = 300.0
"""Customers' first messages per second, to open the conversations before the measurement."""
SETTLE_SECONDS = 60.0
"""Deliveries count until this long after the last callback was answered."""
POLL_SECONDS = 3.0
"""How often the simulator's record of sends is read while waiting (every send, request bodies
included, serialised under its lock: read seldom; arrival stamps do not depend on it)."""
SAMPLE_SECONDS = 0.25
"""How often the simulator's sends in flight are read during the load (a tiny answer)."""
WORKERS = 2
"""`python -m connector run`'s default worker processes."""

HOST = "127.0.0.1"
SANDBOX = f"http://{HOST}:{CHANNEL_SANDBOX_PORT}"
PROVIDERS = f"{SANDBOX}/providers"
CUSTOMERS = "1888"
"""What this benchmark's customers' numbers start with (then the conversation, 6 digits)."""
TOKEN = "slowprovider"


def customer(conversation: int) -> str:
    return f"{CUSTOMERS}{conversation:06d}"


def run() -> str:
    return report(measure())


def measure() -> Deliveries:
    """On a fresh stack: open the conversations, slow WhatsApp down, post the callbacks, then
    collect what the WhatsApp simulator recorded."""
    total = int(RATE * SECONDS)
    row = Deliveries(total=total, conversations=CONVERSATIONS, settle_seconds=SETTLE_SECONDS)
    with running_stack(app="wsgi:app", workers=WORKERS, sandbox=True) as stack:
        wait_until(lambda: requests.get(f"{SANDBOX}/ece/control/state", timeout=5).ok, 30, "the sandbox")
        conversation_ids = open_conversations(stack.port)
        control(channel="whatsapp", delay_seconds=DELAY, reset_peak=True)
        planned = time.time()
        prepared = [
            ece_callback_request(HOST, stack.port, [callback_event(i, conversation_ids, planned)]) for i in range(total)
        ]
        with sampling_in_flight(row, read_in_flight, SAMPLE_SECONDS):
            offer_and_collect(row, HOST, stack.port, prepared, RATE, lambda: collect(row), POLL_SECONDS)
        row.peak_in_flight = int(control()["peak_in_flight"])
    return row


def text(index: int) -> str:
    """The agent message's unique token: the callback's index."""
    return f"{TOKEN} {index}"


def callback_event(index: int, conversation_ids: list[str], planned: float) -> dict[str, object]:
    """The index-th agent message: a unique event id and token, its conversation in turn."""
    conversation = conversation_ids[index % CONVERSATIONS]
    return ece_agent_text(str(9_000_000_000 + index), conversation, text(index), planned + index / RATE)


def open_conversations(port: int) -> list[str]:
    """Every customer's first message; returns the ECE conversation ids in customer order once ECE
    holds them all and the provider has sent each customer's welcome (at no delay: those sends are
    over before the provider slows down, so the measurement neither waits for nor counts them)."""
    prepared = [
        signed_whatsapp_request(
            HOST, port, whatsapp_text(customer(n), f"Slow provider {n}", f"wamid.slowprovider.{n}", f"hello {n}")
        )
        for n in range(CONVERSATIONS)
    ]
    open_loop(HOST, port, prepared.__getitem__, OPEN_RATE, CONVERSATIONS / OPEN_RATE)
    found: dict[int, str] = {}

    def opened() -> bool:
        found.update(ece_conversation_ids(f"{SANDBOX}/ece", CUSTOMERS))
        return len(found) >= CONVERSATIONS

    wait_until(opened, 180, f"ECE to hold {CONVERSATIONS} conversations")
    sent_before: list[int] = []

    def welcomed() -> bool:
        sent = requests.get(f"{PROVIDERS}/sent", params={"channel": "whatsapp"}, timeout=30).json()["sent"]
        customers = {record["customer"] for record in sent if (record["customer"] or "").startswith(CUSTOMERS)}
        sent_before.append(len(sent))
        # Every customer welcomed, and nothing more sent since the last look (0.5 s ago).
        return len(customers) >= CONVERSATIONS and sent_before[-2:] == [len(sent)] * 2 and read_in_flight() == 0

    wait_until(welcomed, 120, "each customer's welcome message")
    return [found[n] for n in range(CONVERSATIONS)]


def collect(row: Deliveries) -> None:
    row.arrivals.clear()
    sent = requests.get(f"{PROVIDERS}/sent", params={"channel": "whatsapp"}, timeout=60).json()["sent"]
    prefix = f"{TOKEN} "
    for record in sent:
        content = record.get("text") or ""
        if content.startswith(prefix):
            row.arrivals.setdefault(int(content[len(prefix) :]), []).append(record["at"])
    for times in row.arrivals.values():
        times.sort()


def read_in_flight(session: requests.Session | None = None) -> int:
    """The provider simulators' sends in flight now."""
    answer = (session or requests).get(f"{PROVIDERS}/control/delay", timeout=5)
    return int(answer.json()["in_flight"])


def control(**body: object) -> dict[str, Any]:
    """The simulators' delay switch (`POST /providers/control/delay`); with nothing, just its counters."""
    response = requests.post(f"{PROVIDERS}/control/delay", json=body, timeout=10)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def connector_ceiling() -> int:
    """Sends the connector's defaults hold at once: each dispatch job's drain loops, one call each."""
    settings = Settings.from_env()
    return settings.dispatchers * max(settings.drain_threads, settings.drain_threads_max)


def report(row: Deliveries) -> str:
    latencies = row.latencies_ms()
    errors = f" ({row.ack.errors} errors)" if row.ack.errors else ""
    bound = connector_ceiling()
    settings = Settings.from_env()
    lines = [
        "## Slow provider (issue 15)",
        "",
        f"ECE callbacks (one agent text event each), open loop, {RATE:.0f}/s for {SECONDS:.0f} s round robin over "
        f"{CONVERSATIONS} WhatsApp conversations, real stack (gunicorn {default_web_workers()}x4, {WORKERS} workers) "
        f"with the sandbox on the same 2 cores; the WhatsApp simulator answers every send after {DELAY:g} s and "
        f"records it then. Delivered: recorded by the simulator within {SETTLE_SECONDS:.0f} s after the load ended. "
        "Latencies from each callback's scheduled send time." + (" **Quick run.**" if QUICK else ""),
        "",
        "| provider delay | callbacks acked / offered | ack p50 ms | ack p99 ms | delivered "
        "| delivered/s, first callback → last delivery | delivered/s at the provider, first → last delivery "
        "| callback → provider p50 / p95 / p99 ms | sends in flight at the provider, peak / mean "
        "| lost | duplicated | out of order |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {DELAY:g} s | {len(row.acked_at)} / {row.total}{errors} | {row.ack.percentile(50):.2f} "
        f"| {row.ack.percentile(99):.2f} | {row.delivered} | {row.rate:.0f} | {row.received_rate:.0f} "
        f"| {percentile(latencies, 0.5):.0f} / {percentile(latencies, 0.95):.0f} / {percentile(latencies, 0.99):.0f} "
        f"| {row.peak_in_flight} / {row.mean_in_flight:.0f} | {row.lost} | {row.duplicated} | {row.out_of_order} |",
        "",
        "Method: the conversations are opened first (each customer's first message, ECE and the provider",
        "answering at once, every welcome sent), then the provider slows down and the callbacks start.",
        "Lost: acknowledged but not sent to the customer in time. Out of order: sent after a later message",
        "of its conversation although the connector acknowledged it before that one was posted. Sends in",
        "flight: what the simulator holds, its peak (reset before the load) and the mean of a sample every",
        f"{SAMPLE_SECONDS:g} s from the first callback to the last delivery.",
        "",
        "Ceilings, at this delay:",
        f"- the conversations': {CONVERSATIONS} conversations, one send at a time each, {DELAY:g} s a send: "
        f"{CONVERSATIONS / DELAY:.0f} sends/s;",
        f"- the connector's defaults: CONNECTOR_DISPATCHERS ({settings.dispatchers}) dispatch jobs x "
        f"CONNECTOR_DRAIN_THREADS_MAX ({settings.drain_threads_max}) drain loops, one send each = {bound} sends in "
        f"flight: {bound / DELAY:.0f} sends/s ({bound / DELAY / RATE:.0%} of the offered rate);",
        f"- the first rate column's: with every send answered {DELAY:g} s late, deliveries counted from the first "
        f"callback are at most {RATE:.0f} x {SECONDS:g} / ({SECONDS:g} + {DELAY:g}) = "
        f"{RATE * SECONDS / (SECONDS + DELAY):.0f}/s however fast the connector is. The goal is judged on the rate "
        "at the provider (first to last delivery), which a fixed answer time shifts but does not lower.",
        "",
        goal(row),
    ]
    return "\n".join(lines)


def goal(row: Deliveries) -> str:
    rate = row.received_rate
    return (
        f"- Provider at {DELAY:g} s: delivered {rate:.0f} msg/s at the provider ({rate / RATE:.0%} of "
        f"{RATE:.0f}, ≥ 95 %), lost {row.lost}: delivered rate ≥ 95 % of offered: {met(rate >= 0.95 * RATE)}"
    )
