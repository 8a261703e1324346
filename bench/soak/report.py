"""bench/results/soak-<timestamp>.md: what ran, what was injected, what came out."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

from bench.figures import percentile
from bench.soak.check import Direction, Outcome
from bench.soak.faults import FaultRecord
from bench.soak.load import Counters
from bench.soak.stack import TIMINGS

DURABILITY_NOTES = {
    "everysec": (
        "`everysec` (the default): Redis fsyncs its AOF once a second, so a message acknowledged less than a "
        "second before Redis is SIGKILLed can be lost (or, its dedupe record lost, taken again when the "
        "provider retries). That is the documented window; such messages are counted apart below and do "
        "not count as lost or duplicated."
    ),
    "always": "`always`: Redis fsyncs the AOF before it answers, so every acknowledged message survives a SIGKILL.",
    "replicated": (
        "`replicated`: a master (AOF everysec) and one replica; every acknowledgement waits for `WAIT 1`. After "
        "each SIGKILL the master comes back as a replica of the replica (a full copy of what it confirmed), "
        "then the two swap back, as a failover and failback would."
    ),
}


@dataclass
class RunInfo:
    messages_target: int
    conversations: int
    rounds: int
    durability: str
    workers: int
    web_workers: int
    started: float
    load_seconds: float
    drain_seconds: float
    seams: list[str]


def during(latency: tuple[float, float, float], faults: list[FaultRecord]) -> bool:
    sent, arrived, _ = latency
    return any(f.start <= arrived and sent <= f.end for f in faults)


def latency_rows(direction: Direction, faults: list[FaultRecord]) -> list[str]:
    rows = []
    for label, chosen in (
        ("outside faults", [x for x in direction.latencies if not during(x, faults)]),
        ("during faults", [x for x in direction.latencies if during(x, faults)]),
    ):
        ms = [x[2] * 1000 for x in chosen]
        rows.append(
            f"| {direction.name} | {label} | {len(ms)} | {percentile(ms, 0.5):.0f} | {percentile(ms, 0.95):.0f} "
            f"| {percentile(ms, 0.99):.0f} |"
        )
    return rows


def recovery_seconds(fault: FaultRecord, directions: list[Direction]) -> float | None:
    """From the fault's end until the last message sent before that end arrived (the backlog drained);
    None when one of them never arrived."""
    latest = fault.end
    for direction in directions:
        for sent, arrived, _ in direction.latencies:
            if sent <= fault.end:
                latest = max(latest, arrived)
    return latest - fault.end


def render(info: RunInfo, outcome: Outcome, faults: list[FaultRecord], counters: Counters) -> str:
    directions = [outcome.inbound, outcome.outbound]
    sent = outcome.inbound.expected + outcome.outbound.expected
    lines = [
        f"# Chaos soak {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(info.started))}",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. Real stack: gunicorn "
        f"({info.web_workers} processes), {info.workers} workers, the listener, the harness's own Redis; simulators "
        "in the harness process. Recovery timings: " + ", ".join(f"{k}={v}" for k, v in TIMINGS.items()) + ".",
        "",
        f"Result: **{'PASS' if not outcome.failures else 'FAIL'}**"
        + ("" if not outcome.failures else " - " + "; ".join(outcome.failures)),
        "",
        "## Load",
        "",
        f"- {sent} messages acknowledged ({outcome.inbound.expected} customer, {outcome.outbound.expected} agent; "
        f"target {info.messages_target}) in {info.conversations} conversations over SMS, Messenger, WhatsApp, Apple "
        f"(ECE) and in-app (Hybrid Chat), {info.rounds} rounds each; every 4th customer message a file.",
        f"- {counters.webhook_posts} webhook deliveries: {counters.duplicate_copies} duplicate copies "
        f"({counters.late_copies} of them late, after the customer's next message), {counters.webhook_retries} "
        f"retries of unanswered or failed deliveries; {counters.agent_retries} agent-side retries.",
        f"- {outcome.system.arrived} system messages reached customers.",
        f"- Load {info.load_seconds:.0f} s, drain after the load {info.drain_seconds:.1f} s.",
        "",
        "## Durability",
        "",
        f"`CONNECTOR_DURABILITY={info.durability}`. {DURABILITY_NOTES.get(info.durability, '')}",
        "",
        "## Faults injected",
        "",
        "| fault | count | total seconds |",
        "| --- | ---: | ---: |",
    ]
    kinds: dict[str, list[FaultRecord]] = {}
    for fault in faults:
        kinds.setdefault(fault.kind, []).append(fault)
    for kind, records in sorted(kinds.items()):
        lines.append(f"| {kind} | {len(records)} | {sum(r.end - r.start for r in records):.1f} |")
    lines += ["", *(f"- {seam}" for seam in info.seams), ""]
    lines += [
        "## Lost, duplicated, reordered",
        "",
        "Lost, duplicated and reordered must all be 0. The last three columns are the documented windows "
        '(docs/architecture.md, "Redis durability" and "Idempotent effects"), counted apart: what was '
        "acknowledged in the last second before a Redis SIGKILL under `everysec`, and a second copy of a "
        "call with no idempotency key (ECE message or attachment; Twilio, Messenger, WhatsApp sends) whose "
        "first copy the far side took within 3 s of a worker kill (the call in flight, or its answer not yet "
        "recorded) or shortly before or while Redis was down; and the welcome heard again when such a "
        "repeat of the customer's message reached ECE after the agent had ended the conversation, and so "
        "started a new one.",
        "",
        "| direction | expected | arrived | lost | duplicated | reordered | lost in the everysec window "
        "| duplicated in the everysec window | repeated by a worker kill |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for d in (outcome.inbound, outcome.outbound, outcome.system):
        lines.append(
            f"| {d.name} | {d.expected} | {d.arrived} | {len(d.lost)} "
            f"| {len(d.duplicated)} | {len(d.reordered)} | {len(d.in_window_lost)} | {len(d.in_window_duplicated)} "
            f"| {len(d.crash_window_duplicated)} |"
        )
    left = outcome.leftovers
    lines += [
        "",
        f"Left in Redis after the drain: {left.inbox_items} inbox items, {left.outbox_items} outbox items, "
        f"{left.retry_states} retry states, {left.deferred} deferred boxes, {left.ready} ready threads.",
        f"Dead letters: {len(left.dead_letters)}"
        + "".join(f"\n- {thread}: {reason}" for thread, reason in left.dead_letters[:20]),
        "",
        "## End-to-end latency (ms)",
        "",
        'Sent (first attempt) → arrived at the other end. "During faults": a fault was under way at some point '
        "between the two.",
        "",
        "| direction | when | messages | p50 | p95 | p99 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for direction in directions:
        lines += latency_rows(direction, faults)
    lines += [
        "",
        "## Recovery after each fault",
        "",
        "Seconds from the fault's end until every message sent before that end had arrived (the backlog drained).",
        "",
        "| fault | ended at (s into the run) | lasted s | recovery s |",
        "| --- | ---: | ---: | ---: |",
    ]
    for fault in sorted(faults, key=lambda f: f.start):
        recovery = recovery_seconds(fault, directions)
        lines.append(
            f"| {fault.kind} | {fault.end - info.started:.1f} | {fault.end - fault.start:.1f} "
            f"| {'-' if recovery is None else f'{recovery:.1f}'} |"
        )
    if outcome.errors:
        lines += ["", "## Errors", "", *(f"- {e}" for e in outcome.errors[:50])]
    if outcome.details:
        lines += [
            "",
            "## Conversations that broke the promise",
            "",
            "Times in seconds into the run.",
            "",
        ]
        lines += [*(f"{d}\n" for d in outcome.details)]
        lines += [
            "Faults (s into the run):",
            *(
                f"- {f.kind} {f.start - info.started:.1f} → {f.end - info.started:.1f} {f.detail}"
                for f in sorted(faults, key=lambda f: f.start)
            ),
        ]
    return "\n".join(lines) + "\n"
