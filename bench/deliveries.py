"""What an open-loop run offered the connector and what the simulator on the far side recorded.

Shared by the issue-15 benchmarks (slow_ece.py: webhooks → a slow ECE; slow_provider.py: ECE
callbacks → a slow provider). Send `index` belongs to conversation `index % conversations`, so a
conversation's sends are every `conversations`-th one, in order. The simulators stamp each arrival
with the same clock as this process (one machine); latency counts from each send's scheduled time,
so a load generator that falls behind is charged, not hidden.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from bench.loadgen import Result, open_loop


@dataclass(kw_only=True)
class Deliveries:
    """One run: what was sent and acknowledged, and when the far side recorded each send."""

    total: int
    conversations: int
    settle_seconds: float
    """Arrivals count until this long after the load ended."""
    ack: Result = field(default_factory=Result)
    scheduled: dict[int, float] = field(default_factory=dict)
    """Send index → scheduled send time (wall clock)."""
    acked_at: dict[int, float] = field(default_factory=dict)
    arrivals: dict[int, list[float]] = field(default_factory=dict)
    """Send index → every time the far side recorded it, in order."""
    load_ended: float = 0.0
    peak_in_flight: int = 0
    in_flight: list[tuple[float, int]] = field(default_factory=list)
    """(time, the far side's calls in flight then), sampled (`sampling_in_flight`)."""

    def acked(self, index: int, status: int) -> None:
        if status == 200:
            self.acked_at[index] = time.time()

    @property
    def first_arrival(self) -> dict[int, float]:
        return {i: times[0] for i, times in self.arrivals.items() if times[0] <= self.load_ended + self.settle_seconds}

    def latencies_ms(self) -> list[float]:
        return sorted((at - self.scheduled[i]) * 1000 for i, at in self.first_arrival.items())

    @property
    def delivered(self) -> int:
        return len(self.first_arrival)

    @property
    def rate(self) -> float:
        """Deliveries per second, from the first send to the last delivery."""
        arrivals = self.first_arrival.values()
        span = max(arrivals, default=0.0) - min(self.scheduled.values(), default=0.0)
        return self.delivered / span if span > 0 else 0.0

    @property
    def received_rate(self) -> float:
        """Deliveries per second as the far side received them: from its first to its last. Unlike
        `rate`, not charged the far side's own answer time once (with a fixed delay d and a load of
        T seconds, `rate` is at most the offered rate x T / (T + d) however fast the connector is)."""
        arrivals = self.first_arrival.values()
        span = max(arrivals, default=0.0) - min(arrivals, default=0.0)
        return (self.delivered - 1) / span if span > 0 else 0.0

    @property
    def mean_in_flight(self) -> float:
        """The far side's calls in flight on average from the first send to the last delivery."""
        end = max(self.first_arrival.values(), default=0.0)
        begin = min(self.scheduled.values(), default=0.0)
        values = [n for at, n in self.in_flight if begin <= at <= end]
        return sum(values) / len(values) if values else float("nan")

    @property
    def lost(self) -> int:
        return sum(1 for i in self.acked_at if i not in self.first_arrival)

    @property
    def duplicated(self) -> int:
        return sum(len(times) - 1 for times in self.arrivals.values())

    def conversation_orders(self) -> dict[int, list[int]]:
        """Conversation → its send indexes in the order the far side first recorded them."""
        first = self.first_arrival
        found: dict[int, list[int]] = {}
        for index in sorted(first, key=first.__getitem__):
            found.setdefault(index % self.conversations, []).append(index)
        return found

    @property
    def out_of_order(self) -> int:
        """Sends recorded before an earlier one of their conversation that the connector had
        acknowledged before the later one was even sent (in flight together, either order is fair)."""
        count = 0
        for order in self.conversation_orders().values():
            position = {index: p for p, index in enumerate(order)}
            for index in order:
                later = index + self.conversations  # the conversation's next send
                if later in position and position[later] < position[index]:
                    count += self.acked_at.get(index, float("inf")) <= self.scheduled[later]
        return count


def offer_and_collect(
    run: Deliveries,
    host: str,
    port: int,
    prepared: list[bytes],
    rate: float,
    collect: Callable[[], None],
    poll_seconds: float,
) -> None:
    """Send the prepared requests open loop at `rate`, then `collect()` (which refills
    `run.arrivals`) every `poll_seconds` until every acknowledged send arrived or the settle time
    is over. Requests are built beforehand: building while sending would charge the client's work
    to the connector."""
    anchor: list[float] = []

    def make(index: int) -> bytes:
        if not anchor:
            anchor.append(time.time())  # the first send starts on schedule; the others follow it
        return prepared[index]

    run.ack = open_loop(host, port, make, rate, len(prepared) / rate, run.acked)
    run.load_ended = time.time()
    run.scheduled = {i: anchor[0] + i / rate for i in range(len(prepared))}
    expected = len(run.acked_at)
    deadline = run.load_ended + run.settle_seconds
    while True:
        collect()
        if run.delivered >= expected or time.time() > deadline:
            return
        time.sleep(min(poll_seconds, max(0.0, deadline - time.time()) + 0.1))


@contextmanager
def sampling_in_flight(run: Deliveries, read: Callable[[requests.Session], int], every: float) -> Iterator[None]:
    """`read(session)` (the far side's calls in flight) every `every` seconds on a thread during the
    block: one small request each (about a millisecond of this process's time), beside the load
    generator's loop. A failed read is skipped."""
    stop = threading.Event()

    def sample() -> None:
        with requests.Session() as session:
            while not stop.wait(every):
                try:
                    count = read(session)
                except requests.RequestException:
                    continue
                run.in_flight.append((time.time(), count))

    sampler = threading.Thread(target=sample, name="in-flight-sampler", daemon=True)
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join(10)
