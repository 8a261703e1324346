"""Counters and latency histograms kept in Redis, for `/metrics`.

Every process (gunicorn's, the workers', on any host) adds to the same figures, so a scrape of any
web process answers the same, and a restart loses nothing. Where a count belongs to a step that is
already atomic it is written in that step: the intake counts an accepted message in its append
script, the drain counts what an item did in the script that commits the item. A message is then
counted exactly when it is handled: a crash before the commit counts nothing, and the repeat counts
once.

One HASH (`keys.tallies`) holds them all; a field is `name|label=value,...` for a counter, and
`name|label=value,...|le` for a histogram's bucket (`le` is the bucket's upper bound, `sum` and
`count` its totals). Buckets are stored per bucket and summed into Prometheus' cumulative form when
read. Label values are names (channel, integration, box), never free text, so they hold no `|`, `,`
or `=`.

Messages per minute and channel (the overview's charts) are counted in the same steps, into one
HASH per minute (`keys.traffic`, fields `in|<channel>` and `out|<channel>`) that expires after
MINUTES_KEPT minutes: one more HINCRBY in the script that runs anyway. "In" counts the customer
messages a chat is about (messages and button replies), not typing, receipts or closes; "out" is
`connector_messages_out` (every part sent), so the two figures never disagree.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds (seconds) of the latency histograms: a relay answers in milliseconds; a contact center
that is down keeps a message minutes."""


class Counter(StrEnum):
    MESSAGES_IN = "connector_messages_in"
    """Customer events accepted from a provider (duplicates not counted); label channel."""
    MESSAGES_TO_CONTACT_CENTER = "connector_messages_to_contact_center"
    """Customer messages delivered to a contact center; label integration."""
    MESSAGES_OUT = "connector_messages_out"
    """Messages sent to customers (agents' and system messages, each part counted); labels channel, integration."""
    RETRIES = "connector_retries"
    """Items that failed with a passing error and wait for a retry; label box (in / out)."""
    DEAD_LETTERS = "connector_dead_letters"
    """Items moved to the dead letters; labels box, reason (permanent, retries_exhausted)."""
    ERRORS = "connector_errors"
    """Failed calls by kind: outage (no connection, timeout, 5xx), throttled (429, 409), permanent,
    window_closed; label box."""


class Histogram(StrEnum):
    WEBHOOK_TO_CONTACT_CENTER = "connector_webhook_to_contact_center_seconds"
    """From the webhook's acknowledgement to the contact center's acceptance; label integration."""
    CONTACT_CENTER_TO_PROVIDER = "connector_contact_center_to_provider_seconds"
    """From the contact center's callback to the provider's acceptance of the send; label channel."""


class Traffic(StrEnum):
    """A direction of the per-minute message counts."""

    IN = "in"
    OUT = "out"


MINUTES_KEPT = 60
"""Minutes of per-minute counts kept: the overview charts the last hour."""
TRAFFIC_TTL_SECONDS = (MINUTES_KEPT + 2) * 60
"""A minute's HASH outlives the window by two minutes, so the oldest minute shown is whole."""
TRAFFIC_OF: Mapping[Counter, Traffic] = {Counter.MESSAGES_OUT: Traffic.OUT}
"""Counters that are also counted per minute (by their `channel` label); MESSAGES_IN is counted at
the intake, where the event's kind says whether it is a message (`traffic_field`)."""


def minute_of(at: float) -> int:
    """The minute (unix seconds // 60) a moment falls in: a per-minute HASH's number."""
    return int(at // 60)


def traffic_field(direction: Traffic, channel: str) -> str:
    return f"{direction.value}|{channel}"


HELP: Mapping[str, str] = {
    **{metric.value: " ".join((metric.__doc__ or "").split()) for metric in Counter},
    **{metric.value: " ".join((metric.__doc__ or "").split()) for metric in Histogram},
}


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{name}={value}" for name, value in sorted(labels.items()))


def counter_field(metric: Counter, **labels: str) -> str:
    return f"{metric.value}|{_labels(labels)}"


@dataclass
class Tally:
    """The counts one handled item adds; written with the item's commit (`Boxes.commit`)."""

    amounts: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    traffic: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """Per-minute fields (`traffic_field`) of the minute the item is committed in (whole messages)."""

    def count(self, metric: Counter, amount: float = 1, **labels: str) -> None:
        self.amounts[counter_field(metric, **labels)] += amount
        if metric in TRAFFIC_OF:
            self.traffic[traffic_field(TRAFFIC_OF[metric], labels.get("channel", ""))] += amount

    def observe(self, metric: Histogram, seconds: float, **labels: str) -> None:
        seconds = max(0.0, seconds)
        index = bisect.bisect_left(BUCKETS, seconds)
        bound = repr(BUCKETS[index]) if index < len(BUCKETS) else "+Inf"
        base = f"{metric.value}|{_labels(labels)}"
        self.amounts[f"{base}|{bound}"] += 1
        self.amounts[f"{base}|sum"] += seconds
        self.amounts[f"{base}|count"] += 1

    def pairs(self) -> list[tuple[str, float]]:
        return [(name, amount) for name, amount in self.amounts.items() if amount]

    def traffic_pairs(self) -> list[tuple[str, int]]:
        return [(name, int(amount)) for name, amount in self.traffic.items() if amount]


@dataclass(frozen=True)
class CounterSample:
    metric: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class HistogramSample:
    metric: str
    labels: dict[str, str]
    buckets: list[tuple[str, float]]
    """Cumulative, as Prometheus wants them: (upper bound, observations at or below), +Inf last."""
    total: float


def read(raw: Mapping[bytes, bytes]) -> tuple[list[CounterSample], list[HistogramSample]]:
    """The stored HASH as samples; fields of an unknown shape (an older version's) are skipped."""
    counters: list[CounterSample] = []
    histograms: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for key, value in raw.items():
        parts = key.decode().split("|")
        amount = float(value)
        if len(parts) == 2 and parts[0] in HELP:
            counters.append(CounterSample(parts[0], _parse_labels(parts[1]), amount))
        elif len(parts) == 3 and parts[0] in HELP:
            histograms[(parts[0], parts[1])][parts[2]] = amount
    samples = []
    for (metric, labels), fields in sorted(histograms.items()):
        running, buckets = 0.0, []
        for bound in [*map(repr, BUCKETS), "+Inf"]:
            running += fields.get(bound, 0.0)
            buckets.append((bound, running))
        samples.append(HistogramSample(metric, _parse_labels(labels), buckets, fields.get("sum", 0.0)))
    return sorted(counters, key=lambda c: (c.metric, sorted(c.labels.items()))), samples


def _parse_labels(text: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in text.split(",") if "=" in pair)


@dataclass(frozen=True)
class TrafficMinute:
    """The messages of one minute: (direction, channel) → count."""

    minute: int
    counts: dict[tuple[Traffic, str], int]


def read_traffic(minutes: Sequence[int], stored: Sequence[Mapping[bytes, bytes]]) -> list[TrafficMinute]:
    """Each minute's stored HASH (empty when nothing was counted) as counts; fields of an unknown
    shape are skipped."""
    found = []
    for minute, raw in zip(minutes, stored, strict=True):
        counts: dict[tuple[Traffic, str], int] = {}
        for key, value in raw.items():
            direction, _, channel = key.decode().partition("|")
            if direction in (Traffic.IN.value, Traffic.OUT.value) and channel:
                counts[(Traffic(direction), channel)] = int(float(value))
        found.append(TrafficMinute(minute, counts))
    return found
