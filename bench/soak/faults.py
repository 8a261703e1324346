"""The fault schedule: what goes wrong when, run beside the load, each fault recorded with its
start and end (the report's "during faults" latencies and recovery times come from these records).

Two kinds of entries: timed faults (`Timed`: at t seconds from the start, for d seconds) and
periodic kills (`Every`: every n seconds a kill -9 of a random pick among roles). Duplicate and late
webhook deliveries are the load's own (load.py), counted there.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from bench.soak.stack import SoakStack


@dataclass
class FaultRecord:
    kind: str
    start: float
    end: float
    detail: str = ""


@dataclass(frozen=True)
class Timed:
    at: float
    kind: str
    """redis_sigkill | ece_refused | ece_5xx | ece_slow | provider_failures | web_kill9"""
    seconds: float = 0.0


@dataclass(frozen=True)
class Every:
    seconds: float
    roles: str = "workers+listener"
    """workers+listener: a random worker or the listener; web: a gunicorn worker process"""
    first_at: float = 2.0


@dataclass
class Schedule:
    timed: list[Timed]
    periodic: list[Every]
    repeat_every: float | None = None
    """The timed faults start over every so many seconds until the load ends (None: once)."""

    @classmethod
    def soak(cls, ece_down_seconds: float = 60.0, kill_every: float = 4.0) -> Schedule:
        """`make soak`: issue 17 §1's faults in a cycle that repeats while the load runs: Redis
        SIGKILLed twice, ECE refusing for `ece_down_seconds`, then answering 503 for 15 s, then 2 s
        late for 15 s, providers failing 30 % of sends for 40 s; a worker or the listener killed -9
        every `kill_every` seconds and a web process every 15 s throughout."""
        d = ece_down_seconds
        timed = [
            Timed(5.0, "redis_sigkill"),
            Timed(10.0, "ece_refused", d),
            Timed(10.0 + d, "ece_5xx", 15),
            Timed(25.0 + d, "ece_slow", 15),
            Timed(50.0 + d, "provider_failures", 40),
            Timed(95.0 + d, "redis_sigkill"),
        ]
        return cls(timed, [Every(kill_every), Every(15.0, "web", first_at=7.0)], repeat_every=120.0 + d)

    @classmethod
    def light(cls) -> Schedule:
        """tests/e2e/test_soak.py: one of each, in under a minute of load."""
        timed = [
            Timed(3.0, "provider_failures", 12),
            Timed(6.0, "redis_sigkill"),
            Timed(9.0, "web_kill9"),
            Timed(22.0, "web_kill9"),
            Timed(12.0, "ece_refused", 4),
            Timed(16.0, "ece_5xx", 3),
            Timed(19.0, "ece_slow", 3),
            Timed(26.0, "redis_sigkill"),
        ]
        return cls(timed, [Every(7.0, first_at=4.0)])


@dataclass
class FaultRunner:
    stack: SoakStack
    schedule: Schedule
    seed: int = 1
    busy: Callable[[], bool] = lambda: True
    """Whether a webhook is in flight now: a web process kill waits (up to 5 s) for one."""
    records: list[FaultRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> FaultRunner:
        self.t0 = time.time()
        self.rng = random.Random(self.seed)
        for timed in self.schedule.timed:
            self._spawn(functools.partial(self._timed, timed))
        for every in self.schedule.periodic:
            self._spawn(functools.partial(self._periodic, every))
        return self

    def stop(self) -> None:
        """No new faults; the ones under way end now (ECE and providers back to normal)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for record in self.records:
            found[record.kind] = found.get(record.kind, 0) + 1
        return found

    def _spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True, name="soak-fault")
        self._threads.append(thread)
        thread.start()

    def _wait_until(self, offset: float) -> bool:
        """Sleep until t0 + offset; False when the run stopped first."""
        return not self._stop.wait(max(0.0, self.t0 + offset - time.time()))

    def _record(self, kind: str, start: float, detail: str = "") -> None:
        with self._lock:
            self.records.append(FaultRecord(kind, start, time.time(), detail))

    def _timed(self, timed: Timed) -> None:
        at = timed.at
        while self._wait_until(at):
            try:
                self._inject(timed)
            except Exception as exc:  # a fault that could not be injected is reported
                self.errors.append(f"{timed.kind} at {at:.0f} s: {type(exc).__name__}: {exc}")
            if self.schedule.repeat_every is None:
                return
            at += self.schedule.repeat_every

    def _inject(self, timed: Timed) -> None:
        start = time.time()
        stack = self.stack
        control = f"{stack.control_url}/failures"
        if timed.kind == "web_kill9":
            self._kill_web()
        elif timed.kind == "redis_sigkill":
            stack.kill_redis()
            self._record(timed.kind, start, f"durability {stack.durability}")
        elif timed.kind == "ece_refused":
            stack.ece_refuser.refuse()
            self._stop.wait(timed.seconds)
            stack.ece_refuser.accept()
            self._record(timed.kind, start, getattr(stack.ece_refuser, "kind", ""))
        elif timed.kind == "ece_5xx":
            requests.post(control, json={"down": "503"}, timeout=10).raise_for_status()
            self._stop.wait(timed.seconds)
            requests.post(control, json={"down": None}, timeout=10).raise_for_status()
            self._record(timed.kind, start, "every ECE API call answers 503")
        elif timed.kind == "ece_slow":
            requests.post(control, json={"delay_seconds": 2}, timeout=10).raise_for_status()
            self._stop.wait(timed.seconds)
            requests.post(control, json={"delay_seconds": 0}, timeout=10).raise_for_status()
            self._record(timed.kind, start, "every ECE API call answers 2 s late")
        elif timed.kind == "provider_failures":
            stack.provider_failures.set(0.3, (500, 503, 429), retry_after=1, seed=self.seed)
            self._stop.wait(timed.seconds)
            stack.provider_failures.set(0.0)
            self._record(
                timed.kind, start, f"30 % of sends: 500, 503, 429 + Retry-After 1 ({stack.provider_failures.kind})"
            )
        else:
            raise ValueError(f"unknown fault {timed.kind!r}")

    def _periodic(self, every: Every) -> None:
        if not self._wait_until(every.first_at):
            return
        while not self._stop.is_set():
            try:
                self._kill_one(every)
            except Exception as exc:
                self.errors.append(f"kill -9 of {every.roles}: {type(exc).__name__}: {exc}")
            if self._stop.wait(every.seconds):
                return

    def _kill_one(self, every: Every) -> None:
        start = time.time()
        if every.roles == "web":
            self._kill_web()
            return
        name = self.rng.choice([n for n in self.stack.roles if n.startswith("worker") or n == "listener"])
        pid = self.stack.kill9(name)
        role = self.stack.roles[name]
        while not self._stop.is_set() and (role.process is None or role.process.pid == pid):
            time.sleep(0.05)  # until the watcher has started it again
        self._record(f"{'worker' if name.startswith('worker') else 'listener'}_kill9", start, f"{name} pid {pid}")

    def _kill_web(self) -> None:
        """kill -9 of one gunicorn worker process while a webhook is in flight (mid-request)."""
        deadline = time.monotonic() + 5
        while not self.busy() and time.monotonic() < deadline:
            time.sleep(0.002)
        start = time.time()
        pid = self.stack.kill9_web_process(self.rng)
        self._wait_web()
        self._record("web_kill9", start, f"pid {pid}")

    def _wait_web(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                if requests.get(f"{self.stack.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
