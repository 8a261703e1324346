"""The figures of the operators' overview page (`/admin/`), read from Redis when the page is asked.

Like `/metrics` (metrics.py), every figure is in Redis, so any web process shows the same: messages
in and out per minute and channel (the per-minute counts of store/tallies.py, the last
tallies.MINUTES_KEPT minutes), conversations waiting and the oldest wait per entry point (the
waiting ZSETs the drain's commit keeps), dead letters and unrouted messages, each integration's
circuit breaker, the delivery backlog per integration (operations/backpressure.py), live workers,
and agents by voice and chat state (media blending's registry, and
the agents only a backend knows: Hybrid Chat's local agents).

Customer satisfaction: the post-chat survey's results (survey_report.py, registered by
`register_csat(source)` in create_app); while no survey was answered the page says CSAT is not
measured, and nothing is made up.

Cost: a few pipelined round trips (the minutes, the waiting sets and breakers), RQ's worker list,
and the agent registry's read.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from redis import Redis

from connector import backends
from connector.blending.agents import AgentRegistry
from connector.health import live_workers
from connector.operations import backpressure
from connector.relay.breaker import service_of
from connector.runtime import Runtime
from connector.store import keys, replies, tallies, unrouted
from connector.store.tallies import Traffic


@dataclass(frozen=True)
class ChannelTraffic:
    """One channel's messages per minute, oldest minute first (the last is the current minute)."""

    channel: str
    inbound: list[int]
    outbound: list[int]

    @property
    def total_in(self) -> int:
        return sum(self.inbound)

    @property
    def total_out(self) -> int:
        return sum(self.outbound)


@dataclass(frozen=True)
class Waiting:
    """The connector's conversations queued on one entry point, and how long the first has waited."""

    integration: str
    entry_point: str
    conversations: int
    oldest_seconds: float | None


@dataclass(frozen=True)
class BreakerState:
    integration: str
    state: str
    """closed | open (calls fail at once until `open_until`) | probing (one call tries the service)."""
    open_until: float | None
    failures: int
    """Outage failures in a row."""
    parked: int
    """Conversations waiting for it to close."""


@dataclass(frozen=True)
class AgentStates:
    voice: dict[str, int]
    """Finesse voice state → agents (media blending's registry)."""
    chat: dict[str, int]
    """Chat state → agents (the registry's, and Hybrid Chat's local agents')."""


@dataclass(frozen=True)
class Csat:
    """Customer satisfaction as a survey module reports it."""

    score: float
    """Share of satisfied answers, 0 to 100."""
    responses: int
    period: str
    """What the figure covers, in words ("last 7 days")."""
    average: float | None = None
    """Mean score of the answers."""
    days: list[tuple[int, int, float | None, float | None]] = field(default_factory=list)
    """Per day (UTC), oldest first: (day's start in unix seconds, answers, mean score, share satisfied)."""


CsatSource = Callable[[Redis], Csat | None]
_csat_source: CsatSource | None = None


def register_csat(source: CsatSource | None) -> None:
    """The hook for customer satisfaction: a survey module registers how to read its figure (None
    takes it away). Until one does, the overview shows CSAT as not measured."""
    global _csat_source
    _csat_source = source


@dataclass(frozen=True)
class Dashboard:
    at: float
    minutes: list[int]
    """The minutes charted (unix seconds // 60), oldest first; the last is the current one."""
    traffic: list[ChannelTraffic]
    waiting: list[Waiting]
    dead_letters: int
    unrouted: int
    breakers: list[BreakerState]
    workers_alive: int
    agents: AgentStates
    delivery: backpressure.Reading
    """Per integration: calls in flight, customer events waiting for it and the oldest one's age."""
    delivery_warning: str | None = None
    """Set when the oldest waiting event is older than CONNECTOR_BACKLOG_WARNING_SECONDS."""
    csat: Csat | None = field(default=None)

    @property
    def rows(self) -> list[tuple[int, list[tuple[int, int]]]]:
        """Per minute, newest first: the minute and each channel's (in, out), in `traffic` order."""
        return [
            (minute, [(row.inbound[index], row.outbound[index]) for row in self.traffic])
            for index, minute in reversed(list(enumerate(self.minutes)))
        ]


def read(runtime: Runtime, now: float | None = None) -> Dashboard:
    at = time.time() if now is None else now
    redis = runtime.redis
    config = runtime.config
    current = tallies.minute_of(at)
    minutes = list(range(current - tallies.MINUTES_KEPT + 1, current + 1))
    entry_points = [(i.name, ep.name) for i in config.integrations for ep in i.entry_points]
    pipe = redis.pipeline(transaction=False)
    for minute in minutes:
        pipe.hgetall(keys.traffic(minute))
    for integration_name, entry_point in entry_points:
        pipe.zcard(keys.waiting(integration_name, entry_point))
        pipe.zrange(keys.waiting(integration_name, entry_point), 0, 0, withscores=True)
    for integration in config.integrations:
        pipe.hmget(keys.breaker(service_of(integration)), ["open_until", "failures"])
        pipe.zcard(keys.parked(service_of(integration)))
    pipe.llen(keys.dead_letters())
    answers = replies.execute(pipe)
    stored, answers = answers[: len(minutes)], answers[len(minutes) :]
    queued, answers = answers[: 2 * len(entry_points)], answers[2 * len(entry_points) :]
    breakers, answers = answers[: 2 * len(config.integrations)], answers[2 * len(config.integrations) :]
    [dead] = answers
    channels = sorted({asset.channel for asset in config.assets})
    delivery = backpressure.reading(redis, [integration.name for integration in config.integrations], now=at)
    return Dashboard(
        at=at,
        minutes=minutes,
        traffic=_traffic(minutes, stored, channels),
        waiting=[
            Waiting(name, entry_point, int(queued[2 * i]), _oldest(queued[2 * i + 1], at))
            for i, (name, entry_point) in enumerate(entry_points)
        ],
        dead_letters=int(dead),
        unrouted=unrouted.total(redis),
        breakers=[
            _breaker(integration.name, breakers[2 * i], breakers[2 * i + 1], at)
            for i, integration in enumerate(config.integrations)
        ],
        workers_alive=live_workers(redis),
        agents=_agents(runtime),
        delivery=delivery,
        delivery_warning=delivery.warning(runtime.settings.backlog_warning_seconds),
        csat=_csat_source(redis) if _csat_source is not None else None,
    )


def _traffic(minutes: list[int], stored: list[dict[bytes, bytes]], channels: list[str]) -> list[ChannelTraffic]:
    """Every configured channel has a row (a quiet one shows zeros), and any other that has counts."""
    found = tallies.read_traffic(minutes, stored)
    seen = sorted({channel for minute in found for _, channel in minute.counts} - set(channels))
    return [
        ChannelTraffic(
            channel,
            inbound=[minute.counts.get((Traffic.IN, channel), 0) for minute in found],
            outbound=[minute.counts.get((Traffic.OUT, channel), 0) for minute in found],
        )
        for channel in [*channels, *seen]
    ]


def _oldest(first: list[tuple[bytes, float]], now: float) -> float | None:
    return max(0.0, now - float(first[0][1])) if first else None


def _breaker(integration: str, state: list[bytes | None], parked: int, now: float) -> BreakerState:
    open_until = float(state[0] or 0)
    failures = int(state[1] or 0)
    if not open_until:
        name = "closed"
    elif now < open_until:
        name = "open"
    else:
        name = "probing"
    return BreakerState(integration, name, open_until or None, failures, int(parked or 0))


def _agents(runtime: Runtime) -> AgentStates:
    records = AgentRegistry(runtime.redis).records()
    voice = Counter(record.state.voice for record in records)
    chat = Counter(record.state.chat.value for record in records)
    known = {record.agent_id for record in records}
    for integration_type in sorted({integration.type for integration in runtime.config.integrations}):
        backend = backends.of_type(integration_type)
        if backend is None:
            continue
        for agent_id, state in backend.own_agents(runtime).items():
            if agent_id not in known:
                known.add(agent_id)
                chat[state] += 1
    return AgentStates(voice=dict(sorted(voice.items())), chat=dict(sorted(chat.items())))
