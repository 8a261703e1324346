"""`python -m connector worker`: one RQ worker on the connector's queues, plus the inbox sweeper.

SimpleWorker runs jobs in the worker process instead of forking a work horse per job: drains are
short and idempotent, their leases bound a stuck job, and skipping the fork keeps the relay's
latency in milliseconds. The scheduler (unavailable-policy timers, retries) runs with it.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from connector import queues
from connector.config.model import Config
from connector.flows import language
from connector.flows.definition import BranchStep, LanguageStep
from connector.logs import JsonFormatter
from connector.relay.sweeper import Sweeper
from connector.rules import needs_language
from connector.runtime import Runtime, install


def warm_up(runtime: Runtime) -> None:
    """Import what the first jobs run, and each integration's backend, now: otherwise the first
    customer message after a start pays for them (tens of milliseconds, more under a burst)."""
    from connector.backends import backend_for

    for module in ("connector.relay.drain", "connector.relay.to_customer"):  # RQ imports them in the first job
        importlib.import_module(module)

    for integration in runtime.config.integrations:
        backend_for(integration)

    if uses_language(runtime.config):  # the detector's model loads in about half a second
        language.warm()


def uses_language(config: Config) -> bool:
    """Whether the configuration detects languages: a rule with `language:`, or a flow with a
    `language` or `branch` step (a branch on language detects when no language step ran)."""
    steps = (step for flow in config.flows for step in flow.steps)
    return needs_language(config.rules) or any(isinstance(s, LanguageStep | BranchStep) for s in steps)


def run_worker(runtime: Runtime, *, burst: bool = False, name: str | None = None) -> None:
    runtime.role = "worker"
    install(runtime)
    if runtime.settings.worker_nice > 0:
        os.nice(runtime.settings.worker_nice)
    runtime.config  # noqa: B018 - fail fast on a broken configuration
    warm_up(runtime)
    redis = runtime.redis
    rq_logger = logging.getLogger("rq.worker")
    if not rq_logger.handlers:  # RQ adds a colour handler unless one exists
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        rq_logger.addHandler(handler)
        rq_logger.propagate = False
    sweeper = Sweeper(redis, runtime.settings.sweep_interval_seconds, runtime.boxes, runtime.dispatch, runtime)
    sweeper.start()
    # Jobs read the configuration when they run; this also checks it while the worker is idle, so a
    # reload is applied (and its outcome reported) within a second, not at the next message.
    watching = threading.Event()
    runtime.watch_config(watching)
    worker = SimpleWorker(
        [queues.queue(name, redis) for name in queues.ALL],
        connection=redis,
        serializer=JSONSerializer,
        name=name,
        maintenance_interval=60,
        log_job_description=False,
    )
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=runtime.settings.log_level)
    finally:
        watching.set()
        sweeper.stop()
