"""Shared helpers of the Hybrid Chat tests: agents and chats written through `HybridState` (as the
desk and the backend write them), a Hybrid Chat integration of several queues in the configuration
store (so worker processes see it too), and a dump of every router key for "nothing changed"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
import redis as redis_lib

from connector.backends.hybrid.state import NOT_READY, READY, HybridState
from connector.runtime import Runtime
from connector.store import keys
from tests.e2e.conftest import start_worker  # noqa: F401 - real worker processes (test_concurrency.py)

INTEGRATION = "Desk"


def add_agent(
    state: HybridState, agent_id: str, *skills: str, max_chats: int = 1, ready: bool = True, reason: str = ""
) -> str:
    state.set_agent(
        agent_id,
        state=READY if ready else NOT_READY,
        reason=reason,
        login=agent_id,
        name=agent_id.title(),
        skills=tuple(skills),
        max_chats=max_chats,
    )
    return agent_id


def add_chat(state: HybridState, chat_id: str, queue: str = "Support", at: float = 1000.0) -> str:
    assert state.create_chat(
        chat_id,
        thread_id=f"thread-{chat_id}",
        integration=INTEGRATION,
        queue=queue,
        channel="inapp",
        customer={"id": f"customer-{chat_id}"},
        attributes={},
        now=at,
    )
    return chat_id


def router_keys(redis: redis_lib.Redis) -> dict[str, Any]:
    """Every key of the router (chats, queues, agents, offers, the READY and interrupted sets) with
    its value, to compare before and after a refused script."""
    dump: dict[str, Any] = {}
    names = [*redis.scan_iter(match=f"{keys.PREFIX}:hybrid:*"), keys.chat_interrupted().encode()]
    for raw in names:
        name = raw.decode()
        kind = redis.type(name).decode()
        if kind == "hash":
            dump[name] = redis.hgetall(name)
        elif kind == "set":
            dump[name] = redis.smembers(name)
        elif kind == "zset":
            dump[name] = redis.zrange(name, 0, -1, withscores=True)
        elif kind == "list":
            dump[name] = redis.lrange(name, 0, -1)
        elif kind == "string":
            dump[name] = redis.get(name)
        elif kind == "stream":
            dump[name] = redis.xlen(name)
    return dump


QueueSpec = dict[str, Any]


@pytest.fixture
def hybrid_queues(runtime: Runtime) -> Callable[[Sequence[QueueSpec]], None]:
    """hybrid_queues([{"name": ..., "skills": [...], "priority": n, ...}]) → integration `Desk` with
    those queues, in the configuration store (every process sees it within a second)."""

    def configure(entry_points: Sequence[QueueSpec]) -> None:
        runtime.overrides.save(
            "integrations",
            {"name": INTEGRATION, "type": "hybrid", "entry_points": list(entry_points)},
            runtime.provisioned,
            create=True,
        )
        runtime.config_changed()

    return configure
