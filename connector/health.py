"""Liveness and readiness: `/healthz` says the process answers; `/readyz` that work can flow."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from connector.operations import backpressure
from connector.runtime import Runtime

blueprint = Blueprint("health", __name__)

WORKER_STALE_SECONDS = 120


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


def live_workers(redis: Redis) -> int:
    """Workers whose heartbeat is recent: a registered but silent worker drains nothing."""
    now = time.time()
    count = 0
    for worker in Worker.all(connection=redis):
        beat = worker.last_heartbeat
        if beat is not None and now - beat.timestamp() < WORKER_STALE_SECONDS:
            count += 1
    return count


def _backlog_warnings(runtime: Runtime) -> list[str]:
    """Work that waits too long is a warning, never "not ready": intake must keep accepting, and a
    load balancer that took the connector out would turn a slow contact center into lost webhooks."""
    try:
        found = backpressure.reading(runtime.redis, [i.name for i in runtime.config.integrations])
    except RedisError:
        return []
    warning = found.warning(runtime.settings.backlog_warning_seconds)
    return [warning] if warning else []


@blueprint.get("/readyz")
def readyz() -> Response:
    runtime = current_app.extensions["connector"]
    checks: dict[str, object] = {}
    try:
        runtime.redis.ping()
        checks["redis"] = "ok"
        workers = live_workers(runtime.redis)
        checks["workers"] = workers
    except RedisError as exc:
        checks["redis"] = f"unreachable: {exc}"
        workers = 0
    ready = checks["redis"] == "ok" and workers > 0
    warnings = _backlog_warnings(runtime) if checks["redis"] == "ok" else []
    response = jsonify(status="ready" if ready else "not ready", checks=checks, warnings=warnings)
    response.status_code = 200 if ready else 503
    return response
