"""What operators see of conversations: the recent list with filters, and one thread's whole story.

Read-only over the keys the intake and the drain write (threads, the activity ZSET, timelines,
boxes, retry state, leases); never calls ECE or a provider, so a page renders from Redis alone.

Cost invariants (pages render in < 200 ms with thousands of threads):
- the unfiltered list reads one page of the activity ZSET (newest first) and the listed threads'
  fields in one pipelined round trip;
- a filtered list walks the ZSET newest first in batches of SCAN_BATCH, fetching each batch's
  fields in one pipeline, and stops as soon as it has the requested page (plus one, to know whether
  another follows) or after SCAN_LIMIT threads; `truncated` then tells the operator that older
  conversations were not searched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from connector.conversations import State
from connector.store import keys, replies, threads
from connector.store.boxes import Box

PER_PAGE = 50
SCAN_BATCH = 200
SCAN_LIMIT = 5000
"""Most threads a filtered listing examines (newest first) before it stops and says so."""
PENDING_SHOWN = 20
"""Items of each box shown on a conversation's page (the count is always exact)."""
ACTIVE = "active"
"""Filter value for every open state (NEW, QUEUED, ASSIGNED, UNAVAILABLE)."""

_LIST_FIELDS = ("channel", "asset", "customer", "state", "integration", "entry_point", "rule", "agent_name", "agent_id")


@dataclass(frozen=True)
class Filters:
    """Empty strings mean "any". `entry_point` is a name, or `integration/name` to be exact;
    `state` is a State value or ACTIVE; `agent` matches a part of the agent's name or id."""

    channel: str = ""
    entry_point: str = ""
    state: str = ""
    agent: str = ""

    @property
    def any(self) -> bool:
        return bool(self.channel or self.entry_point or self.state or self.agent)

    def matches(self, row: Summary) -> bool:
        if self.channel and row.channel != self.channel:
            return False
        if self.entry_point:
            integration, _, name = self.entry_point.rpartition("/")
            if row.entry_point != name or (integration and row.integration != integration):
                return False
        if self.state:
            if self.state == ACTIVE:
                if not row.state.open:
                    return False
            elif row.state.value != self.state:
                return False
        if self.agent:
            needle = self.agent.casefold()
            if needle not in (row.agent or "").casefold() and needle not in (row.agent_id or "").casefold():
                return False
        return True


@dataclass(frozen=True)
class Summary:
    """One row of the list."""

    id: str
    last_activity: float
    channel: str
    asset: str
    customer: str
    state: State
    integration: str | None
    entry_point: str | None
    rule: str | None
    agent: str | None
    agent_id: str | None


@dataclass(frozen=True)
class Listing:
    items: list[Summary]
    page: int
    per_page: int
    has_next: bool
    total: int
    """Threads known at all (the size of the activity ZSET), whatever the filters."""
    scanned: int
    """Threads examined to build this page."""
    truncated: bool
    """A filtered search stopped at SCAN_LIMIT: older conversations may match too."""


def listing(
    redis: Redis, filters: Filters | None = None, page: int = 1, per_page: int = PER_PAGE, scan_limit: int = SCAN_LIMIT
) -> Listing:
    """Conversations newest activity first, one page of them."""
    filters = filters or Filters()
    page, per_page = max(1, page), max(1, per_page)
    total = replies.integer(redis.zcard(keys.threads_by_activity()))
    if not filters.any:
        start = (page - 1) * per_page
        scored = replies.scored(redis.zrevrange(keys.threads_by_activity(), start, start + per_page, withscores=True))
        rows = _summaries(redis, scored)
        return Listing(rows[:per_page], page, per_page, len(scored) > per_page, total, len(scored), False)

    skip, wanted = (page - 1) * per_page, per_page + 1
    found: list[Summary] = []
    scanned, offset = 0, 0
    while len(found) < skip + wanted and scanned < scan_limit:
        batch = min(SCAN_BATCH, scan_limit - scanned)
        scored = replies.scored(
            redis.zrevrange(keys.threads_by_activity(), offset, offset + batch - 1, withscores=True)
        )
        if not scored:
            break
        offset += len(scored)
        scanned += len(scored)
        found.extend(row for row in _summaries(redis, scored) if filters.matches(row))
    truncated = scanned >= scan_limit and offset < total and len(found) < skip + wanted
    items = found[skip : skip + per_page]
    return Listing(items, page, per_page, len(found) > skip + per_page, total, scanned, truncated)


def _summaries(redis: Redis, scored: Sequence[tuple[bytes, float]]) -> list[Summary]:
    pipe = redis.pipeline(transaction=False)
    for member, _ in scored:
        pipe.hmget(keys.thread(member.decode()), list(_LIST_FIELDS))
    rows = []
    answers = replies.execute(pipe)
    for (member, score), values in zip(scored, answers, strict=True):
        data = dict(zip(_LIST_FIELDS, (v.decode() if v else "" for v in values), strict=True))
        rows.append(
            Summary(
                id=member.decode(),
                last_activity=float(score),
                channel=data["channel"],
                asset=data["asset"],
                customer=data["customer"],
                state=_state(data["state"]),
                integration=data["integration"] or None,
                entry_point=data["entry_point"] or None,
                rule=data["rule"] or None,
                agent=data["agent_name"] or None,
                agent_id=data["agent_id"] or None,
            )
        )
    return rows


def _state(value: str) -> State:
    try:
        return State(value or State.IDLE.value)
    except ValueError:
        return State.IDLE


# -- one conversation --------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryWait:
    """A box whose head failed with a retryable error and waits (drain.py / retry.py)."""

    attempts: int
    first_failure_at: float | None
    until: float | None


@dataclass(frozen=True)
class BoxState:
    length: int
    items: list[Any]
    """The first PENDING_SHOWN items, parsed where they are JSON."""
    retry: RetryWait | None


@dataclass(frozen=True)
class Pending:
    """What is waiting now: the "where is it stuck" answer."""

    inbox: BoxState
    outbox: BoxState
    lease_ms: int | None
    """Milliseconds left on the drain lease when one is held (a worker is on the thread now)."""
    wake_queued: bool
    """The thread is on the ready list, waiting for a dispatch job."""

    @property
    def stuck_reason(self) -> str | None:
        """One sentence for the operator, or None when nothing waits."""
        if not (self.inbox.length or self.outbox.length):
            return None
        waits = [box for box in (self.inbox, self.outbox) if box.retry and box.retry.until]
        if waits:
            return "a delivery failed and is waiting to be retried (see the retry times below)"
        if self.lease_ms:
            return "a worker is handling it right now"
        if self.wake_queued:
            return "queued for a worker: if this lasts, check that workers are running"
        return "no worker has it: the sweeper re-wakes it within seconds; if not, check that workers are running"


@dataclass(frozen=True)
class Detail:
    thread: threads.Thread
    last_activity: float | None
    timeline: list[dict[str, Any]]
    pending: Pending


def detail(redis: Redis, thread_id: str) -> Detail | None:
    """Everything known about one thread, or None when there is no such thread."""
    thread = threads.load(redis, thread_id)
    pipe = redis.pipeline(transaction=False)
    pipe.zscore(keys.threads_by_activity(), thread_id)
    pipe.lrange(keys.timeline(thread_id), 0, -1)
    for box in (Box.IN, Box.OUT):
        pipe.llen(box.key(thread_id))
        pipe.lrange(box.key(thread_id), 0, PENDING_SHOWN - 1)
    pipe.hgetall(keys.retry_state(thread_id))
    pipe.pttl(keys.lease(thread_id))
    pipe.exists(keys.wake(thread_id))
    score, timeline, in_len, in_items, out_len, out_items, retry, lease_ms, wake = replies.execute(pipe)
    if not thread.channel and score is None and not timeline and not in_len and not out_len:
        return None
    retry = {k.decode(): v.decode() for k, v in retry.items()}
    pending = Pending(
        inbox=BoxState(int(in_len), [_parsed(i) for i in in_items], _retry_wait(retry, Box.IN)),
        outbox=BoxState(int(out_len), [_parsed(i) for i in out_items], _retry_wait(retry, Box.OUT)),
        lease_ms=int(lease_ms) if lease_ms and int(lease_ms) > 0 else None,
        wake_queued=bool(wake),
    )
    entries = [e for e in (_parsed(raw) for raw in timeline) if isinstance(e, dict)]
    return Detail(thread, float(score) if score is not None else None, entries, pending)


def _parsed(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _retry_wait(retry: dict[str, str], box: Box) -> RetryWait | None:
    state = retry.get(box.value)
    until = retry.get(f"{box.value}_until")
    if not state and not until:
        return None
    try:
        parsed = json.loads(state) if state else {}
    except ValueError:
        parsed = {}
    return RetryWait(
        attempts=int(parsed.get("attempts", 0)),
        first_failure_at=parsed.get("first_at"),
        until=float(until) if until else None,
    )


# -- the timeline, as an operator reads it --------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One timeline entry in words: who did what, the text if any, and what went wrong."""

    at: float | None
    actor: str
    """customer | agent | system | connector"""
    label: str
    text: str | None = None
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dead_letter: str | None = None


_CUSTOMER_KINDS = {
    "message": "message",
    "postback": "button reply",
    "typing_start": "started typing",
    "typing_end": "stopped typing",
    "close": "closed the conversation",
    "receipt": "receipt",
}
_AGENT_KINDS = {
    "text/plain": "message",
    "text/html": "message",
    "startTyping": "started typing",
    "endTyping": "stopped typing",
    "pagePush": "pushed a page",
    "uploadAttachment": "sent a file",
    "assigned": "assigned",
    "transfer": "transferred the chat",
    "acceptAttachment": "accepted a file",
    "rejectAttachment": "rejected a file",
    "complete": "ended the chat",
}


def steps(entries: Iterable[dict[str, Any]]) -> list[Step]:
    return [step(entry) for entry in entries]


def step(entry: dict[str, Any]) -> Step:
    """A timeline entry (as drain.py and outbound.py write it) → a Step."""
    kind = str(entry.get("kind") or "")
    at = entry.get("at")
    notes = [str(entry["note"])] if entry.get("note") else []
    errors = [str(e) for e in entry.get("errors") or []]
    if kind == "retry":
        box = "customer message" if entry.get("box") == Box.IN.value else "delivery to the customer"
        return Step(
            at,
            "connector",
            f"{box} failed (attempt {entry.get('attempt')}); retrying in {entry.get('wait')} s",
            errors=[str(entry.get("error") or "")],
        )
    if kind == "dead_letter" and "direction" not in entry:
        return Step(
            at,
            "connector",
            "moved to the dead letters",
            errors=[str(entry.get("reason") or "")],
            dead_letter=entry.get("id"),
        )
    if kind == "error":
        return Step(at, "connector", "error", errors=notes or ["unknown error"])
    if entry.get("direction") == "in":
        label = _CUSTOMER_KINDS.get(kind, kind)
        if entry.get("attachments"):
            label += f" with {entry['attachments']} attachment(s)"
        if entry.get("status"):
            label += f": {entry['status']}"
        routing = entry.get("routing")
        if routing:
            if routing.get("rule"):
                notes.append(
                    f"new conversation: rule {routing['rule']} → {routing.get('integration')} / "
                    f"{routing.get('entry_point')}"
                )
            else:
                notes.append("new conversation: no rule matched")
            notes.extend(f"rule {m.get('rule')} skipped: {m.get('reason')}" for m in routing.get("misses") or [])
        return Step(at, "customer", label, entry.get("text"), notes, errors)
    # outbound: an ECE event, a system message, or a timer
    system = [str(s) for s in entry.get("system") or []]
    if kind == "system":
        message = str(entry.get("message"))
        others = _system_notes([name for name in system if name != message])
        return Step(at, "system", f"system message {message}", None, notes + others, errors, entry.get("dead_letter"))
    if kind == "timer":
        return Step(at, "connector", f"timer {entry.get('timer')}", None, notes, errors, entry.get("dead_letter"))
    label = _AGENT_KINDS.get(kind, kind or "event")
    if entry.get("agent"):
        label += f" to {entry['agent']}" if kind == "assigned" else f" ({entry['agent']})"
    if entry.get("transfer"):
        target = entry["transfer"]
        label += f" to {target.get('type')} {target.get('name')}"
    if entry.get("file"):
        label += f": {entry['file']}"
    return Step(at, "agent", label, entry.get("text"), notes + _system_notes(system), errors, entry.get("dead_letter"))


def _system_notes(system: list[str]) -> list[str]:
    return [f"system message {name}" for name in system]


def who(redis: Redis, thread_ids: Iterable[str]) -> dict[str, Summary]:
    """The list fields of several threads in one round trip (to label dead letters and the like);
    threads that no longer exist are left out."""
    ids = list(dict.fromkeys(thread_ids))
    rows = _summaries(redis, [(i.encode(), 0.0) for i in ids])
    return {row.id: row for row in rows if row.channel}
