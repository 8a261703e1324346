"""Reloading the provisioned files (`entrypoints/*.yaml`) in every process, without a restart
(docs/architecture.md, "Configuration concepts").

How it works:
- A trigger (SIGHUP to `python -m connector run`, `POST /api/v1/config/reload`, the Import / export
  page's button) first loads the files in its own process (`trigger`). A file with a problem raises
  ConfigError listing every problem (file, item, field) and nothing is written anywhere.
- A good set bumps the generation counter (`keys.config_generation`) and records who asked and
  when (`keys.config_reload`), in one atomic step that also clears the per-process status of the
  previous generation.
- Every process compares the generation with the one it runs at its next configuration check
  (`Runtime.config`, at most every CONFIG_CHECK_SECONDS), loads the files itself, builds the new
  `Config` completely and only then replaces its reference. A process that cannot load them (a
  secret variable missing only there) keeps its running configuration, logs an ERROR naming the
  file and field, and says so in `keys.config_processes` (`record`), which the API and the page show.

This module knows Redis and the loader only; `Runtime` (connector/runtime.py) does the swapping.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis

from connector.config.loader import ConfigError, ConfigProblem, load_config
from connector.config.model import Config
from connector.store import keys, replies

log = logging.getLogger(__name__)

STATUS_TTL_SECONDS = 7 * 24 * 3600
"""How long the per-process status lives after its last write (it is cleared by every reload anyway)."""

EXIT_TO_RELOAD = 3
"""The exit code of a process that stops so that its restart applies reloaded files (the listener,
when the `finesse:` section changed); the supervisor restarts such a child at once."""

_BUMP = """
redis.call('DEL', KEYS[3])
local generation = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], 'generation', generation, 'by', ARGV[1], 'via', ARGV[2], 'at', ARGV[3])
return generation
"""


@dataclass(frozen=True)
class ProcessStatus:
    """What one process did with the files of a generation."""

    name: str
    role: str
    pid: int
    host: str
    generation: int
    """The generation it last acted on (applied, or failed to apply)."""
    ok: bool
    error: str | None
    """Every problem it met, one a line, each naming file, item and field (as check-config prints)."""
    at: float


@dataclass(frozen=True)
class ReloadStatus:
    generation: int
    """0 until the first reload: every process runs the files it read at its start."""
    requested_by: str | None
    via: str | None
    """`api`, `ui` or `signal`."""
    requested_at: float | None
    processes: tuple[ProcessStatus, ...]
    """The processes that have read their configuration since the last reload (or started since),
    by name. One that has not read it yet (an idle web process) is missing until it does."""


class ReloadStore:
    """The generation counter, the last request and the per-process status, in Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def generation(self) -> int:
        return int(replies.bytes_or_none(self.redis.get(keys.config_generation())) or 0)

    def bump(self, requested_by: str, via: str) -> int:
        """The next generation, recorded with who asked and when; the old per-process status goes."""
        script = self.redis.register_script(_BUMP)
        keys_ = [keys.config_generation(), keys.config_reload(), keys.config_processes()]
        return replies.integer(script(keys=keys_, args=[requested_by, via, repr(time.time())]))

    def record(self, status: ProcessStatus) -> None:
        pipe = self.redis.pipeline(transaction=True)
        value = {k: v for k, v in status.__dict__.items() if k != "name"}
        pipe.hset(keys.config_processes(), status.name, json.dumps(value))
        pipe.expire(keys.config_processes(), STATUS_TTL_SECONDS)
        replies.execute(pipe)

    def status(self) -> ReloadStatus:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.config_generation())
        pipe.hgetall(keys.config_reload())
        pipe.hgetall(keys.config_processes())
        generation, last, processes = replies.execute(pipe)
        request = {k.decode(): v.decode() for k, v in replies.bytes_hash(last).items()}
        found = []
        for name, value in sorted(replies.bytes_hash(processes).items()):
            data: dict[str, Any] = json.loads(value)  # written by record(): a JSON object
            found.append(ProcessStatus(name=name.decode(), **data))
        return ReloadStatus(
            generation=int(replies.bytes_or_none(generation) or 0),
            requested_by=request.get("by"),
            via=request.get("via"),
            requested_at=float(request["at"]) if "at" in request else None,
            processes=tuple(found),
        )


def trigger(
    redis: Redis, directory: Path, *, requested_by: str, via: str, env: Mapping[str, str] | None = None
) -> tuple[int, Config]:
    """Load `directory` here; if it is good, start a new generation and return it with what was
    loaded. ConfigError (every problem, nothing written) when a file has a problem."""
    try:
        config = load_config(directory, env)
    except ConfigError as exc:
        log.error(
            "reload refused: the provisioned files have %d problem(s), nothing changed:\n%s",
            len(exc.problems),
            exc,
            extra={"requested_by": requested_by, "via": via},
        )
        raise
    generation = ReloadStore(redis).bump(requested_by, via)
    log.info(
        "reload requested: generation %d",
        generation,
        extra={"generation": generation, "requested_by": requested_by, "via": via},
    )
    return generation, config


def problems_by_file(problems: list[ConfigProblem]) -> dict[str, list[str]]:
    """file → the problems of that file, each as check-config prints it (file, item, field, message)."""
    grouped: dict[str, list[str]] = {}
    for problem in problems:
        grouped.setdefault(problem.file, []).append(str(problem))
    return grouped
