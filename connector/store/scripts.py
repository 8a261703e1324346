"""A registered Lua script queued on a pipeline by EVAL, so the pipeline stays one round trip.

redis-py's `Script`, called with a pipeline, makes the pipeline ask `SCRIPT EXISTS` (and load what
is missing) before it sends anything: one more round trip for every pipeline or transaction that
holds a script, several per Hybrid Chat chat. EVAL carries the body instead (a few hundred bytes;
Redis keeps the compiled script by its SHA-1, so it is not compiled again), needs nothing loaded
first, and so cannot meet NOSCRIPT inside a MULTI after a Redis restart either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.client import Pipeline
from redis.commands.core import Script


def queue(pipe: Pipeline, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """`script(keys=keys, args=args, client=pipe)`, without the pipeline's SCRIPT EXISTS."""
    source = script.script
    body = source if isinstance(source, str) else bytes(source).decode()
    return pipe.eval(body, len(keys), *keys, *args)
