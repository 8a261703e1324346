"""The drain job: one thread's inbox and outbox, each in order, by whoever holds the thread's lease.

An item leaves its box only after its effect is done (`Boxes.commit`), so a worker killed
mid-item makes the next lease holder repeat that item; effects already done are recorded
(`Effects`) so the repeat skips them. Every commit renews the lease, and a holder that lost it
stops at once. A retryable failure (ECE or a provider down) parks the box's head until its retry
time, in order, while the other box keeps flowing; after the retry horizon the item goes to the
dead-letter list and the box moves on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from connector import backends, conversations, rules
from connector.backends.in_flight import IN_FLIGHT, NoTurn
from connector.channels import channel_class
from connector.channels.base import EventKind, InboundEvent
from connector.errors import PermanentError, RetryableError
from connector.http_session import CALL_LATENCY
from connector.queues import DISPATCH_BUDGET_SECONDS, DISPATCH_LINGER_SECONDS, enqueue_dispatch
from connector.relay import breaker, flow_services, flow_turn, profiles, retry, survey_turn, to_customer
from connector.relay.breaker import Breaker, Parked, service_of
from connector.runtime import Runtime, current
from connector.store import dead_letters, keys, replies, threads, unrouted
from connector.store.boxes import LEASE_LOST, TIMELINE_LIMIT, Box, Held, LeaseLost
from connector.store.effects import Effects, started
from connector.store.tallies import Counter, Histogram, Tally, counter_field

log = logging.getLogger(__name__)

TIMELINE_TEXT_LIMIT = 1000


SLOW_SECONDS = 0.05
"""A loop busy with one conversation for longer than this is waiting on a call (a turn handled
locally takes a few milliseconds)."""
WATCH_SECONDS = 0.05
"""How often a dispatch job looks at its loops."""
SLOW_CALL_SECONDS = 0.1
"""Calls out taking this long (`http_session.CALL_LATENCY.slow`: lately on average, or one open
that long now) are what the loops wait on;
faster ones (a contact center answering at once) leave the loops waiting on the CPU, where more
loops would only contend."""


def drain_ready(slot: int | None = None) -> int:
    """RQ job: drain ready threads; returns how many items were handled.

    At most `settings.dispatchers` of these run at once, each popping distinct thread ids (a thread
    popped twice is skipped by its lease). Each starts `settings.drain_threads` loops side by side
    and grows to `settings.drain_threads_max` while the work waits on slow calls (`DrainLoops`). A
    loop lingers briefly for more work, so a steady stream costs no enqueue per message; after its
    time budget the job hands over to a fresh one.
    """
    runtime = current()
    deadline = time.monotonic() + DISPATCH_BUDGET_SECONDS
    try:
        handled = DrainLoops(runtime, slot, deadline).run()
    finally:
        runtime.dispatch.retire(slot)
    # Work that arrived while every slot was taken (or after our budget) needs a dispatcher.
    if (next_slot := runtime.dispatch.claim()) is not None:
        enqueue_dispatch(runtime.redis, next_slot)
    return handled


class DrainLoops:
    """The drain loops of one dispatch job: calls in flight that follow the work, not the processes.

    Draining waits on ECE and the providers far more than it computes. With fast answers a few
    loops keep up, and more would only contend for the CPU. When calls are slow (ECE answering in
    seconds), every loop sits in one for that long: the job watches its loops every WATCH_SECONDS,
    and when none is free, some have been busy longer than SLOW_SECONDS and this process's calls
    out are slow (SLOW_CALL_SECONDS; else the loops wait on the CPU, not on calls),
    it starts one more per conversation waiting on the ready list, at most as many as are busy (up
    to `drain_threads_max`), so the calls in flight grow with the work while the latency lasts. A loop
    that finds no ready conversation for the linger time ends: the job shrinks when the work does.
    The loops still busy when a job's time is up are where the process's next job starts
    (`carried`), so the calls in flight do not fall back at every hand-over.
    Each loop drains one conversation at a time under its lease: order per conversation holds
    whatever the number of loops."""

    carried = 0
    """Loops the last job of this process still had busy at its deadline (a worker process runs
    one job at a time, in itself: rq's SimpleWorker)."""
    _threads: ThreadPoolExecutor | None = None
    """The process's drain threads, kept from job to job: a job starting hundreds of loops every
    few seconds on fresh threads spent a tenth of a worker's CPU creating them (each start waits
    for the new thread to be scheduled). Twice the loops of one job, as the loops a job left busy
    at its deadline run on beside the next job's."""
    _threads_lock = threading.Lock()

    def __init__(self, runtime: Runtime, slot: int | None, deadline: float) -> None:
        self.runtime, self.slot, self.deadline = runtime, slot, deadline
        self.most = max(1, runtime.settings.drain_threads, runtime.settings.drain_threads_max)
        self.first = min(self.most, max(1, runtime.settings.drain_threads, DrainLoops.carried))
        self._lock = threading.Lock()
        self._running = 0
        self._busy_since: dict[int, float] = {}
        self._futures: list[Future[int]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._ended_loops = 0
        self._failed = False
        self._over = threading.Event()
        """Set when every loop has ended or one failed (their futures done): the watch stops at once."""

    def run(self) -> int:
        """Run and watch the loops until each has ended or the job's time is up; returns the items
        handled by then. At the deadline the job returns at once: a loop still waiting on a slow
        call finishes that item in the background and hands its conversation back, while the next
        job already starts as many loops (`carried`), so a hand-over does not halve the calls in
        flight. Those loops end within one item; the interpreter waits for them at exit."""
        self._pool = self._thread_pool(self.most)
        self._start(self.first)
        while True:
            left = self.deadline - time.monotonic()
            if self._over.is_set() or left <= 0:
                break
            # One event, set by the loops' done callbacks, not a wait on every loop's future: with
            # hundreds of loops, a waiter registered on each every WATCH_SECONDS cost more CPU than
            # the loops' own work.
            self._over.wait(min(WATCH_SECONDS, left))
            if CALL_LATENCY.slow(SLOW_CALL_SECONDS):
                self._grow()  # the loops wait on slow calls, not on the CPU
            self._publish(force=False)
        with self._lock:
            DrainLoops.carried = len(self._busy_since)  # idle loops lingering for work do not count
            finished = [f for f in self._futures if f.done()]
            for future in self._futures:
                if not future.done():
                    future.add_done_callback(_log_failure)
        self._publish(force=True)
        return sum(f.result() for f in finished)

    @classmethod
    def _thread_pool(cls, most: int) -> ThreadPoolExecutor:
        with cls._threads_lock:
            if cls._threads is None or cls._threads._max_workers < 2 * most:  # settings of another runtime (tests)
                cls._threads = ThreadPoolExecutor(2 * most, thread_name_prefix="drain")
            return cls._threads

    def _publish(self, *, force: bool) -> None:
        """Calls in flight go to Redis for the operator's figures; a failure there never stops a drain."""
        try:
            IN_FLIGHT.publish(self.runtime.redis, self.runtime.name, force=force)
        except RedisError:
            log.debug("calls in flight not published", exc_info=True)

    def _grow(self) -> None:
        now = time.monotonic()
        if now >= self.deadline:
            return
        with self._lock:
            if len(self._busy_since) < self._running:
                return  # a loop is free: it takes the next ready conversation
            slow = sum(1 for since in self._busy_since.values() if now - since > SLOW_SECONDS)
        if slow:
            # No more than the conversations waiting for a loop: a loop started for none polls the
            # ready list until its linger ends, a Redis call and a thread wake-up for nothing (with
            # ECE answering in 2 s, eight polls per message delivered when growth only doubled).
            try:
                waiting = self.runtime.dispatch.ready_count()
            except RedisError:
                log.debug("ready list unreadable: no loop started this look", exc_info=True)
                return  # the loops' own reads of Redis fail the same way and end them
            self._start(min(slow, waiting))

    @property
    def started(self) -> int:
        """Loops this job started."""
        with self._lock:
            return len(self._futures)

    def _start(self, count: int) -> None:
        assert self._pool is not None
        started = []
        with self._lock:
            for _ in range(min(count, self.most - self._running)):
                self._running += 1
                started.append(self._pool.submit(self._loop))
            self._futures += started
        for future in started:  # outside the lock: a future already done calls back at once, here
            future.add_done_callback(self._loop_ended)

    def _loop_ended(self, future: Future[int]) -> None:
        with self._lock:
            self._ended_loops += 1
            if not future.cancelled() and future.exception() is not None:
                self._failed = True  # the job returns now and raises it from this loop's result
            over = self._failed or self._ended_loops == len(self._futures)
        if over:
            self._over.set()

    def _loop(self) -> int:
        handled = 0
        me = threading.get_ident()
        try:
            while True:
                if time.monotonic() >= self.deadline:
                    break
                thread_id = self.runtime.dispatch.next_ready(DISPATCH_LINGER_SECONDS)
                if thread_id is None:
                    break
                with self._lock:
                    self._busy_since[me] = time.monotonic()
                try:
                    handled += drain_thread(thread_id, self.runtime, self.slot, self.deadline)
                finally:
                    with self._lock:
                        del self._busy_since[me]
        finally:
            with self._lock:
                self._running -= 1
        return handled


def _log_failure(future: Future[int]) -> None:
    """A loop that outlived its job has no job to fail: its error goes to the log (its item stays
    in its box and is repeated by the next lease holder)."""
    if not future.cancelled() and (error := future.exception()) is not None:
        log.error("drain loop failed after its job ended", exc_info=error)


def drain_thread(
    thread_id: str, runtime: Runtime | None = None, slot: int | None = None, deadline: float | None = None
) -> int:
    """Handle one thread's inbox and outbox until neither has an item due, or until `deadline`
    (monotonic; the dispatch job's budget): then the thread goes back on the ready list for the
    next job, rather than holding this one past its time. Returns how many items were handled."""
    runtime = runtime or current()
    boxes = runtime.boxes
    handled = 0
    # Loop: an item appended after our last look but before our release must not be stranded,
    # since its wake-up may have found our lease and left.
    while True:
        held = boxes.acquire(thread_id, runtime.settings.lease_seconds, slot)
        if held is None:
            return handled
        try:
            handled += _drain_held(runtime, thread_id, held, deadline)
        except BaseException:
            # Items that arrived while we held the lease queued no wake-up (our release was to see
            # them): put the thread back on the ready list for them before the error goes on.
            with suppress(RedisError):  # Redis down: the sweeper re-wakes the thread once it is back
                if boxes.release(thread_id, held.token):
                    _make_ready(runtime, thread_id)
            raise
        due = boxes.release(thread_id, held.token)
        if due == 0:
            return handled
        if deadline is not None and time.monotonic() >= deadline:
            _make_ready(runtime, thread_id)
            return handled


def _make_ready(runtime: Runtime, thread_id: str) -> None:
    """Put the thread on the ready list, and queue a dispatch job if a slot is free."""
    if (slot := runtime.dispatch.make_ready(thread_id)) is not None:
        enqueue_dispatch(runtime.redis, slot)


def wake_thread(thread_id: str) -> None:
    """RQ job of earlier versions, which scheduled one per retry (kept so those still queued run);
    retries now wait in the deferred zset (`Boxes.defer`)."""
    _make_ready(current(), thread_id)


def _drain_held(runtime: Runtime, thread_id: str, held: Held, deadline: float | None = None) -> int:
    """Take turns between the boxes, one item each, so neither direction waits behind the other; a
    box whose head failed with a retryable error sits out until its retry time."""
    heads = dict(held.heads)
    now = time.time()
    for box, until in held.until.items():
        if until > now:
            heads[box] = None
    clean = set(held.clean)  # a head after a commit has no effects: the commit deleted the box's
    handled = 0
    while any(head is not None for head in heads.values()):
        for box in (Box.OUT, Box.IN):
            item = heads[box]
            if item is None:
                continue
            outcome = _handle_one(runtime, thread_id, held.token, box, item, clean=box in clean)
            clean.add(box)
            if outcome is LEASE_LOST:
                log.warning(
                    "lease lost before commit; item left for the next holder", extra={"conversation": thread_id}
                )
                return handled
            if outcome is _BACKING_OFF:
                heads[box] = None
                continue
            handled += 1
            heads[box] = outcome  # type: ignore[assignment]  # both markers are ruled out above (`is` does not narrow)
            if deadline is not None and time.monotonic() >= deadline:
                return handled  # the rest waits for the next job (drain_thread puts it back)
    return handled


def _about(thread_id: str, box: Box | None = None) -> dict[str, str]:
    return {"conversation": thread_id} if box is None else {"conversation": thread_id, "box": box.value}


class _BackingOff:
    """Marker: the head failed with a retryable error and waits for its retry time."""


_BACKING_OFF = _BackingOff()


def _handle_one(
    runtime: Runtime, thread_id: str, token: str, box: Box, item: bytes, *, clean: bool = False
) -> bytes | LeaseLost | _BackingOff | None:
    """Handle and commit one head item; the box's next head, LEASE_LOST, or _BACKING_OFF. `clean`:
    the item has no effect recorded yet (its first handling in this hold, after a commit or an
    acquire that found none)."""
    effects = Effects(runtime.redis, box, thread_id, recorded={} if clean else None)
    tally = Tally()
    try:
        if box is Box.IN:
            entry, fields = _handle_inbound(runtime, item, effects, tally)
        else:
            entry, fields = to_customer.handle_item(runtime, thread_id, item, effects, tally)
    except PermanentError as exc:
        tally = Tally()  # what the item did before failing is undone with it
        tally.count(Counter.ERRORS, kind="permanent", box=box.value)
        tally.count(Counter.DEAD_LETTERS, box=box.value, reason="permanent")
        letter = dead_letters.add(runtime.redis, thread_id, box, item, exc.reason)
        log.error(
            "item dead-lettered: permanent failure",
            extra={**_about(thread_id, box), "dead_letter": letter.id, "reason": exc.reason},
        )
        entry = {"at": time.time(), "kind": "dead_letter", "box": box.value, "reason": exc.reason, "id": letter.id}
        fields = None
    except NoTurn as exc:
        _wait_turn(runtime, thread_id, box, exc)
        return _BACKING_OFF
    except RetryableError as exc:
        decision = retry.record_failure(
            runtime.redis, thread_id, box, item, runtime.settings, exc.wait, time.time(), not_after=exc.retry_at
        )
        if isinstance(exc, flow_services.FlowCallRetry) and flow_services.gives_up(exc, decision):
            # A flow step's service stays down: the flow goes on without it (on_fail, or the bot's
            # handover), which the item's next handling does; the call is not made again.
            flow_services.give_up(effects, exc, decision.attempts)
            return _handle_one(runtime, thread_id, token, box, item)
        if not decision.give_up:
            _note_retry(runtime, thread_id, box, exc, decision)
            return _BACKING_OFF
        tally = Tally()
        tally.count(Counter.ERRORS, kind=_error_kind(exc), box=box.value)
        tally.count(Counter.DEAD_LETTERS, box=box.value, reason="retries_exhausted")
        letter = dead_letters.add(
            runtime.redis, thread_id, box, item, f"retries exhausted: {exc}", attempts=decision.attempts
        )
        log.error(
            "item dead-lettered after retries",
            extra={
                "conversation": thread_id,
                "box": box.value,
                "dead_letter": letter.id,
                "attempts": decision.attempts,
            },
        )
        entry = {"at": time.time(), "kind": "dead_letter", "box": box.value, "reason": letter.reason, "id": letter.id}
        fields = None
    return runtime.boxes.commit(thread_id, token, item, entry, fields, runtime.settings.lease_seconds, box, tally)


def _error_kind(exc: RetryableError) -> str:
    return "outage" if exc.outage else "throttled"


def _handle_inbound(
    runtime: Runtime, item: bytes, effects: Effects, tally: Tally
) -> tuple[dict[str, Any], dict[str, str] | None]:
    try:
        event = InboundEvent.from_json(item)
    except (ValueError, TypeError, KeyError):
        # An unreadable item cannot be retried into health; record it, never block the thread.
        log.error("unreadable inbox item dropped")
        return {"at": time.time(), "kind": "error", "note": "unreadable item"}, None
    return handle_event(runtime, event, effects, tally)


def _wait_turn(runtime: Runtime, thread_id: str, box: Box, exc: NoTurn) -> None:
    """The integration's calls are all taken in this worker: the box sits out briefly, not counted
    as a failed attempt (nothing failed), and the loop takes another conversation meanwhile."""
    until = time.time() + (exc.wait or 1.0)
    log.info("waiting for a call in flight to end", extra={"conversation": thread_id, "box": box.value})
    pipe = runtime.redis.pipeline(transaction=False)
    retry.sit_out(pipe, thread_id, box, until)
    runtime.dispatch.defer(thread_id, box, until, client=pipe)
    replies.execute(pipe)


def _note_retry(runtime: Runtime, thread_id: str, box: Box, exc: RetryableError, decision: retry.RetryDecision) -> None:
    log.warning(
        "delivery failed; will retry",
        extra={
            "conversation": thread_id,
            "box": box.value,
            "attempts": decision.attempts,
            "wait_seconds": round(decision.wait, 2),
            "error": str(exc),
        },
    )
    entry = {
        "at": time.time(),
        "kind": "retry",
        "box": box.value,
        "attempt": decision.attempts,
        "wait": round(decision.wait, 2),
        "error": str(exc)[:300],
    }
    pipe = runtime.redis.pipeline(transaction=False)
    pipe.rpush(keys.timeline(thread_id), json.dumps(entry))
    pipe.ltrim(keys.timeline(thread_id), -TIMELINE_LIMIT, -1)
    runtime.dispatch.defer(thread_id, box, decision.until, client=pipe)
    if exc.service is not None:
        breaker.park(pipe, exc.service, thread_id, time.time())
    # A failed attempt is counted when it happens: the item is not committed, so it has no tally.
    pipe.hincrbyfloat(keys.tallies(), counter_field(Counter.RETRIES, box=box.value), 1)
    pipe.hincrbyfloat(keys.tallies(), counter_field(Counter.ERRORS, kind=_error_kind(exc), box=box.value), 1)
    replies.execute(pipe)


def handle_event(
    runtime: Runtime, event: InboundEvent, effects: Effects | None = None, tally: Tally | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Apply one customer event to its thread; returns the timeline entry and the thread's fields,
    which the commit writes in the same atomic step that takes the item out of the inbox."""
    redis = runtime.redis
    config = runtime.config
    thread = threads.load(redis, event.thread_id)
    if not thread.channel:
        thread.channel, thread.asset, thread.customer = event.channel, event.asset, event.customer
    surveyed = survey_turn.take(runtime, thread, event)
    if surveyed is not None and not surveyed.passed_on:
        return _survey_answer(thread, event, surveyed), threads.fields_of(thread)

    decision: rules.Decision | None = None
    first_language: str | None = None
    if event.kind.routable and not thread.state.open:
        channel = channel_class(event.channel)
        if rules.needs_language(config.rules):  # detection only when a rule asks (about 0.1 ms)
            known = {**thread.details, **event.details}
            first_language = rules.customer_language(event.text, known, event.channel, thread.customer)
        probe = rules.Probe(
            channel=event.channel,
            event=channel.message_event if channel else "incoming_message",
            asset=event.asset,
            text=event.text,
            today=datetime.fromtimestamp(event.timestamp or time.time(), UTC).date(),
            language=first_language,
        )
        decision = rules.match(config.rules, probe, config.default_rule)
    transition = conversations.on_customer_event(
        thread.state, event.kind, routed=None if decision is None else decision.action is not None
    )
    effects = effects or Effects(redis, Box.IN, event.thread_id)
    if transition.start_new and _delivered_before_the_end(thread, event, effects):
        entry = _inbound_entry(thread, event)
        entry["note"] = "repeated after a crash: it reached the conversation that has ended since; none started for it"
        return entry, threads.fields_of(thread)

    if transition.start_new:
        thread.sequence += 1
        thread.started_at = event.timestamp
        thread.integration = decision.action.forward_to if decision and decision.action else None
        thread.entry_point = decision.action.entry_point if decision and decision.action else None
        thread.rule = decision.rule if decision else None
        thread.remote_id = thread.agent_id = thread.agent_name = None
        thread.queued_at = thread.unavailable_until = thread.typing_at = None
        thread.first_text = None
        thread.flow, thread.attributes = None, {}
        thread.locale, thread.language = None, first_language
        if decision and decision.action is None:
            _record_unrouted(runtime, event, decision)
    if event.kind.routable:
        details = event.details
        if transition.start_new and transition.forward:
            # The provider's profile (Messenger) before the contact center hears of the customer: it
            # fills what the event does not say, never what it does (relay/profiles.py).
            details = threads.merge_details(profiles.customer_profile(runtime, event), event.details)
        thread.details = threads.merge_details(thread.details, details)
        thread.last_inbound_at = max(thread.last_inbound_at or 0.0, event.timestamp)
        if event.text and not thread.first_text:
            # What operators search the conversation list by: the opening message's text, or the
            # first text after an opening attachment.
            thread.first_text = event.text[: threads.FIRST_TEXT_LIMIT]
    thread.state = transition.state

    if event.kind.routable or event.kind is EventKind.CLOSE:
        thread.last_message_id = event.provider_id
    note, flow_entry = _forward_or_flow(runtime, thread, event, transition, decision, effects)
    if tally is not None and transition.forward and event.kind.routable and _with_contact_center(thread):
        integration = thread.integration or ""
        tally.count(Counter.MESSAGES_TO_CONTACT_CENTER, integration=integration)
        if event.received_at is not None:
            tally.observe(Histogram.WEBHOOK_TO_CONTACT_CENTER, time.time() - event.received_at, integration=integration)
    log.info(
        "inbound event handled",
        extra={
            "conversation": thread.conversation_id,
            "kind": event.kind.value,
            "provider_id": event.provider_id,
            "state": thread.state.value,
            "rule": thread.rule,
        },
    )
    entry = _inbound_entry(thread, event)
    if event.attachments:
        entry["attachments"] = len(event.attachments)
    if event.status:
        entry["status"] = event.status
    if transition.start_new:
        entry["routing"] = {
            "rule": thread.rule,
            "integration": thread.integration,
            "entry_point": thread.entry_point,
            "misses": [{"rule": m.rule, "reason": m.reason} for m in decision.misses] if decision else [],
        }
    if flow_entry:
        entry["flow"] = flow_entry
    if surveyed is not None:
        entry["survey"] = surveyed.entry
        note = "; ".join(n for n in (surveyed.note, note) if n) or None
    if note:
        entry["note"] = note
    return entry, threads.fields_of(thread)


def _delivered_before_the_end(thread: threads.Thread, event: InboundEvent, effects: Effects) -> bool:
    """A repeat of an item whose handling put the message in the thread's conversation and died
    before its commit, while that conversation ended (the agent closed it): the item is done.
    Starting the next conversation for it would open an empty one at the contact center and welcome
    the customer again. An item whose first handling started the next conversation itself (its start
    is recorded) goes on, and adopts it."""
    if effects.get(started(thread.sequence + 1)) is not None:
        return False
    return effects.reached_contact_center(event.provider_id, len(event.attachments))


def _inbound_entry(thread: threads.Thread, event: InboundEvent) -> dict[str, Any]:
    """What every timeline entry of a customer event says: when, which event, the conversation and the
    state it left, and the text (cut to TIMELINE_TEXT_LIMIT); the caller adds what its path decided."""
    entry: dict[str, Any] = {
        "at": time.time(),
        "direction": "in",
        "kind": event.kind.value,
        "provider_id": event.provider_id,
        "conversation": thread.conversation_id,
        "state": thread.state.value,
    }
    if event.text:
        entry["text"] = event.text[:TIMELINE_TEXT_LIMIT]
    return entry


def _survey_answer(thread: threads.Thread, event: InboundEvent, turn: survey_turn.SurveyTurn) -> dict[str, Any]:
    """The timeline entry of a customer event the post-chat survey took (the thread stays closed)."""
    if event.kind.routable:
        thread.last_inbound_at = max(thread.last_inbound_at or 0.0, event.timestamp)
        thread.last_message_id = event.provider_id  # the thanks goes out in the messaging window this opens
    entry = _inbound_entry(thread, event)
    entry["survey"] = turn.entry
    if turn.note:
        entry["note"] = turn.note
    return entry


def _forward_or_flow(
    runtime: Runtime,
    thread: threads.Thread,
    event: InboundEvent,
    transition: conversations.Transition,
    decision: rules.Decision | None,
    effects: Effects,
) -> tuple[str | None, dict[str, Any] | None]:
    """The event to the contact center, unless the conversation is in a flow (or begins one: the
    rule's flow, else its entry point's), which takes it instead; when the flow ends by routing, the
    events the customer sent during it go on to the entry point in order (the first one starts the
    conversation there, so a customer in a flow costs the contact center nothing before it ends).
    Returns the timeline's note and its `flow` entry."""
    if not transition.forward:
        return None, None
    action = decision.action if decision is not None and transition.start_new else None
    turn = flow_turn.take(runtime, thread, event, runtime.config.flow_for(action) if action else None, effects)
    if turn is None:
        return _forward(runtime, thread, event, transition.start_new, effects), None
    notes = [turn.note] if turn.note else []
    for index, held in enumerate(turn.route):
        if index and thread.remote_id is None:
            break  # not started (no agents, disabled): the rest stays on the timeline only
        if routed := _forward(runtime, thread, held, index == 0, effects):
            notes.append(routed)
    return "; ".join(notes) or None, turn.entry


def _forward(
    runtime: Runtime, thread: threads.Thread, event: InboundEvent, start: bool, effects: Effects
) -> str | None:
    if thread.integration is None:
        return None
    integration = runtime.config.integration(thread.integration)
    if integration is None:
        return f"integration {thread.integration!r} is no longer configured"
    backend = backends.backend_for(integration)
    if backend is None:
        return f"waiting: no backend for integration type {integration.type!r} is installed"
    circuit = Breaker(runtime.redis, service_of(integration), runtime.settings.retry_max_seconds)
    if (refused := circuit.admit()) is not None:
        raise Parked(circuit.service, refused.until, time.time())
    try:
        note = backend.deliver(runtime, integration, thread, event, start=start, effects=effects)
    except NoTurn:
        raise  # nothing was asked of the contact center: the breaker hears nothing
    except RetryableError as exc:
        if not exc.outage:
            circuit.succeeded()  # it answered (429, 409): reachable
            raise
        exc.service = circuit.service  # the thread waits for the service: woken when it is back
        exc.retry_at = circuit.failed() or None  # it opened the breaker: it probes
        raise
    except PermanentError:
        circuit.succeeded()  # it answered: reachable
        raise
    circuit.succeeded()
    return note


def _with_contact_center(thread: threads.Thread) -> bool:
    """The customer's message now sits in a conversation the contact center holds (not discarded by
    the unavailable policy, not refused as disabled)."""
    return thread.remote_id is not None and thread.state in (conversations.State.QUEUED, conversations.State.ASSIGNED)


def _record_unrouted(runtime: Runtime, event: InboundEvent, decision: rules.Decision) -> None:
    log.warning(
        "no rule matched; message not routed",
        extra={"conversation": event.thread_id, "channel": event.channel, "asset": event.asset},
    )
    record = {
        "at": time.time(),
        "thread": event.thread_id,
        "channel": event.channel,
        "asset": event.asset,
        "kind": event.kind.value,
        "misses": [{"rule": m.rule, "reason": m.reason} for m in decision.misses],
    }
    unrouted.record(runtime.redis, record)
