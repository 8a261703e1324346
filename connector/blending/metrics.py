"""Agents and their voice / chat states as Prometheus gauges (prometheus-client families).

Per-agent state gauges carry one series per known state (1 for the current one, 0 for the others),
so a state change never leaves a stale series at 1 and `sum by (state)` counts agents directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from connector.blending.agents import AgentRecord, AgentRegistry
from connector.blending.machine import VOICE_STATES, Chat
from connector.blending.service import may_need_reconcile


def families(records: Iterable[AgentRecord]) -> list[GaugeMetricFamily]:
    """The agents as Prometheus families; `agent` is the Finesse id, `login` the login name (if synced)."""
    agents = sorted(records, key=lambda r: r.agent_id)
    who = {r.agent_id: [r.agent_id, r.profile.login_name if r.profile else ""] for r in agents}
    voice_states = list(VOICE_STATES) + sorted({r.state.voice for r in agents} - set(VOICE_STATES))
    by_voice = Counter(r.state.voice for r in agents)
    by_chat = Counter(r.state.chat for r in agents)

    total = GaugeMetricFamily("connector_agents_total", "Agents in the routing registry.", value=len(agents))
    enabled = GaugeMetricFamily(
        "connector_agents_chat_enabled",
        "Agents the chat_enabled policy lets take chats.",
        value=sum(r.state.chat_enabled for r in agents),
    )
    pending = GaugeMetricFamily(
        "connector_agents_pending_changes",
        "Agents with a blending change Finesse or the chat side has not confirmed or taken yet.",
        value=sum(may_need_reconcile(r.state) for r in agents),
    )
    voice_counts = GaugeMetricFamily(
        "connector_agents_by_voice_state", "Agents per Finesse voice state.", labels=["state"]
    )
    for state in voice_states:
        voice_counts.add_metric([state], by_voice[state])
    chat_counts = GaugeMetricFamily("connector_agents_by_chat_state", "Agents per chat state.", labels=["state"])
    for chat in Chat:
        chat_counts.add_metric([chat.value], by_chat[chat])
    per_agent = ["agent", "login"]
    voice = GaugeMetricFamily(
        "connector_agent_voice_state",
        "Finesse voice state of the agent (1 for the current state).",
        labels=[*per_agent, "state"],
    )
    chat_state = GaugeMetricFamily(
        "connector_agent_chat_state", "Chat state of the agent (1 for the current state).", labels=[*per_agent, "state"]
    )
    active = GaugeMetricFamily("connector_agent_active_chats", "Chats the agent holds now.", labels=per_agent)
    held = GaugeMetricFamily(
        "connector_agent_voice_held",
        "1 while Finesse shows the NOT_READY the connector set for chatting.",
        labels=per_agent,
    )
    for record in agents:
        labels = who[record.agent_id]
        for state in voice_states:
            voice.add_metric([*labels, state], float(record.state.voice == state))
        for chat in Chat:
            chat_state.add_metric([*labels, chat.value], float(record.state.chat is chat))
        active.add_metric(labels, len(record.state.chats))
        held.add_metric(labels, float(record.state.voice_hold))
    return [total, enabled, pending, voice_counts, chat_counts, voice, chat_state, active, held]


class _Families(Collector):
    def __init__(self, found: list[GaugeMetricFamily]) -> None:
        self.found = found

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.found


def render(records: Iterable[AgentRecord]) -> str:
    """The agents as Prometheus text exposition, as /metrics serves them."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families(records)))
    return generate_latest(registry).decode()


def render_registry(registry: AgentRegistry) -> str:
    return render(registry.records())
