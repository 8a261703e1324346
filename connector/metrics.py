"""`GET /metrics`: Prometheus text exposition, computed from Redis at scrape time.

Reading state at scrape time (instead of per-process counters) keeps every gunicorn worker's answer
identical and survives restarts; the figures are the ones an operator acts on: backlog, stranded
conversations, unrouted messages, live workers, and (with media blending configured) agents' states.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from flask import Blueprint, Response, current_app
from redis import Redis
from rq import Queue

from connector import queues
from connector.config.model import Integration
from connector.health import live_workers
from connector.relay.breaker import service_of
from connector.store import keys, replies

blueprint = Blueprint("metrics", __name__)

MetricSource = Callable[[Redis], Iterable[str]]
_sources: list[MetricSource] = []


def register_source(source: MetricSource) -> None:
    """Add lines of exposition text from another module (the blending module's agent gauges)."""
    if source not in _sources:
        _sources.append(source)


def core_metrics(redis: Redis) -> Iterable[str]:
    active = [m.decode() for m in replies.bytes_set(redis.smembers(keys.active_inboxes()))]
    pipe = redis.pipeline(transaction=False)
    for thread_id in active:
        pipe.llen(keys.inbox(thread_id))
    depths = replies.execute(pipe) if active else []
    yield "# HELP connector_inbox_items Customer events waiting in conversation inboxes."
    yield "# TYPE connector_inbox_items gauge"
    yield f"connector_inbox_items {sum(depths)}"
    yield "# HELP connector_inbox_conversations Conversations with events waiting."
    yield "# TYPE connector_inbox_conversations gauge"
    yield f"connector_inbox_conversations {sum(1 for d in depths if d)}"
    yield "# HELP connector_unrouted_recent Recent customer messages that matched no rule (last 1000 kept)."
    yield "# TYPE connector_unrouted_recent gauge"
    yield f"connector_unrouted_recent {redis.llen(keys.unrouted())}"
    yield "# HELP connector_queue_jobs Jobs waiting in each RQ queue."
    yield "# TYPE connector_queue_jobs gauge"
    for name in queues.ALL:
        yield f'connector_queue_jobs{{queue="{name}"}} {Queue(name, connection=redis).count}'
    yield from breaker_metrics(redis, current_app.extensions["connector"].config.integrations)
    yield "# HELP connector_workers_alive RQ workers with a recent heartbeat."
    yield "# TYPE connector_workers_alive gauge"
    yield f"connector_workers_alive {live_workers(redis)}"


def breaker_metrics(redis: Redis, integrations: Iterable[Integration]) -> Iterable[str]:
    """Per contact-center integration: whether its breaker is open, and how many conversations wait."""
    now = time.time()
    rows = []
    for integration in integrations:
        service = service_of(integration)
        open_until = float(replies.bytes_or_none(redis.hget(keys.breaker(service), "open_until")) or 0)
        rows.append((f'{{integration="{integration.name}"}}', int(open_until > now), redis.zcard(keys.parked(service))))
    yield "# HELP connector_breaker_open 1 while an integration's circuit breaker keeps calls from it."
    yield "# TYPE connector_breaker_open gauge"
    yield from (f"connector_breaker_open{label} {is_open}" for label, is_open, _ in rows)
    yield "# HELP connector_parked_conversations Conversations waiting for an integration to answer again."
    yield "# TYPE connector_parked_conversations gauge"
    yield from (f"connector_parked_conversations{label} {parked}" for label, _, parked in rows)


@blueprint.get("/metrics")
def metrics() -> Response:
    redis = current_app.extensions["connector"].redis
    lines = list(core_metrics(redis))
    for source in _sources:
        lines.extend(source(redis))
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
