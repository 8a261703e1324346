"""Fixtures of the Hybrid Chat end-to-end tests: a stack (tests/e2e/stack.py) whose channels' support
rules forward to a Hybrid Chat integration, and agents at its agent API over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from connector import live
from tests.e2e.hybrid.agents import AgentClient
from tests.e2e.stack import HYBRID_AGENTS, HybridOptions, Stack

SSE_SECONDS = 2.0
"""How long one SSE response lasts here (60 s in the product): the client reconnects with
Last-Event-ID several times in a test, and no server thread outlives the test by more."""


@pytest.fixture(autouse=True)
def short_event_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """The web app runs in this process: its SSE responses end after SSE_SECONDS."""
    monkeypatch.setattr(live, "STREAM_SECONDS", SSE_SECONDS)


@pytest.fixture
def hybrid_stack(stack_factory) -> Callable[..., Stack]:
    """hybrid_stack(support={...}, billing={...}, agents=(...), finesse={...}) → a stack with the
    Hybrid Chat integration (queues Support and Billing) and its agents."""

    def build(
        support: Mapping[str, Any] | None = None,
        billing: Mapping[str, Any] | None = None,
        agents: tuple[Mapping[str, Any], ...] = HYBRID_AGENTS,
        finesse: Mapping[str, Any] | None = None,
    ) -> Stack:
        options = HybridOptions(support=dict(support or {}), billing=dict(billing or {}), agents=agents)
        return stack_factory(hybrid=options, finesse=finesse)

    return build


@pytest.fixture
def agent_api(stack_factory) -> Iterator[Callable[..., AgentClient]]:
    """agent_api(stack, login, auth="bearer" | "cookie", sse=False, password=None) → a logged-in agent.
    Their event streams stop before the stack does."""
    clients: list[AgentClient] = []

    def log_in(
        stack: Stack, login: str, *, auth: str = "bearer", sse: bool = False, password: str | None = None
    ) -> AgentClient:
        client = AgentClient(stack.connector_url, login, password, auth=auth, sse=sse)
        clients.append(client)
        return client

    yield log_in
    for client in clients:
        client.stop()
