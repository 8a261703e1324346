"""Flow step benchmark: what an `ask` step and a `language` + `branch` pair add to a customer message.

Method: end to end on the real stack (`python -m connector run`: gunicorn, 2 RQ workers, the
embedded Redis; and `python -m connector sandbox`: the ECE and provider simulators on loopback), on a
copy of the sandbox configuration with two more SMS rules: `ASK ...` starts a flow of `ask` steps (text answers, more
steps than the benchmark answers, so it never ends), `LANG ...` a flow of a `language` step then a
`branch` on the language (Spanish → the Sales entry point). Every other SMS goes to Support with no
flow. Signed Twilio webhooks are sent open loop at RATE messages/s (a latency measure: far below what
the stack sustains), the cases interleaved on the same stack so the machine's drift hits them alike.
A latency is from the webhook's send to its effect reaching a simulator (both stamp `time.time()`
on this one machine):

- first message, no flow: webhook → the ECE simulator receiving it (the conversation starts);
- first message, language + branch: the same path with the two steps in it (the flow routes at once);
- first message, ask: webhook → the first question reaching the Twilio simulator;
- follow-up, no flow: a message in an open conversation → the ECE simulator receiving it;
- ask answer: the customer's answer → the next question reaching the Twilio simulator (the answer
  is validated and kept, the question goes through the outbox: two commits of the drain).

The added p95 compares each flow case with its no-flow path (first message, or a follow-up). The ask
answer and the follow-up end at different simulators (Twilio's send API, ECE's message API), both in
the one sandbox process; an in-process measure of `drain_thread` would isolate the drain better but
leave out the webhook, the wake-up and the outbox send that a step adds, so the stack is measured.
Goal: a flow step adds ≤ 5 ms p95 to the path it sits on.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import requests
import yaml

from bench.figures import met, percentile, wait_until
from bench.loadgen import build_request, open_loop
from bench.stack import SANDBOX_CONFIG, Stack, running_stack
from connector.sandbox.signing import twilio_signature
from connector.settings import PROJECT_ROOT

HOST = "127.0.0.1"
SANDBOX = "http://127.0.0.1:8100"
PUBLIC_BASE_URL = "https://connector.example.com"
ASSET = "sandbox-sms"
NUMBER = "+15550001111"
AUTH_TOKEN = "sandbox-twilio-token"
CUSTOMERS = 100
"""Customers per case (no flow, ask, language + branch)."""
ANSWERS = 3
"""Follow-ups per no-flow customer and answers per ask customer."""
RATE = 20.0
GOAL_MS = 5.0
TAG = re.compile(r"#(\d+)\b")
SPANISH = "Hola, buenas tardes, tengo una pregunta sobre mi pedido"
QUESTION = "What is your question about?"
"""message_templates/en/ask_topic.txt.j2, each ask step's question."""
SALES_ID = "1002"
"""The sandbox's Sales entry point, where the branch sends Spanish (the rule says Support)."""

ASK_STEPS = [
    {"name": f"q{n}", "type": "ask", "question": "ask_topic", "answer": "text", "attribute": f"q{n}"}
    for n in range(ANSWERS + 2)
]
FLOWS = [
    {"name": "bench-ask", "steps": ASK_STEPS},
    {
        "name": "bench-language",
        "steps": [
            {"name": "lang", "type": "language"},
            {"name": "route", "type": "branch", "branch": [{"when": {"language": "es"}, "entry_point": "Sales"}]},
        ],
    },
]
RULES = [
    {
        "name": f"bench-{keyword.lower()}",
        "channel": "sms",
        "event": "mo",
        "asset": ASSET,
        "keyword": keyword,
        "action": {"forward_to": "SandboxECE", "entry_point": "Support", "flow": flow},
    }
    for keyword, flow in (("ASK", "bench-ask"), ("LANG", "bench-language"))
]


def config_folder() -> Path:
    """The sandbox configuration with the benchmark's flows and rules (its rules first)."""
    folder = Path(tempfile.mkdtemp(prefix="cc-bench-flows-", dir="/tmp"))
    config = yaml.safe_load((SANDBOX_CONFIG / "sandbox.yaml").read_text(encoding="utf-8"))
    config["rules"] = RULES + config["rules"]
    config["flows"] = config.get("flows", []) + FLOWS
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return folder


PREFIXES = {"none": "+16660", "ask": "+16661", "lang": "+16662"}
"""Each case's customers' numbers start so (then the customer, 6 digits)."""


@contextmanager
def simulators(folder: Path, stack: Stack) -> Iterator[None]:
    """`python -m connector sandbox` on the benchmark's configuration: `run --sandbox` always uses
    entrypoints/sandbox, whose simulators would not know this configuration's flows' templates."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        CONNECTOR_CONFIG_DIR=str(folder),
        CONNECTOR_DATA_DIR=str(stack.data_dir),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{stack.port}",
        REDIS_URL=f"unix://{stack.redis_socket}",
        LOG_LEVEL="WARNING",
    )
    argv = [sys.executable, "-m", "connector", "sandbox"]
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: requests.get(f"{SANDBOX}/ece/control/state", timeout=2).ok, 30, "the simulators")
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def customer(case: str, number: int) -> str:
    return f"{PREFIXES[case]}{number:06d}"


@dataclass
class Send:
    case: str
    customer: str
    text: str
    answer: int = 0
    """For an ask customer: the message's place (0 starts the flow, n answers question n)."""
    sent_at: float = 0.0


@dataclass
class Run:
    sends: list[Send] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)


def sms_request(port: int, send: Send, sid: str) -> bytes:
    params = [("MessageSid", sid), ("From", send.customer), ("To", NUMBER), ("Body", send.text), ("NumMedia", "0")]
    url = f"{PUBLIC_BASE_URL}/webhooks/sms/{ASSET}"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, params),
    }
    return build_request(HOST, port, f"/webhooks/sms/{ASSET}", urlencode(params).encode(), headers)


def first_messages() -> list[Send]:
    sends: list[Send] = []
    for n in range(CUSTOMERS):
        tag = len(sends)
        sends.append(Send("first: no flow", customer("none", n), f"hello I need help #{tag}"))
        sends.append(Send("first: language + branch", customer("lang", n), f"LANG {SPANISH} #{tag + 1}"))
        sends.append(Send("first: ask", customer("ask", n), f"ASK hello #{tag + 2}"))
    return sends


def follow_ups(start: int) -> list[Send]:
    sends: list[Send] = []
    for answer in range(1, ANSWERS + 1):
        for n in range(CUSTOMERS):
            tag = start + len(sends)
            sends.append(Send("follow-up: no flow", customer("none", n), f"one more thing #{tag}"))
            sends.append(Send("ask answer", customer("ask", n), f"answer {answer}", answer=answer))
    return sends


def send_all(port: int, sends: list[Send], offset: int) -> None:
    def make(index: int) -> bytes:
        send = sends[index]
        request = sms_request(port, send, f"SMbench{offset + index:030d}")
        send.sent_at = time.time()
        return request

    result = open_loop(HOST, port, make, RATE, len(sends) / RATE)
    if result.errors or set(result.statuses) != {200}:
        raise RuntimeError(f"webhooks refused: {result.statuses}, {result.errors} errors")


def ece_arrivals() -> dict[int, tuple[float, str]]:
    """Tag → when the ECE simulator received the message, and its conversation's entry point id."""
    state = requests.get(f"{SANDBOX}/ece/control/state", timeout=30).json()
    arrivals: dict[int, tuple[float, str]] = {}
    for conversation in state["conversations"]:
        for item in conversation["received"]:
            if found := TAG.search(item.get("content") or ""):
                arrivals.setdefault(int(found.group(1)), (item["received_at"], conversation["entry_point_id"]))
    return arrivals


def questions() -> dict[str, list[float]]:
    """Ask customer → when each question (and only a question: QUESTION's text) reached the Twilio
    simulator, in order."""
    sent = requests.get(f"{SANDBOX}/providers/sent", params={"channel": "sms"}, timeout=30).json()["sent"]
    asked: dict[str, list[float]] = {}
    for record in sent:
        if (record.get("customer") or "").startswith(PREFIXES["ask"]) and record.get("text") == QUESTION:
            asked.setdefault(record["customer"], []).append(record["at"])
    return {who: sorted(at) for who, at in asked.items()}


def collect(run: Run, sends: list[Send], offset: int) -> bool:
    """The latencies of `sends` (tags numbered from `offset`); whether every effect has arrived."""
    arrivals, asked = ece_arrivals(), questions()
    complete = True
    latencies: dict[str, list[float]] = {}
    for index, send in enumerate(sends):
        if send.case in ("ask answer", "first: ask"):
            at = asked.get(send.customer, [])
            arrived = at[send.answer] if len(at) > send.answer else None
        else:
            arrived, entry_point = arrivals.get(offset + index, (None, ""))
            if arrived is not None and send.case == "first: language + branch" and entry_point != SALES_ID:
                raise RuntimeError(f"the branch sent {send.text!r} to entry point {entry_point}, not Sales")
        if arrived is None:
            complete = False
            continue
        latencies.setdefault(send.case, []).append((arrived - send.sent_at) * 1000)
    for case, values in latencies.items():
        run.latencies[case] = values
    return complete


def run() -> str:
    folder = config_folder()
    result = Run()
    try:
        with (
            running_stack(app="wsgi:app", workers=2, env={"CONNECTOR_CONFIG_DIR": str(folder)}) as s,
            simulators(folder, s),
        ):
            first = first_messages()
            send_all(s.port, first, 0)
            wait_until(lambda: collect(result, first, 0), 120, "every first message's effect")
            later = follow_ups(len(first))
            send_all(s.port, later, len(first))
            wait_until(lambda: collect(result, later, len(first)), 120, "every follow-up's effect")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return report(result)


PAIRS = (
    ("first: language + branch", "first: no flow"),
    ("first: ask", "first: no flow"),
    ("ask answer", "follow-up: no flow"),
)


def report(result: Run) -> str:
    lines = [
        "## Flow steps",
        "",
        f"{CUSTOMERS} SMS customers per case, {ANSWERS} follow-ups or answers each, {RATE:.0f} signed Twilio "
        "webhooks/s open loop, the cases interleaved on one real stack (gunicorn, 2 workers, the sandbox "
        "simulators on the same 2 cores). Latency: webhook sent → its effect at a simulator "
        "(bench/flows.py says which).",
        "",
        "| case | messages | p50 ms | p95 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for case, values in result.latencies.items():
        lines.append(
            f"| {case} | {len(values)} | {percentile(values, 0.5):.1f} | {percentile(values, 0.95):.1f} "
            f"| {percentile(values, 0.99):.1f} |"
        )
    lines += ["", "| flow case | against | added p95 ms | ratio of p95 |", "| --- | --- | ---: | ---: |"]
    worst = float("-inf")
    for case, baseline in PAIRS:
        with_flow, without = result.latencies.get(case, []), result.latencies.get(baseline, [])
        p95, base = percentile(with_flow, 0.95), percentile(without, 0.95)
        added = p95 - base
        worst = max(worst, added)
        lines.append(f"| {case} | {baseline} | {added:+.1f} | {p95 / base:.2f} |")
    lines += ["", f"Goal: a flow step adds ≤ {GOAL_MS:g} ms p95 to its path: {met(worst <= GOAL_MS)}"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
