"""`GET /metrics`: Prometheus exposition (prometheus-client), computed from Redis at scrape time.

Every figure lives in Redis, so any web process answers the same and a restart loses nothing:
gauges (backlog, stranded conversations, unrouted messages, RQ queues, breakers, live workers, and
with media blending the agents' states) are read from the keys the connector works with; counters
and latency histograms are the tallies every process adds to (store/tallies.py). A scrape costs two
pipelined round trips (fixed keys and tallies, then the per-conversation and per-worker keys the
first one named), plus the agent registry's own when blending is configured, and the backpressure
reading (operations/backpressure.py, itself cached for two seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from redis import Redis
from rq import Queue, Worker

from connector import queues
from connector.config.model import Integration
from connector.health import WORKER_STALE_SECONDS
from connector.operations import backpressure
from connector.relay.breaker import service_of
from connector.runtime import Runtime
from connector.store import keys, replies, tallies

blueprint = Blueprint("metrics", __name__)

MetricSource = Callable[[Redis], Iterable[Metric]]
_sources: list[MetricSource] = []


def register_source(source: MetricSource) -> None:
    """Add metric families from another module (the blending module's agent gauges)."""
    if source not in _sources:
        _sources.append(source)


class RedisCollector(Collector):
    """The connector's figures as Prometheus families, read from Redis at each scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        redis = self.runtime.redis
        integrations = list(self.runtime.config.integrations)
        first = redis.pipeline(transaction=False)
        first.smembers(keys.active_inboxes())
        first.llen(keys.unrouted())
        for name in queues.ALL:
            first.llen(Queue.redis_queue_namespace_prefix + name)
        for integration in integrations:
            first.hget(keys.breaker(service_of(integration)), "open_until")
            first.zcard(keys.parked(service_of(integration)))
        first.smembers(Worker.redis_workers_keys)
        first.hgetall(keys.tallies())
        answers = replies.execute(first)
        active, unrouted = sorted(answers[0]), answers[1]
        queue_lengths = answers[2 : 2 + len(queues.ALL)]
        breakers = answers[2 + len(queues.ALL) : 2 + len(queues.ALL) + 2 * len(integrations)]
        workers, stored = sorted(answers[-2]), answers[-1]

        second = redis.pipeline(transaction=False)
        for thread_id in active:
            second.llen(keys.inbox(thread_id.decode()))
        for worker in workers:
            second.hget(worker, "last_heartbeat")
        follow = replies.execute(second) if active or workers else []
        depths, beats = follow[: len(active)], follow[len(active) :]

        yield from _backlog(depths, unrouted, queue_lengths)
        yield from _breakers(integrations, breakers)
        yield GaugeMetricFamily(
            "connector_workers_alive", "RQ workers with a recent heartbeat.", value=_alive(beats, time.time())
        )
        yield from _tallied(stored)
        yield from _backpressure(backpressure.reading(redis, [i.name for i in integrations]))
        for source in _sources:
            yield from source(redis)


def _backlog(depths: list[int], unrouted: int, queue_lengths: list[int]) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "connector_inbox_items", "Customer events waiting in conversation inboxes.", value=sum(depths)
    )
    yield GaugeMetricFamily(
        "connector_inbox_conversations", "Conversations with events waiting.", value=sum(1 for d in depths if d)
    )
    yield GaugeMetricFamily(
        "connector_unrouted_recent", "Recent customer messages that matched no rule (last 1000 kept).", value=unrouted
    )
    jobs = GaugeMetricFamily("connector_queue_jobs", "Jobs waiting in each RQ queue.", labels=["queue"])
    for name, length in zip(queues.ALL, queue_lengths, strict=True):
        jobs.add_metric([name], length)
    yield jobs


def _breakers(integrations: list[Integration], answers: list[Any]) -> Iterator[Metric]:
    """Per contact-center integration: whether its breaker is open, and how many conversations wait."""
    now = time.time()
    opened = GaugeMetricFamily(
        "connector_breaker_open",
        "1 while an integration's circuit breaker keeps calls from it.",
        labels=["integration"],
    )
    parked = GaugeMetricFamily(
        "connector_parked_conversations",
        "Conversations waiting for an integration to answer again.",
        labels=["integration"],
    )
    for index, integration in enumerate(integrations):
        open_until, waiting = answers[2 * index], answers[2 * index + 1]
        opened.add_metric([integration.name], int(float(open_until or 0) > now))  # HGET: bytes or None
        parked.add_metric([integration.name], int(waiting or 0))  # ZCARD: an int
    yield opened
    yield parked


def _backpressure(found: backpressure.Reading) -> Iterator[Metric]:
    """Per integration (label "" for conversations not routed yet): docs/operators.md, "Backpressure"."""
    families = (
        ("connector_calls_in_flight", "Calls to an integration in flight now, all worker processes.", "in_flight"),
        ("connector_waiting_events", "Customer events waiting to reach an integration.", "queued"),
        ("connector_waiting_conversations", "Conversations with events waiting for an integration.", "conversations"),
        (
            "connector_oldest_waiting_seconds",
            "Age of the oldest customer event waiting for an integration (0: none waits).",
            "oldest_seconds",
        ),
    )
    for name, documentation, attribute in families:
        family = GaugeMetricFamily(name, documentation, labels=["integration"])
        for row in found.rows:
            family.add_metric([row.integration], getattr(row, attribute))
        yield family


def _alive(beats: list[bytes | None], now: float) -> int:
    """Workers whose heartbeat (an ISO time RQ writes) is recent: a silent worker drains nothing."""
    count = 0
    for beat in beats:
        if not beat:
            continue
        try:
            moment = datetime.fromisoformat(beat.decode().replace("Z", "+00:00"))
        except ValueError:
            continue
        if now - moment.timestamp() < WORKER_STALE_SECONDS:
            count += 1
    return count


def _tallied(stored: dict[bytes, bytes]) -> Iterator[Metric]:
    counters, histograms = tallies.read(stored)
    for metric in tallies.Counter:
        samples = [c for c in counters if c.metric == metric.value]
        names = sorted({name for c in samples for name in c.labels})
        family = CounterMetricFamily(metric.value, tallies.HELP[metric.value], labels=names)
        for sample in samples:
            family.add_metric([sample.labels.get(name, "") for name in names], sample.value)
        yield family
    for histogram in tallies.Histogram:
        samples_h = [h for h in histograms if h.metric == histogram.value]
        names = sorted({name for h in samples_h for name in h.labels})
        family_h = HistogramMetricFamily(histogram.value, tallies.HELP[histogram.value], labels=names)
        for sample_h in samples_h:
            family_h.add_metric([sample_h.labels.get(name, "") for name in names], sample_h.buckets, sample_h.total)
        yield family_h


@blueprint.get("/metrics")
def metrics() -> Response:
    runtime: Runtime = current_app.extensions["connector"]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(runtime))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
