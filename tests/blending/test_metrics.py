"""The registry as Prometheus text, checked with the Prometheus text parser's rules by hand: one
HELP and TYPE per family, escaped label values, one series per known state."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from connector.blending.agents import AgentProfile, AgentRecord, AgentRegistry
from connector.blending.machine import VOICE_STATES, Chat, VoiceRequest, new_agent
from connector.blending.metrics import render, render_registry

CHATTING = replace(
    new_agent("1001"), voice="NOT_READY", voice_reason_id="22", voice_hold=True, chats=("c1", "c2"), chat=Chat.ACTIVE
)
ON_CALL = replace(new_agent("1002"), voice="TALKING", chat=Chat.INTERRUPTED, chat_held=True)
PENDING = replace(new_agent("1003"), voice="READY", request=VoiceRequest("cc-1003-1", "NOT_READY", 1.0))
RECORDS = [
    AgentRecord("1001", AgentProfile("1001", 'j"doe\\x'), CHATTING),
    AgentRecord("1002", AgentProfile("1002", "bsmith"), ON_CALL),
    AgentRecord("1003", None, PENDING),
]
SAMPLE = re.compile(r'^[a-z_]+(\{([a-z]+="([^"\\]|\\.)*",?)+\})? -?[0-9.e+]+$')


def samples(text: str) -> dict[str, float]:
    pairs = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {series: float(value) for series, value in pairs}


def test_every_line_is_valid_exposition_and_every_family_is_declared_once() -> None:
    text = render(RECORDS)
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or SAMPLE.match(line), line
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(families) == len(set(families))
    for name in {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}:
        assert name in families


def test_agent_counts_and_states() -> None:
    got = samples(render(RECORDS))
    assert got["connector_agents_total"] == 3
    assert got["connector_agents_chat_enabled"] == 3
    assert got["connector_agents_pending_changes"] == 1
    assert got['connector_agents_by_chat_state{state="INTERRUPTED"}'] == 1
    assert got['connector_agents_by_voice_state{state="LOGOUT"}'] == 0
    assert got['connector_agent_voice_state{agent="1002",login="bsmith",state="TALKING"}'] == 1
    assert got['connector_agent_voice_state{agent="1002",login="bsmith",state="READY"}'] == 0
    assert got['connector_agent_chat_state{agent="1001",login="j\\"doe\\\\x",state="ACTIVE"}'] == 1
    assert got['connector_agent_active_chats{agent="1001",login="j\\"doe\\\\x"}'] == 2
    assert got['connector_agent_voice_held{agent="1001",login="j\\"doe\\\\x"}'] == 1
    assert got['connector_agent_active_chats{agent="1003",login=""}'] == 0


def test_one_series_per_known_state_so_no_stale_series_stays_at_one() -> None:
    got = samples(render(RECORDS))
    voice = [k for k in got if k.startswith('connector_agent_voice_state{agent="1003"')]
    chat = [k for k in got if k.startswith('connector_agent_chat_state{agent="1003"')]
    assert (len(voice), len(chat)) == (len(VOICE_STATES), len(Chat))
    assert sum(got[k] for k in voice) == 1 and sum(got[k] for k in chat) == 1


def test_a_state_finesse_reports_that_is_not_in_the_list_gets_its_series() -> None:
    odd = AgentRecord("9", None, replace(new_agent("9"), voice="PARTIAL"))
    got = samples(render([odd]))
    assert got['connector_agent_voice_state{agent="9",login="",state="PARTIAL"}'] == 1


def test_empty_registry(redis) -> None:
    got = samples(render_registry(AgentRegistry(redis)))
    assert got["connector_agents_total"] == 0
    assert not any(k.startswith("connector_agent_") for k in got)


def test_the_prometheus_parser_reads_it_back() -> None:
    parser = pytest.importorskip("prometheus_client.parser", reason="prometheus-client is a dev requirement")
    families = {f.name: f for f in parser.text_string_to_metric_families(render(RECORDS))}
    assert families["connector_agents_total"].samples[0].value == 3
    held = {s.labels["login"]: s.value for s in families["connector_agent_voice_held"].samples}
    assert held == {'j"doe\\x': 1.0, "bsmith": 0.0, "": 0.0}
