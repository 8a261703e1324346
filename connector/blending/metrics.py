"""Agents and their voice / chat states as Prometheus text exposition (format 0.0.4).

Per-agent state gauges carry one series per known state (1 for the current one, 0 for the others),
so a state change never leaves a stale series at 1 and `sum by (state)` counts agents directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from connector.blending.agents import AgentRecord, AgentRegistry
from connector.blending.machine import VOICE_STATES, Chat
from connector.blending.service import may_need_reconcile


def _label(value: str) -> str:
    # Exposition format: backslash, double quote and line feed are escaped in label values.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{name}="{_label(value)}"' for name, value in labels.items()) + "}"


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, help_text: str, samples: Iterable[tuple[str, float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} gauge")
        self.lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(records: Iterable[AgentRecord]) -> str:
    """The agents as Prometheus text; `agent` is the Finesse id, `login` the login name (if synced)."""
    agents = sorted(records, key=lambda r: r.agent_id)
    who = {r.agent_id: {"agent": r.agent_id, "login": r.profile.login_name if r.profile else ""} for r in agents}
    voice_states = list(VOICE_STATES) + sorted({r.state.voice for r in agents} - set(VOICE_STATES))
    by_voice = Counter(r.state.voice for r in agents)
    by_chat = Counter(r.state.chat for r in agents)

    out = _Exposition()
    out.family("connector_agents_total", "Agents in the routing registry.", [("", len(agents))])
    out.family(
        "connector_agents_chat_enabled",
        "Agents the chat_enabled policy lets take chats.",
        [("", sum(r.state.chat_enabled for r in agents))],
    )
    out.family(
        "connector_agents_pending_changes",
        "Agents with a blending change Finesse or the chat side has not confirmed or taken yet.",
        [("", sum(may_need_reconcile(r.state) for r in agents))],
    )
    out.family(
        "connector_agents_by_voice_state",
        "Agents per Finesse voice state.",
        [(_labels(state=s), by_voice[s]) for s in voice_states],
    )
    out.family(
        "connector_agents_by_chat_state",
        "Agents per chat state.",
        [(_labels(state=c.value), by_chat[c]) for c in Chat],
    )
    out.family(
        "connector_agent_voice_state",
        "Finesse voice state of the agent (1 for the current state).",
        [(_labels(**who[r.agent_id], state=s), float(r.state.voice == s)) for r in agents for s in voice_states],
    )
    out.family(
        "connector_agent_chat_state",
        "Chat state of the agent (1 for the current state).",
        [(_labels(**who[r.agent_id], state=c.value), float(r.state.chat is c)) for r in agents for c in Chat],
    )
    out.family(
        "connector_agent_active_chats",
        "Chats the agent holds now.",
        [(_labels(**who[r.agent_id]), len(r.state.chats)) for r in agents],
    )
    out.family(
        "connector_agent_voice_held",
        "1 while Finesse shows the NOT_READY the connector set for chatting.",
        [(_labels(**who[r.agent_id]), float(r.state.voice_hold)) for r in agents],
    )
    return out.text()


def render_registry(registry: AgentRegistry) -> str:
    return render(registry.records())
