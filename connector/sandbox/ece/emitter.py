"""Delivers the simulator's agent events to the registered callback URL, the way ECE does, plus the
faults a connector must survive.

ECE POSTs `{"message": [...]}` with 1 to 1000 events and the configured Authorization (docs/protocols/ece.md,
"Callback webhook"). A batch that fails (non-2xx or no connection) is kept and sent again, same
items, same order, with backoff; nothing behind it goes first. Test switches produce what the
connector must be idempotent and order-proof against: duplicates, a reversed batch, and held events
released together.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests

from connector.sandbox.ece.model import EceModel, Event, SimError

log = logging.getLogger(__name__)

DEFAULT_BATCH = 50  # without batch_size: whatever is pending, up to this many
MAX_BATCH = 1000  # docs/protocols/ece.md, "Callback webhook": 1 to 1000 messages per request
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 5.0
POST_TIMEOUT = 5.0


@dataclass
class Delivery:
    """One POST attempt: what was sent and how the receiver answered (None: no connection)."""

    at: float
    url: str
    events: list[Event]
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class _Switches:
    batch_size: int | None = None
    duplicate_next: int = 0
    reverse_next_batch: bool = False
    paused: bool = False
    pending: deque[Event] = field(default_factory=deque)


class CallbackEmitter:
    """A thread that drains pending events to the callback URL. `enqueue` is the model's listener."""

    def __init__(self, model: EceModel) -> None:
        self.model = model
        self.delivered: list[Delivery] = []
        self._s = _Switches()
        self._cond = threading.Condition()
        self._stopping = False
        self._in_flight = False
        self._thread: threading.Thread | None = None
        self._http = requests.Session()

    # -- switches -------------------------------------------------------------------------------

    def set_batch_size(self, size: int | None) -> None:
        if size is not None and not 1 <= int(size) <= MAX_BATCH:
            raise SimError(400, f"batch_size must be 1..{MAX_BATCH} or null (whatever is pending, up to 50)")
        with self._cond:
            self._s.batch_size = None if size is None else int(size)

    def duplicate_next(self, n: int) -> None:
        """The next `n` events taken for delivery go out twice (same batch, or the next if full)."""
        if n < 0:
            raise SimError(400, "duplicate_next must be 0 or more")
        with self._cond:
            self._s.duplicate_next += n

    def reverse_next_batch(self) -> None:
        with self._cond:
            self._s.reverse_next_batch = True

    def pause(self) -> None:
        """Hold events (a failing batch goes back to the front) until `resume`."""
        with self._cond:
            self._s.paused = True

    def resume(self) -> None:
        with self._cond:
            self._s.paused = False
            self._cond.notify_all()

    def options(self) -> dict[str, Any]:
        with self._cond:
            return {
                "batch_size": self._s.batch_size,
                "duplicate_next": self._s.duplicate_next,
                "reverse_next_batch": self._s.reverse_next_batch,
                "paused": self._s.paused,
                "pending": len(self._s.pending),
                "in_flight": self._in_flight,
            }

    @property
    def pending(self) -> list[Event]:
        with self._cond:
            return list(self._s.pending)

    # -- queue ----------------------------------------------------------------------------------

    def enqueue(self, events: list[Event]) -> None:
        with self._cond:
            self._s.pending.extend(events)
            self._cond.notify_all()

    def wake(self) -> None:
        """Re-check now (e.g. the callback URL was just configured)."""
        with self._cond:
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once nothing is pending or in flight (paused events count as pending)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._s.pending or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def _take_batch(self) -> list[Event]:
        """Called with the condition held and events pending."""
        s = self._s
        limit = s.batch_size or min(len(s.pending), DEFAULT_BATCH)
        batch: list[Event] = []
        while s.pending and len(batch) < limit:
            event = s.pending.popleft()
            batch.append(event)
            if s.duplicate_next > 0:
                s.duplicate_next -= 1
                if len(batch) < limit:
                    batch.append(event)
                else:
                    s.pending.appendleft(event)
        if s.reverse_next_batch:
            s.reverse_next_batch = False
            batch.reverse()
        return batch

    # -- thread ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._http = requests.Session()
        self._thread = threading.Thread(target=self._run, name="ece-sim-emitter", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._http.close()

    def _run(self) -> None:
        batch: list[Event] = []
        backoff = FIRST_BACKOFF
        while True:
            # Read the model outside the condition: the model calls `enqueue` under its own lock.
            has_url = self.model.callback()[0] is not None
            with self._cond:
                if self._stopping:
                    return
                if batch and self._s.paused:
                    # Paused mid-retry: the batch waits at the front, its order intact.
                    self._s.pending.extendleft(reversed(batch))
                    batch, self._in_flight = [], False
                    self._cond.notify_all()
                if not batch:
                    if self._s.paused or not self._s.pending or not has_url:
                        self._cond.wait(0.5)
                        continue
                    batch = self._take_batch()
                    backoff = FIRST_BACKOFF
                self._in_flight = True
            if self._post(batch):
                with self._cond:
                    batch, self._in_flight = [], False
                    self._cond.notify_all()
                continue
            with self._cond:
                self._cond.wait_for(lambda: self._stopping, timeout=backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _post(self, batch: list[Event]) -> bool:
        url, auth = self.model.callback()
        if url is None:
            return False
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        basic: tuple[str, str] | None = None
        if auth.get("type") == "bearer":
            headers["Authorization"] = f"Bearer {auth['token']}"
        elif auth.get("type") == "basic":
            basic = (auth["username"], auth["password"])
        record = Delivery(at=time.time(), url=url, events=list(batch), status=None)
        try:
            answer = self._http.post(url, json={"message": batch}, headers=headers, auth=basic, timeout=POST_TIMEOUT)
            record.status = answer.status_code
        except requests.RequestException as exc:
            record.error = str(exc)
        with self._cond:
            self.delivered.append(record)
            del self.delivered[:-5000]
        if not record.ok:
            log.info("ece sandbox: callback delivery failed, retrying", extra={"status": record.status, "url": url})
        return record.ok
