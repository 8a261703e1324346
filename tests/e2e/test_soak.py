"""The chaos soak's short version (`make soak` runs 10,000 messages, bench/soak/): 1,000 messages on
all five channels, ECE and Hybrid Chat, both ways, while workers are killed -9, a web process dies
mid-request, Redis is SIGKILLed and restarted from its AOF (`CONNECTOR_DURABILITY=always`), ECE
refuses, fails and crawls, providers fail 30 % of sends, and every webhook comes 1 to 5 times.
Nothing may be lost, doubled or reordered, and nothing may be left behind.

Below it, the accounting the soak judges by, on made-up records: a check that miscounted would let
the soak pass whatever happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak.check import Direction, Windows, account, account_system
from bench.soak.faults import Schedule
from bench.soak.load import Conversation, Message
from bench.soak.run import soak


@pytest.mark.e2e
@pytest.mark.long
def test_a_thousand_messages_through_faults_arrive_once_each_in_order(tmp_path: Path) -> None:
    result = soak(1000, "always", schedule=Schedule.light(), concurrency=24, drain_timeout=120, results=tmp_path)

    assert result.outcome.failures == [], result.report
    inbound, outbound = result.outcome.inbound, result.outcome.outbound
    assert inbound.expected + outbound.expected == 1000, result.report
    assert inbound.arrived == inbound.expected and outbound.arrived == outbound.expected
    # Each conversation hears the welcome, who joined and, its agent done, the close.
    assert result.outcome.system.arrived == result.outcome.system.expected == 3 * 100
    assert result.outcome.leftovers.dead_letters == [], "no fault of this schedule is permanent"
    # The faults really happened (a schedule that silently did nothing would pass the checks above).
    kinds = {f.kind for f in result.faults}
    assert {"worker_kill9", "web_kill9", "redis_sigkill", "ece_refused", "ece_5xx", "ece_slow"} <= kinds
    assert sum(result.provider_failures.values()) > 0, "providers failed sends"
    assert result.counters.duplicate_copies > 0 and result.counters.late_copies > 0, "webhooks came again, late too"


NO_FAULTS = Windows(redis_kills=(), worker_kills=(), everysec=False)


def sent(count: int, direction: str = "in", acked: bool = True) -> list[Message]:
    """Messages 0..count-1 of conversation 7, sent at t = 10, 20, ... and acknowledged a second later."""
    return [
        Message(7, direction, n, "text", sent_at=10.0 * (n + 1), acked_at=10.0 * (n + 1) + 1 if acked else None)
        for n in range(count)
    ]


def test_the_accounting_counts_lost_duplicated_and_reordered_messages() -> None:
    figures = Direction("in")
    account(figures, sent(4), [(0, 12.0), (2, 32.0), (1, 33.0), (2, 34.0)], NO_FAULTS, repeatable=True)

    assert (figures.expected, figures.arrived) == (4, 3)
    assert figures.lost == ["soak c7 m3"]
    assert figures.duplicated == ["soak c7 m2"]
    assert figures.reordered == ["soak c7 m1 before soak c7 m2"]
    assert [round(latency, 1) for _, _, latency in figures.latencies] == [2.0, 13.0, 2.0]


def test_an_unacknowledged_message_is_not_expected() -> None:
    figures = Direction("in")
    account(figures, sent(2, acked=False), [], NO_FAULTS, repeatable=False)
    assert figures.expected == 0 and figures.lost == []


def test_a_repeat_at_a_worker_kill_counts_apart_only_for_calls_without_an_idempotency_key() -> None:
    killed = Windows(redis_kills=(), worker_kills=(12.5,), everysec=False)
    arrivals = [(0, 12.0), (0, 20.0)]  # the first copy half a second before the kill, the second after

    repeatable = Direction("out")
    account(repeatable, sent(1, "out"), arrivals, killed, repeatable=True)
    assert repeatable.duplicated == [] and repeatable.crash_window_duplicated == ["soak c7 a0"]

    keyed = Direction("out")  # Apple and in-app carry an id the receiver dedupes on: no excuse
    account(keyed, sent(1, "out"), arrivals, killed, repeatable=False)
    assert keyed.duplicated == ["soak c7 a0"]

    late = Direction("out")  # a kill long after (or before) the first copy explains nothing
    account(late, sent(1, "out"), arrivals, Windows((), (16.0, 8.0), False), repeatable=True)
    assert late.duplicated == ["soak c7 a0"]


def test_a_loss_in_the_everysec_second_before_a_redis_kill_counts_apart_only_under_everysec() -> None:
    for everysec, lost, in_window in ((True, [], ["soak c7 m0"]), (False, ["soak c7 m0"], [])):
        figures = Direction("in")
        account(figures, sent(1), [], Windows(((11.5, 12.0),), (), everysec), repeatable=True)  # acked at 11
        assert (figures.lost, figures.in_window_lost) == (lost, in_window)


def test_system_messages_are_the_welcome_then_who_joined_once_each_before_the_agent_speaks() -> None:
    conversation = Conversation(7, "sms", 1, ece_id="conv-1")
    welcome, joined = "Thank you for contacting us. Please wait.", "You are now chatting with Alice."

    def check(texts: list[str]) -> Direction:
        figures = Direction("system")
        account_system(figures, conversation, [(t, float(i)) for i, t in enumerate(texts)], NO_FAULTS, True)
        return figures

    good = check([welcome, joined, "soak c7 a0"])
    assert (good.expected, good.arrived, good.lost, good.duplicated, good.reordered) == (2, 2, [], [], [])
    assert check([joined, "soak c7 a0"]).lost == ["c7 welcome"]
    assert check([welcome, joined, joined, "soak c7 a0"]).duplicated == ["c7 assigned"]
    assert check([joined, welcome, "soak c7 a0"]).reordered == ["c7 assigned before c7 welcome"]
    assert check([welcome, "soak c7 a0", joined]).reordered == ["c7 assigned after the agent's first message"]


def test_a_closed_conversation_hears_the_close_once_after_the_agents_last_message() -> None:
    conversation = Conversation(7, "inapp", 2, chat_id="chat-1", closed_at=50.0)
    welcome, joined = "Thank you for contacting us. Please wait.", "You are now chatting with Alice."
    closed = "The agent has marked your chat closed."

    def check(texts: list[str]) -> Direction:
        figures = Direction("system")
        account_system(figures, conversation, [(t, float(i)) for i, t in enumerate(texts)], NO_FAULTS, False)
        return figures

    good = check([welcome, joined, "soak c7 a0", "soak c7 a1", closed])
    assert (good.expected, good.arrived, good.lost, good.duplicated, good.reordered) == (3, 3, [], [], [])
    assert check([welcome, joined, "soak c7 a0", "soak c7 a1"]).lost == ["c7 closed"]
    assert check([welcome, joined, "soak c7 a0", "soak c7 a1", closed, closed]).duplicated == ["c7 closed"]
    assert check([welcome, joined, "soak c7 a0", closed, "soak c7 a1"]).reordered == [
        "c7 closed before the agent's last message"
    ]


def test_a_welcome_again_counts_with_the_window_only_when_a_repeat_restarted_the_conversation() -> None:
    """A customer message ECE took twice (a worker killed in the call) whose repeat came after the
    agent ended the conversation starts a new one, which welcomes the customer again: with the
    window. Without such a repeat, a second welcome is a duplicate."""
    conversation = Conversation(7, "apple", 1, ece_id="conv-1")
    welcome, joined = "Thank you for contacting us. Please wait.", "You are now chatting with Alice."
    texts = [(t, float(i)) for i, t in enumerate([welcome, joined, "soak c7 a0", welcome])]

    restarted = Direction("system")
    account_system(restarted, conversation, texts, NO_FAULTS, False, restarts=1)
    assert (restarted.duplicated, restarted.crash_window_duplicated) == ([], ["c7 welcome"])

    plain = Direction("system")
    account_system(plain, conversation, texts, NO_FAULTS, False)
    assert (plain.duplicated, plain.crash_window_duplicated) == (["c7 welcome"], [])
