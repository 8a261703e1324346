"""Operator pages benchmark: every operator page renders in under 200 ms with 1,000 conversations and 100
entry points in Redis.

The real stack (`python -m connector run`: gunicorn, workers, embedded Redis) is seeded through the
connector's own stores: one UI integration with 100 entry points (plus the sandbox's), 1,000
conversation threads with 20 timeline entries each, 200 dead letters, 50 UI rules. Each page is
then fetched over HTTP by a logged-in operator, REPEAT times after one warm-up; the table shows the
server's time to the last byte (p50, p95, max). Goal: p95 < 200 ms for every page.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from dataclasses import dataclass

import redis as redis_lib
import requests

from bench.stack import running_stack
from connector.backends import Availability, indicators
from connector.config.loader import load_config
from connector.config.overrides import ConfigOverrides
from connector.conversations import State
from connector.store import dead_letters, keys, threads
from connector.store.boxes import Box

CONVERSATIONS = 1000
ENTRY_POINTS = 100
TIMELINE_ENTRIES = 20
DEAD_LETTERS = 200
RULES = 50
REPEAT = 20
GOAL_MS = 200.0
PASSWORD = "bench-admin-password"
ENV = {"CONNECTOR_ADMIN_PASSWORD": PASSWORD, "PUBLIC_BASE_URL": "http://127.0.0.1"}
"""Plain http, as the bench talks to gunicorn directly: the session cookie must not be Secure."""
INTEGRATION = "BenchECE"
CHANNELS = ("sms", "messenger", "whatsapp", "apple", "inapp")
ASSETS = {
    "sms": "sandbox-sms",
    "messenger": "sandbox-messenger",
    "whatsapp": "sandbox-whatsapp",
    "apple": "sandbox-apple",
    "inapp": "sandbox-app",
}


@dataclass(frozen=True)
class Seeded:
    thread_id: str
    letter_id: str


def seed(redis: redis_lib.Redis) -> Seeded:
    from bench.stack import SANDBOX_CONFIG

    store = ConfigOverrides(redis)
    provisioned = load_config(SANDBOX_CONFIG)
    store.save(
        "integrations",
        {
            "name": INTEGRATION,
            "type": "ece",
            "base_url": "http://127.0.0.1:9/ece",
            "client_key": "bench",
            "client_secret": "bench-secret",
            "entry_points": [{"name": f"EP{i:03d}", "id": str(5000 + i)} for i in range(ENTRY_POINTS)],
        },
        provisioned,
        create=True,
    )
    for i in range(RULES):
        channel = CHANNELS[i % len(CHANNELS)]
        store.save(
            "rules",
            {
                "name": f"bench-rule-{i:02d}",
                "channel": channel,
                "event": "mo" if channel == "sms" else "incoming_message",
                "asset": ASSETS[channel],
                "status": "inactive",
                "action": {"forward_to": INTEGRATION, "entry_point": f"EP{i:03d}"},
            },
            provisioned,
            create=True,
        )
    now = time.time()
    for i in range(ENTRY_POINTS):  # a reading per entry point, as after a "Refresh all"
        availability = Availability(
            chat_allowed=True,
            agents_available=i % 3 != 0,
            capacity=i % 4,
            eligibility=0,
            queue_depth=i % 7,
            wait_seconds=30 * (i % 6),
        )
        indicators.store(redis, INTEGRATION, indicators.Reading(str(5000 + i), now, availability))
    rng = random.Random(5)
    states = [State.QUEUED, State.ASSIGNED, State.CLOSED, State.CLOSED, State.UNAVAILABLE]
    pipe = redis.pipeline(transaction=False)
    thread_ids = []
    for i in range(CONVERSATIONS):
        channel = CHANNELS[i % len(CHANNELS)]
        thread = threads.Thread(
            id=f"bench{i:05d}",
            channel=channel,
            asset=ASSETS[channel],
            customer=f"+1555{i:07d}",
            state=states[i % len(states)],
            sequence=1,
            integration=INTEGRATION,
            entry_point=f"EP{i % ENTRY_POINTS:03d}",
            rule=f"bench-rule-{i % RULES:02d}",
            details={"name": f"Customer {i}", "locale": "en"},
            started_at=now - 3600 + i,
            remote_id=f"ece-{i}",
            agent_id=f"agent{i % 30}",
            agent_name=f"Agent {i % 30}",
        )
        thread_ids.append(thread.id)
        pipe.hset(keys.thread(thread.id), mapping=threads.fields_of(thread))
        pipe.zadd(keys.threads_by_activity(), {thread.id: now - CONVERSATIONS + i})
        for n in range(TIMELINE_ENTRIES):
            direction = "in" if n % 2 == 0 else "out"
            entry = {"at": now - 600 + n, "direction": direction, "kind": "text", "text": f"message {n} " * 8}
            pipe.rpush(keys.timeline(thread.id), json.dumps(entry))
    pipe.execute()
    letter = None
    for i in range(DEAD_LETTERS):
        item = json.dumps({"kind": "text", "text": f"dead {i}", "provider_id": f"m{i}"})
        letter = dead_letters.add(redis, thread_ids[rng.randrange(CONVERSATIONS)], Box.IN, item, "window closed")
    assert letter is not None
    return Seeded(thread_ids[-1], letter.id)


def pages(seeded: Seeded) -> list[tuple[str, str]]:
    """(label, path) of every page an operator reads, the heaviest variant of each."""
    return [
        ("overview", "/admin/"),
        ("integrations", "/admin/integrations/"),
        ("integration with 100 entry points and their lights", f"/admin/integrations/{INTEGRATION}"),
        ("assets", "/admin/assets/"),
        ("one asset", "/admin/assets/whatsapp/sandbox-whatsapp"),
        ("rules (56)", "/admin/rules/"),
        ("rules with a tester answer", "/admin/rules/?channel=sms&asset=sandbox-sms&text=sales+please"),
        ("rule form", "/admin/rules/bench-rule-07/edit"),
        ("message matrix", "/admin/templates/"),
        ("message matrix, entry point scope", f"/admin/templates/?integration={INTEGRATION}&entry_point=EP042"),
        ("message editor", "/admin/templates/en/agent_assigned"),
        ("conversations", "/admin/conversations/"),
        ("conversations, page 10", "/admin/conversations/?page=10"),
        ("conversations, filter matching few", "/admin/conversations/?channel=whatsapp&state=assigned&agent=agent7"),
        ("one conversation", f"/admin/conversations/{seeded.thread_id}"),
        ("dead letters", "/admin/dead-letters/"),
        ("unrouted messages", "/admin/unrouted/"),
        ("one dead letter", f"/admin/dead-letters/{seeded.letter_id}"),
        ("import / export", "/admin/transfer/"),
        ("accounts", "/admin/accounts/"),
    ]


def _log_in(base: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{base}/admin/login", timeout=10).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)[1]
    answer = session.post(
        f"{base}/admin/login",
        data={"name": "admin", "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"login failed: {answer.status_code}")
    return session


def run() -> str:
    rows = []
    with running_stack(app="wsgi:app", workers=1, sandbox=False, env=ENV) as stack:
        redis = redis_lib.Redis(unix_socket_path=str(stack.redis_socket))
        seeded = seed(redis)
        base = f"http://127.0.0.1:{stack.port}"
        session = _log_in(base)
        time.sleep(1.5)  # the web workers pick up the seeded configuration (CONFIG_CHECK_SECONDS)
        for label, path in pages(seeded):
            timings = []
            status = None
            for attempt in range(REPEAT + 1):
                started = time.perf_counter()
                answer = session.get(base + path, timeout=30)
                elapsed = (time.perf_counter() - started) * 1000
                status = answer.status_code
                if attempt:  # the first is a warm-up (template compilation, connections)
                    timings.append(elapsed)
            timings.sort()
            p95 = timings[int(len(timings) * 0.95) - 1]
            rows.append((label, path, status, statistics.median(timings), p95, timings[-1]))
        redis.close()
    return report(rows)


def report(rows: list[tuple[str, str, int | None, float, float, float]]) -> str:
    lines = [
        "## Operator pages",
        "",
        f"{CONVERSATIONS} conversations ({TIMELINE_ENTRIES} timeline entries each), {ENTRY_POINTS} entry points on one "
        f"integration, {RULES} UI rules, {DEAD_LETTERS} dead letters in Redis; real stack (gunicorn, 1 worker); "
        f"{REPEAT} fetches per page by a logged-in admin after one warm-up, time to the last byte.",
        "",
        "| page | path | status | p50 ms | p95 ms | max ms | under 200 ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, path, status, p50, p95, worst in rows:
        ok = "yes" if status == 200 and p95 < GOAL_MS else "NO"
        lines.append(f"| {label} | `{path}` | {status} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {ok} |")
    lines += ["", f"Goal: p95 < {GOAL_MS:.0f} ms for every page."]
    return "\n".join(lines)
