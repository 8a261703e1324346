"""What operators see of conversations: the recent list with filters, and one thread's whole story.

Read-only over the keys the intake and the drain write (threads, the activity ZSET, timelines,
boxes, retry state, leases); never calls ECE or a provider, so a page renders from Redis alone.

The list is one row per thread (a customer on an asset), newest activity first. What one page costs:
- no filter, or only the dates: a ZCARD and a ZCOUNT, one ZREVRANGEBYSCORE page of the activity
  ZSET (the dates bound its scores), then the page's threads' fields in one script call;
- any other filter (state, channel, entry point, agent, search): the ids in the date window, newest
  first, up to SCAN_LIMIT, in one ZREVRANGEBYSCORE; then, per SCAN_BATCH threads, one script call
  that reads only the fields the filters look at (a search: customer id, name and the first message
  text, capped at threads.FIRST_TEXT_LIMIT); then the matching page's rows in full. Every matching
  thread of the window is counted, so the count and "page X of Y" are exact; beyond SCAN_LIMIT
  threads, `truncated` says that older ones were not searched (dates move the window). For 5,000
  threads that is 28 round trips and about 25 ms of Redis time, in slices of a millisecond or two,
  and 50 ms in all (`make bench`, conversation_search).
There is no separate index to keep in step: the fields searched are in the thread's own hash,
written by the drain's commit (relay/drain.py), so they go when the thread does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
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
STATES = (ACTIVE, *(s.value for s in State))
"""The values of the state filter."""
TEXT_FILTER_LIMIT = 200
"""Longest entry point, agent or search text a filter takes."""

_LIST_FIELDS = (
    "channel",
    "asset",
    "customer",
    "state",
    "integration",
    "entry_point",
    "rule",
    "agent_name",
    "agent_id",
    "customer_name",
    "first_text",
)


def day_start(day: date) -> float:
    """Unix time of a day's first instant, UTC: the day filters count days as every time shown in
    the UI does (operators compare them with logs, which are UTC)."""
    return datetime.combine(day, time.min, UTC).timestamp()


@dataclass(frozen=True)
class Filters:
    """Empty strings and None mean "any". `entry_point` is a name, or `integration/name` to be
    exact; `state` is a State value or ACTIVE; `agent` matches a part of the agent's name or id;
    `search` a part of the customer's id (address), name or first message text, in any case;
    `since` / `until` are the first and last days (UTC, both included) of the last activity."""

    channel: str = ""
    entry_point: str = ""
    state: str = ""
    agent: str = ""
    search: str = ""
    since: date | None = None
    until: date | None = None

    @property
    def any(self) -> bool:
        return self.scanning or self.since is not None or self.until is not None

    @property
    def scanning(self) -> bool:
        """Whether matching needs each thread's fields (the dates need only the activity scores)."""
        return bool(self.channel or self.entry_point or self.state or self.agent or self.search)

    def scores(self) -> tuple[float | str, float | str]:
        """(min, max) of the activity ZSET's scores in the date window, for ZRANGEBYSCORE."""
        low: float | str = day_start(self.since) if self.since else "-inf"
        # the last day is included: everything before the next day's first instant
        high: float | str = f"({day_start(self.until + timedelta(days=1))}" if self.until else "+inf"
        return low, high

    def query(self) -> dict[str, str]:
        """The filters as the list's query string (UI links and the REST API use the same names)."""
        values = {
            "channel": self.channel,
            "entry_point": self.entry_point,
            "state": self.state,
            "agent": self.agent,
            "q": self.search,
            "from": self.since.isoformat() if self.since else "",
            "to": self.until.isoformat() if self.until else "",
        }
        return {name: value for name, value in values.items() if value}

    def fields(self) -> tuple[str, ...]:
        """The thread hash fields `matches` reads for these filters: a search over thousands of
        threads reads only these, and the listed page's rows alone in full."""
        wanted = {
            "channel": bool(self.channel),
            "entry_point": bool(self.entry_point),
            "integration": bool(self.entry_point),
            "state": bool(self.state),
            "agent_name": bool(self.agent),
            "agent_id": bool(self.agent),
            "customer": bool(self.search),
            "customer_name": bool(self.search),
            "first_text": bool(self.search),
        }
        return tuple(name for name, needed in wanted.items() if needed)

    def matches(self, thread: Mapping[str, str]) -> bool:
        """Whether a thread (its hash fields, at least `fields()`, "" when absent) passes the filters."""
        if self.channel and thread["channel"] != self.channel:
            return False
        if self.entry_point:
            integration, _, name = self.entry_point.rpartition("/")
            if thread["entry_point"] != name or (integration and thread["integration"] != integration):
                return False
        if self.state:
            if self.state == ACTIVE:
                if not _state(thread["state"]).open:
                    return False
            elif _state(thread["state"]).value != self.state:
                return False
        if self.agent:
            needle = self.agent.casefold()
            if not any(needle in thread[name].casefold() for name in ("agent_name", "agent_id")):
                return False
        if self.search:
            needle = self.search.casefold()
            if not any(needle in thread[name].casefold() for name in ("customer", "customer_name", "first_text")):
                return False
        return True


def parse_filters(args: Mapping[str, str], channels: Sequence[str]) -> tuple[Filters, list[str]]:
    """The filters of a query string (the names `Filters.query` writes), and a sentence for each
    value that was not understood and is left out: an operator's typo narrows nothing silently
    and breaks nothing."""
    problems: list[str] = []

    def text(name: str) -> str:
        return args.get(name, "").strip()[:TEXT_FILTER_LIMIT]

    def choice(name: str, label: str, allowed: Sequence[str]) -> str:
        value = args.get(name, "").strip()
        if value and value not in allowed:
            problems.append(f"Unknown {label} {value[:40]!r}: it was left out (choose one of {', '.join(allowed)}).")
            return ""
        return value

    def day(name: str, label: str) -> date | None:
        value = args.get(name, "").strip()
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            problems.append(f"{label} {value[:40]!r} is not a date (YYYY-MM-DD): it was left out.")
            return None

    since, until = day("from", "From"), day("to", "To")
    if since and until and since > until:
        problems.append(f"From {since} is after To {until}: the dates were swapped.")
        since, until = until, since
    filters = Filters(
        channel=choice("channel", "channel", channels),
        entry_point=text("entry_point"),
        state=choice("state", "state", STATES),
        agent=text("agent"),
        search=text("q"),
        since=since,
        until=until,
    )
    return filters, problems


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
    customer_name: str | None = None
    first_text: str | None = None
    """The conversation's first message text, as kept for search (threads.FIRST_TEXT_LIMIT)."""


@dataclass(frozen=True)
class Listing:
    items: list[Summary]
    page: int
    """The page served: the one asked for, or the last one when `listing(clamp=True)` had to."""
    per_page: int
    matched: int
    """Conversations matching the filters (among the `scanned` ones when `truncated`)."""
    total: int
    """Threads known at all (the size of the activity ZSET), whatever the filters."""
    scanned: int
    """Threads examined to build this page."""
    truncated: bool
    """A filtered search stopped at SCAN_LIMIT: older conversations may match too."""

    @property
    def pages(self) -> int:
        """Pages of `matched` rows; at least 1, so an empty list is "page 1 of 1"."""
        return max(1, math.ceil(self.matched / self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def listing(
    redis: Redis,
    filters: Filters | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
    scan_limit: int = SCAN_LIMIT,
    clamp: bool = False,
) -> Listing:
    """Conversations newest activity first, one page of them. A page beyond the last is empty,
    or with `clamp` (the UI) the last page (the answer's `page` says which was served)."""
    filters = filters or Filters()
    page, per_page = max(1, page), max(1, per_page)
    low, high = filters.scores()
    pipe = redis.pipeline(transaction=False)
    pipe.zcard(keys.threads_by_activity())
    pipe.zcount(keys.threads_by_activity(), low, high)
    total, in_window = (int(n) for n in replies.execute(pipe))

    def served(matched: int) -> int:
        last = max(1, math.ceil(matched / per_page))
        return min(page, last) if clamp else page

    if not filters.scanning:
        page = served(in_window)
        scored = replies.scored(
            redis.zrevrangebyscore(
                keys.threads_by_activity(), high, low, start=(page - 1) * per_page, num=per_page, withscores=True
            )
        )
        return Listing(_summaries(redis, scored), page, per_page, in_window, total, len(scored), False)

    candidates = replies.scored(
        redis.zrevrangebyscore(keys.threads_by_activity(), high, low, start=0, num=scan_limit, withscores=True)
    )
    wanted = filters.fields()
    found: list[tuple[bytes, float]] = []
    for start in range(0, len(candidates), SCAN_BATCH):
        batch = candidates[start : start + SCAN_BATCH]
        for candidate, values in zip(batch, _hmget_each(redis, batch, wanted), strict=True):
            if filters.matches(dict(zip(wanted, values, strict=True))):
                found.append(candidate)
    page = served(len(found))
    skip = (page - 1) * per_page
    truncated = in_window > len(candidates)
    items = _summaries(redis, found[skip : skip + per_page])
    return Listing(items, page, per_page, len(found), total, len(candidates), truncated)


# KEYS: thread hashes. ARGV: field names. One HMGET per thread, answered as one reply: a pipeline of
# HMGETs costs redis-py more CPU per thread than the search itself (measured: 5,000 threads, 120 ms
# of the 160 ms a search took); one script call per batch keeps Redis busy well under a millisecond.
_HMGET_EACH = """
local rows = {}
for i, key in ipairs(KEYS) do rows[i] = redis.call('HMGET', key, unpack(ARGV)) end
return rows
"""


def _hmget_each(redis: Redis, scored: Sequence[tuple[bytes, float]], names: Sequence[str]) -> list[list[str]]:
    """The `names` fields of each thread, decoded ("" when absent), in one round trip."""
    if not scored or not names:
        return [[""] * len(names) for _ in scored]
    hmget_each = redis.register_script(_HMGET_EACH)
    answers = hmget_each(keys=[keys.thread(member.decode()) for member, _ in scored], args=list(names))
    return [[v.decode() if v else "" for v in values] for values in answers]


def _summaries(redis: Redis, scored: Sequence[tuple[bytes, float]]) -> list[Summary]:
    rows = []
    for (member, score), values in zip(scored, _hmget_each(redis, scored, _LIST_FIELDS), strict=True):
        data = dict(zip(_LIST_FIELDS, values, strict=True))
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
                customer_name=data["customer_name"] or None,
                first_text=data["first_text"] or None,
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
