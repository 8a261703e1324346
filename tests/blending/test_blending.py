"""The media-blending tables of the Hybrid Chat / Finesse integration, row by row, and the cases the
reference leaves open (docs/blending.md), as tests of the pure state machine.

A scenario is a list of steps from a fresh agent: events, and CONFIRM where Finesse applies the
connector's outstanding voice request and notifies with its requestId (202-then-notification).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from connector.blending.events import (
    ChatAssigned,
    ChatEnabledChanged,
    ChatEnded,
    ChatReadyChanged,
    ChatSideFailed,
    DialogChanged,
    FinesseRefused,
    VoiceStateChanged,
)
from connector.blending.machine import (
    CHAT_RULES,
    INTERNAL_CALL_TYPES,
    VOICE_RULES,
    Action,
    AgentState,
    Chat,
    InterruptChat,
    Policy,
    ResumeChat,
    SetVoiceState,
    blend,
    new_agent,
    routable,
)

AGENT = "1001001"
HANDLING_CHAT = "22"  # the reasonCodeId of the configured "Handling Chat" label
BREAK = "5"  # a reason the agent picks themself
P = Policy(reason_code_id=HANDLING_CHAT, reason_label="Handling Chat", max_chats=5, request_timeout=30.0)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "blending.md"


class _Confirm:
    """Finesse applies the outstanding voice request and notifies, echoing its requestId."""

    def __repr__(self) -> str:
        return "CONFIRM"


CONFIRM = _Confirm()


def voice(state: str, reason: str | None = None, request_id: str | None = None) -> VoiceStateChanged:
    return VoiceStateChanged(AGENT, state, reason_code_id=reason, request_id=request_id)


def call(dialog_id: str, call_type: str, state: str = "ACTIVE") -> DialogChanged:
    return DialogChanged(AGENT, dialog_id, call_type, state)


def hang_up(dialog_id: str) -> DialogChanged:
    return DialogChanged(AGENT, dialog_id, "", "DROPPED", ended=True)


def chat(chat_id: str) -> ChatAssigned:
    return ChatAssigned(AGENT, chat_id)


def chat_end(chat_id: str) -> ChatEnded:
    return ChatEnded(AGENT, chat_id)


def confirmation(state: AgentState) -> VoiceStateChanged:
    request = state.request
    assert request is not None and request.open, "CONFIRM with no voice request outstanding"
    reason = HANDLING_CHAT if request.state == "NOT_READY" else None
    return voice(request.state, reason, request_id=request.request_id)


def play(steps, state: AgentState | None = None, start: float = 0.0) -> tuple[AgentState, list[Action], float]:
    """Run steps one second apart; returns the state, every action emitted, and the last time."""
    state = state or new_agent(AGENT)
    actions: list[Action] = []
    at = start
    for step in steps:
        at += 1.0
        event = confirmation(state) if step is CONFIRM else step
        state, emitted = blend(state, replace(event, at=at), P)
        actions.extend(emitted)
    return state, actions, at


def shown(actions: list[Action]) -> tuple[str, ...]:
    """Actions as a reader of the tables says them."""
    out = []
    for a in actions:
        if isinstance(a, SetVoiceState):
            out.append(f"voice {a.state}" + (f"/{a.reason_code_id}" if a.reason_code_id else ""))
        elif isinstance(a, InterruptChat):
            out.append("interrupt chat")
        elif isinstance(a, ResumeChat):
            out.append(f"resume chat {a.state}")
    return tuple(out)


@dataclass(frozen=True)
class Row:
    situation: str
    given: tuple
    when: tuple
    voice: str
    chat: Chat
    actions: tuple[str, ...]


def check(row: Row) -> AgentState:
    state, _, at = play(row.given)
    state, actions, _ = play(row.when, state, start=at)
    assert (state.voice, state.chat, shown(actions)) == (row.voice, row.chat, row.actions)
    return state


# -- table 1: media blending ---------------------------------------------------------------------

READY_BOTH = (voice("READY"),)
ON_ACD_CALL = (*READY_BOTH, voice("RESERVED"), call("d1", "PREROUTE_ACD_IN", "ALERTING"), voice("TALKING"))
CHATTING = (*READY_BOTH, chat("c1"), CONFIRM)

TABLE_1 = [
    Row("agent ready for both, no task", (), READY_BOTH, "READY", Chat.READY, ()),
    Row(
        "voice call arrives: RESERVED",
        READY_BOTH,
        (voice("RESERVED"),),
        "RESERVED",
        Chat.INTERRUPTED,
        ("interrupt chat",),
    ),
    Row(
        "voice call arrives: TALKING",
        READY_BOTH,
        (call("d1", "ACD_IN", "ALERTING"), voice("TALKING")),
        "TALKING",
        Chat.INTERRUPTED,
        ("interrupt chat",),
    ),
    Row(
        "voice call arrives: WORK (wrap-up)", ON_ACD_CALL, (hang_up("d1"), voice("WORK")), "WORK", Chat.INTERRUPTED, ()
    ),
    Row(
        "voice call ends: READY, chat restored",
        ON_ACD_CALL,
        (hang_up("d1"), voice("WORK"), voice("READY")),
        "READY",
        Chat.READY,
        ("resume chat READY",),
    ),
    Row(
        "chat arrives (agent had no chat): NOT_READY with the configured reason",
        READY_BOTH,
        (chat("c1"), CONFIRM),
        "NOT_READY",
        Chat.ACTIVE,
        (f"voice NOT_READY/{HANDLING_CHAT}",),
    ),
    Row(
        "chat arrives below the maximum: ACTIVE",
        CHATTING,
        (chat("c2"), chat("c3"), chat("c4")),
        "NOT_READY",
        Chat.ACTIVE,
        (),
    ),
    Row(
        "chat arrives at the maximum: BUSY",
        (*CHATTING, chat("c2"), chat("c3"), chat("c4")),
        (chat("c5"),),
        "NOT_READY",
        Chat.BUSY,
        (),
    ),
    Row(
        "chat ends below the maximum: ACTIVE again",
        (*CHATTING, chat("c2"), chat("c3"), chat("c4"), chat("c5")),
        (chat_end("c3"),),
        "NOT_READY",
        Chat.ACTIVE,
        (),
    ),
    Row(
        "all chats end: voice restored to READY, chat READY",
        (*CHATTING, chat("c2")),
        (chat_end("c1"), chat_end("c2"), CONFIRM),
        "READY",
        Chat.READY,
        ("voice READY",),
    ),
]


@pytest.mark.parametrize("row", TABLE_1, ids=lambda r: r.situation)
def test_media_blending_table(row: Row) -> None:
    check(row)


def test_first_chat_sets_the_configured_reason_and_the_connector_owns_it() -> None:
    state, actions, _ = play((*READY_BOTH, chat("c1")))
    [action] = actions
    assert action == SetVoiceState(AGENT, "NOT_READY", HANDLING_CHAT, action.request_id)
    assert action.request_id.startswith(f"cc-{AGENT}-")
    state, _, _ = play((CONFIRM,), state, start=10)
    assert (state.voice_reason_id, state.voice_hold, state.request.open) == (HANDLING_CHAT, True, False)


# -- table 2: internal calls ---------------------------------------------------------------------

INTERNAL_SITUATIONS = [
    ("transfer call arrived (CCE blind)", "TRANSFER"),
    ("transfer call arrived (CCX blind)", "OFFERED"),
    ("transfer call arrived (CCE consult transfer)", "CONSULT_OFFERED"),
    ("conference call arrived", "CONFERENCE"),
    ("consult call arrived", "CONSULT"),
    ("direct call to extension (outside caller)", "OTHER_IN"),
    ("direct call to extension (pre-routed)", "PREROUTE_DIRECT_AGENT"),
    ("direct call to extension (internal caller)", "AGENT_INSIDE"),
]


def test_internal_situations_cover_every_internal_call_type() -> None:
    assert {t for _, t in INTERNAL_SITUATIONS} == INTERNAL_CALL_TYPES


TABLE_2 = [
    Row(
        f"{situation}, no active chat",
        READY_BOTH,
        (call("d1", call_type, "ALERTING"), voice("TALKING")),
        "TALKING",
        Chat.INTERRUPTED,
        ("interrupt chat",),
    )
    for situation, call_type in INTERNAL_SITUATIONS
] + [
    Row(
        f"{situation}, one or more active chats",
        (*CHATTING, chat("c2")),
        (call("d1", call_type, "ALERTING"), voice("TALKING")),
        "TALKING",
        Chat.ACTIVE,
        (),
    )
    for situation, call_type in INTERNAL_SITUATIONS
]


@pytest.mark.parametrize("row", TABLE_2, ids=lambda r: r.situation)
def test_internal_calls_table(row: Row) -> None:
    check(row)


def test_internal_call_at_max_chats_leaves_the_agent_busy_not_interrupted() -> None:
    given = (*CHATTING, chat("c2"), chat("c3"), chat("c4"), chat("c5"))
    check(Row("", given, (call("d1", "CONSULT_OFFERED"), voice("TALKING")), "TALKING", Chat.BUSY, ()))


def test_after_an_internal_call_while_chatting_the_connector_still_owns_the_not_ready() -> None:
    given = (*CHATTING, call("d1", "OTHER_IN"), voice("TALKING"))
    state = check(Row("", given, (hang_up("d1"), voice("NOT_READY", HANDLING_CHAT)), "NOT_READY", Chat.ACTIVE, ()))
    assert state.voice_hold
    check(
        Row(
            "",
            (*given, hang_up("d1"), voice("NOT_READY", HANDLING_CHAT)),
            (chat_end("c1"),),
            "NOT_READY",
            Chat.READY,
            ("voice READY",),
        )
    )


def test_uccx_non_routed_call_leaves_the_agent_not_ready_but_is_still_a_call() -> None:
    # UCCX keeps the agent NOT_READY during a non-routed call: only the dialog tells
    # (docs/protocols/finesse.md, "User and agent states").
    given = (voice("NOT_READY", BREAK),)
    check(Row("", given, (call("d1", "OTHER_IN"),), "NOT_READY", Chat.INTERRUPTED, ("interrupt chat",)))
    check(Row("", (*given, call("d1", "OTHER_IN")), (hang_up("d1"),), "NOT_READY", Chat.READY, ("resume chat READY",)))


def test_routed_call_interrupts_even_an_agent_with_chats() -> None:
    # An ACD call can only reach a READY agent, so this is the race where the connector's NOT_READY
    # was still in flight; table 1 wins: no more chats while the routed call lasts.
    given = (*READY_BOTH, chat("c1"))
    check(Row("", given, (voice("RESERVED"),), "RESERVED", Chat.INTERRUPTED, ("interrupt chat",)))
    check(
        Row(
            "",
            given,
            (call("d1", "ACD_IN", "ALERTING"), voice("TALKING")),
            "TALKING",
            Chat.INTERRUPTED,
            ("interrupt chat",),
        )
    )


def test_routed_call_keeps_interrupting_through_wrap_up_while_chats_are_open() -> None:
    given = (*READY_BOTH, chat("c1"), voice("RESERVED"), call("d1", "ACD_IN"), voice("TALKING"))
    check(Row("", given, (hang_up("d1"), voice("WORK")), "WORK", Chat.INTERRUPTED, ()))


def test_an_agent_dialling_out_is_on_a_voice_task() -> None:
    given = (*CHATTING,)
    check(
        Row(
            "",
            given,
            (call("d1", "OUT", "INITIATING"), voice("TALKING")),
            "TALKING",
            Chat.INTERRUPTED,
            ("interrupt chat",),
        )
    )


def test_cce_consult_leg_reported_as_out_with_its_held_call_is_internal() -> None:
    consult_leg = DialogChanged(AGENT, "d2", "OUT", "INITIATING", associated_dialog_id="d1")
    check(Row("", (*CHATTING, chat("c2")), (consult_leg, voice("TALKING")), "TALKING", Chat.ACTIVE, ()))


def test_call_type_unknown_yet_does_not_interrupt_a_chatting_agent_until_finesse_names_it() -> None:
    given = (*CHATTING,)
    state = check(Row("", given, (call("d1", "", "INITIATING"),), "NOT_READY", Chat.ACTIVE, ()))
    check(
        Row(
            "",
            (*given, call("d1", "", "INITIATING")),
            (call("d1", "ACD_IN"),),
            "NOT_READY",
            Chat.INTERRUPTED,
            ("interrupt chat",),
        )
    )
    assert state.dialogs[0].call_type == ""


# -- the cases the reference leaves open (docs/blending.md) ----------------------------------------

OPEN_CASES = [
    Row(
        "agent sets NOT_READY themself while chatting: chats go on",
        CHATTING,
        (voice("NOT_READY", BREAK),),
        "NOT_READY",
        Chat.ACTIVE,
        (),
    ),
    Row(
        "agent sets NOT_READY themself while chatting: last chat end keeps their NOT_READY",
        (*CHATTING, voice("NOT_READY", BREAK)),
        (chat_end("c1"),),
        "NOT_READY",
        Chat.READY,
        (),
    ),
    Row(
        "agent sets READY themself while chatting: connector sets NOT_READY again",
        CHATTING,
        (voice("READY"),),
        "READY",
        Chat.ACTIVE,
        (f"voice NOT_READY/{HANDLING_CHAT}",),
    ),
    Row(
        "agent picks the connector's reason themself: it is theirs, not restored",
        (*READY_BOTH, voice("NOT_READY", BREAK), chat("c1"), voice("NOT_READY", HANDLING_CHAT)),
        (chat_end("c1"),),
        "NOT_READY",
        Chat.READY,
        (),
    ),
    Row(
        "chat arrives while the agent is NOT_READY by their own reason: voice left alone",
        (voice("NOT_READY", BREAK),),
        (chat("c1"),),
        "NOT_READY",
        Chat.ACTIVE,
        (),
    ),
    Row(
        "a chat arrives during a call: stays INTERRUPTED, voice untouched",
        ON_ACD_CALL,
        (chat("c1"),),
        "TALKING",
        Chat.INTERRUPTED,
        (),
    ),
    Row(
        "a chat arrives during a call: call ends, chat resumes and voice goes NOT_READY",
        (*ON_ACD_CALL, chat("c1")),
        (hang_up("d1"), voice("READY"), CONFIRM),
        "NOT_READY",
        Chat.ACTIVE,
        ("resume chat ACTIVE", f"voice NOT_READY/{HANDLING_CHAT}"),
    ),
    Row(
        "a call arrives at an agent NOT_READY for chat: stays NOT_READY",
        (*READY_BOTH, ChatReadyChanged(AGENT, ready=False)),
        (voice("RESERVED"), call("d1", "ACD_IN"), voice("TALKING")),
        "TALKING",
        Chat.NOT_READY,
        (),
    ),
    Row(
        "a call arrives at an agent NOT_READY for chat: nothing to restore after",
        (*READY_BOTH, ChatReadyChanged(AGENT, ready=False), voice("RESERVED"), call("d1", "ACD_IN"), voice("TALKING")),
        (hang_up("d1"), voice("READY")),
        "READY",
        Chat.NOT_READY,
        (),
    ),
    Row(
        "agent sets chat NOT_READY during the call: the interruption gives way to it",
        ON_ACD_CALL,
        (ChatReadyChanged(AGENT, ready=False),),
        "TALKING",
        Chat.NOT_READY,
        ("resume chat NOT_READY",),
    ),
    Row(
        "a chat ends during a call: the agent with no chat left is interrupted",
        (*CHATTING, call("d1", "CONSULT_OFFERED"), voice("TALKING")),
        (chat_end("c1"),),
        "TALKING",
        Chat.INTERRUPTED,
        ("interrupt chat",),
    ),
    Row(
        "a chat ends during a call: READY is restored once the call is over",
        (*CHATTING, call("d1", "CONSULT_OFFERED"), voice("TALKING"), chat_end("c1")),
        (hang_up("d1"), voice("NOT_READY", HANDLING_CHAT), CONFIRM),
        "READY",
        Chat.READY,
        ("resume chat READY", "voice READY"),
    ),
]


@pytest.mark.parametrize("row", OPEN_CASES, ids=lambda r: r.situation)
def test_open_cases(row: Row) -> None:
    check(row)


def test_finesse_refuses_a_change_no_retry_until_finesse_reports_news() -> None:
    state, actions, at = play((*READY_BOTH, chat("c1")))
    [request] = actions
    refused = FinesseRefused(
        AGENT, "NOT_READY", "Invalid State", "agent is reserved", at=at + 1, request_id=request.request_id
    )
    state, actions = blend(state, refused, P)
    assert actions == ()
    assert (state.request.open, state.refused) == (False, "NOT_READY")
    assert "Invalid State" in (state.last_error or "")
    # Chat events do not retry it: Finesse's state has not changed, the answer would be the same.
    state, actions, at = play((chat("c2"),), state, start=at + 1)
    assert shown(actions) == ()
    # Finesse reports the agent again (a call came and went, or a re-read): the change is due again.
    state, actions, _ = play((voice("RESERVED"), voice("TALKING"), voice("READY")), state, start=at)
    assert shown(actions) == ("interrupt chat", "resume chat ACTIVE", f"voice NOT_READY/{HANDLING_CHAT}")


def test_finesse_unavailable_is_a_refusal_that_a_re_read_retries() -> None:
    state, actions, at = play((*READY_BOTH, chat("c1")))
    halted = FinesseRefused(
        AGENT, "NOT_READY", "unavailable", "no Finesse node in service", at=at + 1, request_id=actions[0].request_id
    )
    state, actions = blend(state, halted, P)
    assert actions == ()
    state, actions, _ = play((voice("READY"),), state, start=at + 1)  # reconcile re-reads the User
    assert shown(actions) == (f"voice NOT_READY/{HANDLING_CHAT}",)


def test_asynchronous_refusal_names_only_the_request_id() -> None:
    # A CTI reject arrives as an <apiErrors> Update: requestId, no state
    # (docs/protocols/finesse.md, "Errors (ApiErrors)").
    state, actions, at = play((*READY_BOTH, chat("c1")))
    rejected = FinesseRefused(AGENT, "", "CTI", "rejected", at=at + 1, request_id=actions[0].request_id)
    state, actions = blend(state, rejected, P)
    assert (state.refused, state.request.open, actions) == ("NOT_READY", False, ())
    assert state.last_error == "Finesse refused a change: CTI: rejected"


def test_refusal_of_an_older_request_is_recorded_but_changes_nothing() -> None:
    state, _, at = play((*READY_BOTH, chat("c1")))
    stale = FinesseRefused(AGENT, "READY", "Invalid State", "old", at=at + 1, request_id=f"cc-{AGENT}-0")
    after, actions = blend(state, stale, P)
    assert actions == () and after.request == state.request and after.refused is None


# -- reconciling 202-then-notification --------------------------------------------------------------


def test_confirmation_without_request_id_is_recognised_by_content() -> None:
    # The polling source cannot see requestIds: the connector's change is what it asked for last.
    state, _, _ = play((*READY_BOTH, chat("c1"), voice("NOT_READY", HANDLING_CHAT)))
    assert (state.voice_hold, state.request.open) == (True, False)


def test_late_confirmation_after_the_request_timed_out_is_still_the_connectors() -> None:
    state, actions, _ = play((*READY_BOTH, chat("c1")))
    late = voice("NOT_READY", HANDLING_CHAT, request_id=actions[0].request_id)
    state, _ = blend(state, replace(late, at=500.0), P)
    assert state.voice_hold


def test_foreign_request_id_is_the_agents_change_even_with_the_connectors_reason() -> None:
    state, _, _ = play((*READY_BOTH, chat("c1"), voice("NOT_READY", HANDLING_CHAT, request_id="desktop-42")))
    assert not state.voice_hold
    assert state.request.open  # the connector's own request is still to be confirmed
    state, _, _ = play((CONFIRM,), state, start=10)
    assert state.voice_hold


def test_repeat_of_the_connectors_not_ready_without_request_id_keeps_it_the_connectors() -> None:
    state, _, _ = play((*CHATTING, voice("NOT_READY", HANDLING_CHAT), voice("NOT_READY", HANDLING_CHAT)))
    assert state.voice_hold


def test_agent_re_picking_the_connectors_reason_from_the_desktop_makes_it_theirs() -> None:
    state, _, _ = play((*CHATTING, voice("NOT_READY", HANDLING_CHAT, request_id="desktop-7"), chat_end("c1")))
    assert not state.voice_hold


def test_one_voice_request_in_flight_at_a_time() -> None:
    # The first chat asks NOT_READY; it ends before Finesse confirms: no READY is asked meanwhile.
    state, actions, _ = play((*READY_BOTH, chat("c1"), chat_end("c1")))
    assert shown(actions) == (f"voice NOT_READY/{HANDLING_CHAT}",)
    # The confirmation then shows the connector's NOT_READY with no chat: READY is due.
    state, actions, _ = play((CONFIRM, CONFIRM), state, start=10)
    assert shown(actions) == ("voice READY",)
    assert (state.voice, state.chat, state.voice_hold) == ("READY", Chat.READY, False)


def test_unconfirmed_request_is_asked_again_after_the_timeout() -> None:
    state, actions, at = play((*READY_BOTH, chat("c1")))
    state, again = blend(state, ChatAssigned(AGENT, "c2", at=at + 5), P)
    assert again == ()  # still in flight
    state, again = blend(state, ChatAssigned(AGENT, "c3", at=at + P.request_timeout + 1), P)
    assert shown(list(again)) == (f"voice NOT_READY/{HANDLING_CHAT}",)
    assert again[0].request_id != actions[0].request_id


def test_older_voice_report_is_ignored() -> None:
    state, _, _ = play((*READY_BOTH, voice("RESERVED"), voice("TALKING")))
    stale, actions = blend(state, VoiceStateChanged(AGENT, "READY", at=1.5), P)
    assert (stale.voice, stale.chat, actions) == ("TALKING", Chat.INTERRUPTED, ())


def test_duplicate_and_late_chat_events_do_not_change_the_count() -> None:
    state, _, _ = play((*CHATTING, chat("c1"), chat("c2"), chat_end("c2"), chat("c2"), chat_end("c9")))
    assert state.chats == ("c1",)


def test_late_dialog_update_after_hang_up_does_not_resurrect_the_call() -> None:
    state, _, _ = play((*ON_ACD_CALL, hang_up("d1"), voice("READY"), call("d1", "ACD_IN", "ACTIVE")))
    assert (state.dialogs, state.chat) == ((), Chat.READY)


def test_ready_clears_a_dialog_whose_end_was_missed() -> None:
    state, _, _ = play((*READY_BOTH, call("d1", "OTHER_IN"), voice("READY")))
    assert (state.dialogs, state.chat) == ((), Chat.READY)


def test_dialog_with_no_news_for_max_call_seconds_is_presumed_gone() -> None:
    state, _, _ = play((voice("NOT_READY", BREAK), call("d1", "OTHER_IN")))
    assert state.chat is Chat.INTERRUPTED
    state, actions = blend(state, ChatReadyChanged(AGENT, True, at=P.max_call_seconds + 10), P)
    assert (state.dialogs, state.chat, shown(list(actions))) == ((), Chat.READY, ("resume chat READY",))


# -- presence, policy, chat side ------------------------------------------------------------------


def test_logout_makes_chat_not_ready_and_lifts_an_interruption() -> None:
    check(Row("", READY_BOTH, (voice("NOT_READY", BREAK), voice("LOGOUT")), "LOGOUT", Chat.NOT_READY, ()))
    check(
        Row(
            "",
            (voice("NOT_READY", BREAK), call("d1", "OTHER_IN")),
            (voice("LOGOUT"),),
            "LOGOUT",
            Chat.NOT_READY,
            ("resume chat NOT_READY",),
        )
    )


def test_agent_not_chat_enabled_is_chat_not_ready_but_a_chat_still_blocks_voice() -> None:
    disabled = ChatEnabledChanged(AGENT, enabled=False)
    check(
        Row(
            "",
            (*READY_BOTH, disabled),
            (chat("c1"), CONFIRM),
            "NOT_READY",
            Chat.NOT_READY,
            (f"voice NOT_READY/{HANDLING_CHAT}",),
        )
    )
    check(Row("", (*READY_BOTH, disabled), (ChatEnabledChanged(AGENT, enabled=True),), "READY", Chat.READY, ()))


def test_voice_state_unknown_means_no_voice_action() -> None:
    check(Row("", (), (chat("c1"),), "UNKNOWN", Chat.ACTIVE, ()))


def test_chat_side_failure_is_retried_by_the_next_event_not_at_once() -> None:
    state, actions, at = play((*READY_BOTH, voice("RESERVED")))
    assert shown(actions[-1:]) == ("interrupt chat",)
    state, actions = blend(state, ChatSideFailed(AGENT, held=True, message="503", at=at + 1), P)
    assert (actions, state.chat_held) == ((), False)
    state, actions, _ = play((voice("TALKING"),), state, start=at + 1)
    assert shown(actions) == ("interrupt chat",)
    assert state.chat_held


def test_chat_side_failure_of_a_superseded_instruction_is_ignored() -> None:
    state, _, at = play((*READY_BOTH, voice("RESERVED"), voice("READY")))  # interrupt then resume
    after, actions = blend(state, ChatSideFailed(AGENT, held=True, message="late", at=at + 1), P)
    assert (after.chat_held, actions) == (False, ())


def test_routable_only_when_ready_or_active() -> None:
    assert [c for c in Chat if routable(replace(new_agent(AGENT), chat=c))] == [Chat.READY, Chat.ACTIVE]


def test_event_for_another_agent_is_rejected() -> None:
    with pytest.raises(ValueError, match="applied to agent"):
        blend(new_agent("other"), voice("READY"), P)


# -- the docs table is the code's table ------------------------------------------------------------


@pytest.mark.parametrize("rule", [*CHAT_RULES, *VOICE_RULES], ids=lambda r: r.situation)
def test_every_rule_is_written_down_in_docs(rule) -> None:
    text = re.sub(r"\s+", " ", DOCS.read_text())
    assert f"| {rule.situation} |" in text


# -- properties: random events against a simulated Finesse never reach a forbidden state -------------


class World:
    """Finesse and the chat side around one agent, as the connector meets them: voice requests are
    applied later (202, then a notification echoing the requestId), refused while a call is up or
    the agent is logged out, sometimes lost or met by a halted cluster; calls and chats come and go.
    Every notification reaches the machine (`feed`), so the machine's view is Finesse's view."""

    def __init__(self, agent_id: str, policy: Policy = P) -> None:
        self.agent_id, self.policy = agent_id, policy
        self.state = new_agent(agent_id)
        self.at = 0.0
        self.voice, self.reason = "NOT_READY", None  # as Finesse has it
        self.owner = "agent"  # who set Finesse's current NOT_READY / READY: agent, connector or system
        self.in_sync = True  # False while a notification was lost and no re-read happened since
        self.after_call: tuple[str, str | None, str] = ("READY", None, "system")
        self.dialog: tuple[str, str] | None = None  # (id, call type)
        self.requests: list[SetVoiceState] = []
        self.chats: set[str] = set()
        self.chat_side_held = False
        self.serial = 0
        self.feed(VoiceStateChanged(agent_id, "NOT_READY"))

    # -- plumbing --------------------------------------------------------------------------------

    def feed(self, event) -> None:
        self.at += 1.0
        self.state, actions = blend(self.state, replace(event, at=self.at), self.policy)
        for action in actions:
            if isinstance(action, SetVoiceState):
                if self.in_sync and action.state == "READY":
                    assert (self.owner, self.voice, self.reason) == ("connector", "NOT_READY", HANDLING_CHAT), (
                        "the connector undoes a NOT_READY it does not own"
                    )
                if self.in_sync and action.state == "NOT_READY":
                    assert self.voice == "READY", f"the connector overrides {self.voice}/{self.reason}"
                self.requests.append(action)
            else:
                self.chat_side_held = isinstance(action, InterruptChat)

    def tell_voice(self, request_id: str | None = None) -> None:
        self.feed(VoiceStateChanged(self.agent_id, self.voice, reason_code_id=self.reason, request_id=request_id))

    def next_id(self, kind: str) -> str:
        self.serial += 1
        return f"{kind}{self.serial}"

    # -- what happens out there --------------------------------------------------------------------

    def assign_chat(self) -> None:
        chat_id = self.next_id("c")
        self.chats.add(chat_id)
        self.feed(ChatAssigned(self.agent_id, chat_id))

    def end_chat(self, index: int) -> None:
        if self.chats:
            chat_id = sorted(self.chats)[index % len(self.chats)]
            self.chats.discard(chat_id)
            self.feed(ChatEnded(self.agent_id, chat_id))

    def set_chat_ready(self, ready: bool) -> None:
        self.feed(ChatReadyChanged(self.agent_id, ready))

    def routed_call(self) -> None:
        self.flush()
        if self.voice != "READY" or self.dialog:
            return  # an ACD call reaches only a READY agent
        self.after_call = ("READY", None, "system")
        self.dialog = (self.next_id("d"), "PREROUTE_ACD_IN")
        self.voice, self.reason = "RESERVED", None
        self.tell_voice()
        self.feed(DialogChanged(self.agent_id, self.dialog[0], self.dialog[1], "ALERTING"))
        self.voice = "TALKING"
        self.tell_voice()

    def internal_call(self, call_type: str, uccx: bool) -> None:
        self.flush()
        if self.voice not in ("READY", "NOT_READY") or self.dialog:
            return
        self.after_call = (self.voice, self.reason, self.owner)
        self.dialog = (self.next_id("d"), call_type)
        self.feed(DialogChanged(self.agent_id, self.dialog[0], call_type, "ALERTING"))
        if not (uccx and self.voice == "NOT_READY"):  # UCCX leaves a NOT_READY agent NOT_READY
            self.voice, self.reason = "TALKING", None
            self.tell_voice()

    def end_call(self, wrap_up: bool) -> None:
        self.flush()
        if not self.dialog:
            return
        dialog_id, call_type = self.dialog
        self.dialog = None
        self.feed(DialogChanged(self.agent_id, dialog_id, call_type, "DROPPED", ended=True))
        if call_type == "PREROUTE_ACD_IN" and wrap_up:
            self.voice, self.reason = "WORK", None
            self.tell_voice()
            self.voice, self.reason, self.owner = "NOT_READY", None, "system"  # WORK times out to NOT_READY
        else:
            self.voice, self.reason, self.owner = self.after_call
        self.tell_voice()

    def agent_picks(self, choice: str) -> None:
        self.flush()
        if self.dialog or self.voice not in ("READY", "NOT_READY", "LOGOUT"):
            return
        if choice == "LOGOUT" and self.voice != "NOT_READY":
            return  # LOGOUT only from NOT_READY
        if self.voice == "LOGOUT" and choice != "LOGIN":
            return
        picked = {
            "READY": ("READY", None),
            "BREAK": ("NOT_READY", BREAK),
            "HANDLING_CHAT": ("NOT_READY", HANDLING_CHAT),
            "LOGOUT": ("LOGOUT", None),
            "LOGIN": ("NOT_READY", None),
        }[choice]
        self.voice, self.reason = picked
        self.owner = "agent"
        self.tell_voice(request_id=self.next_id("desktop-"))

    def finesse_processes(self, outcome: str = "ok") -> None:
        if not self.requests:
            return
        request = self.requests.pop(0)
        if outcome == "halted":
            self.feed(
                FinesseRefused(self.agent_id, request.state, "unavailable", "halted", request_id=request.request_id)
            )
        elif self.dialog or self.voice not in ("READY", "NOT_READY"):
            self.feed(
                FinesseRefused(self.agent_id, request.state, "Invalid State", self.voice, request_id=request.request_id)
            )
        else:
            self.voice, self.reason, self.owner = request.state, request.reason_code_id, "connector"
            if outcome == "lost":
                self.in_sync = False
            else:
                self.tell_voice(request_id=request.request_id)

    def flush(self) -> None:
        """Finesse handles PUTs in arrival order within moments: whatever the connector sent before
        this voice happening is applied (or refused) first; its notification may still be lost."""
        while self.requests:
            self.finesse_processes(OUTCOMES[self.serial % len(OUTCOMES)])

    def reread(self) -> None:
        """What reconcile does: read the User and feed it as a notification without requestId."""
        self.in_sync = True
        self.tell_voice()

    def wait(self, seconds: float) -> None:
        self.at += seconds

    # -- what must hold ----------------------------------------------------------------------------

    def check(self) -> None:
        """Nothing the tables forbid, whatever the order of events."""
        s, p = self.state, self.policy
        n = len(s.chats)
        assert set(s.chats) == self.chats
        assert self.chat_side_held == s.chat_held == (s.chat is Chat.INTERRUPTED)
        if (self.dialog and self.dialog[1] == "PREROUTE_ACD_IN") or self.voice in ("RESERVED", "WORK"):
            assert not routable(s), "a chat could be routed to an agent on a routed call or in wrap-up"
        if self.dialog and n == 0:
            assert not routable(s), "a chat could be routed to an agent on a call with no chat"
        if s.chat is Chat.INTERRUPTED:
            assert self.dialog or self.voice in ("RESERVED", "TALKING", "WORK"), "interrupted with no call"
        if s.chat is Chat.BUSY:
            assert n >= p.max_chats
        if s.chat is Chat.ACTIVE:
            assert 0 < n < p.max_chats
        if s.chat is Chat.READY:
            assert n == 0 and not self.dialog
        if self.voice == "LOGOUT" or not s.chat_ready:
            assert s.chat is Chat.NOT_READY
        if s.voice_hold:
            assert s.voice in ("NOT_READY", "TALKING") and (
                s.voice != "NOT_READY" or s.voice_reason_id == HANDLING_CHAT
            )

    def quiesce(self) -> None:
        """Calls end, Finesse works through every request, the periodic reconcile re-reads once
        unconfirmed requests have timed out: the desired state holds."""
        self.end_call(wrap_up=False)
        for _ in range(10):
            self.wait(self.policy.request_timeout)
            self.reread()
            if not self.requests:
                break
            while self.requests:
                self.finesse_processes()
        assert not self.requests, "the connector keeps asking: no fixed point"
        s, n = self.state, len(self.chats)
        assert (s.voice, s.voice_reason_id) == (self.voice, self.reason)
        if n:
            assert self.voice != "READY", "an agent with a chat is READY for voice calls"
        if n == 0:
            assert (self.owner, self.voice, self.reason) != ("connector", "NOT_READY", HANDLING_CHAT), "not restored"
        if self.voice == "LOGOUT" or not s.chat_ready:
            expected = Chat.NOT_READY
        else:
            expected = Chat.BUSY if n >= P.max_chats else Chat.ACTIVE if n else Chat.READY
        assert s.chat is expected
        self.check()


OPERATIONS = (
    "assign_chat",
    "end_chat",
    "chat_ready",
    "routed_call",
    "internal_call",
    "end_call",
    "agent_picks",
    "finesse_processes",
    "reread",
    "wait",
)
CHOICES = ("READY", "BREAK", "HANDLING_CHAT", "LOGOUT", "LOGIN")
OUTCOMES = ("ok", "ok", "ok", "lost", "halted")


def step(world: World, op: str, n: int) -> None:
    """One random happening, chosen by `op`, parametrised by the number `n`."""
    match op:
        case "assign_chat":
            world.assign_chat()
        case "end_chat":
            world.end_chat(n)
        case "chat_ready":
            world.set_chat_ready(n % 4 != 0)
        case "routed_call":
            world.routed_call()
        case "internal_call":
            world.internal_call(sorted(INTERNAL_CALL_TYPES)[n % len(INTERNAL_CALL_TYPES)], uccx=n % 2 == 0)
        case "end_call":
            world.end_call(wrap_up=n % 2 == 0)
        case "agent_picks":
            world.agent_picks(CHOICES[n % len(CHOICES)])
        case "finesse_processes":
            world.finesse_processes(OUTCOMES[n % len(OUTCOMES)])
        case "reread":
            world.reread()
        case "wait":
            world.wait(float(n % 60))
    world.check()


def test_two_hundred_agents_random_interleaved_events_never_reach_a_forbidden_state() -> None:
    rng = random.Random(20240604)
    worlds = [World(f"{1000 + i}") for i in range(200)]
    for world in worlds:
        world.agent_picks("READY")
    for _ in range(20_000):
        step(rng.choice(worlds), rng.choice(OPERATIONS), rng.randrange(1000))
    for world in worlds:
        world.quiesce()
    assert sum(len(w.chats) for w in worlds) > 0 and any(w.state.chat is Chat.BUSY for w in worlds)


class BlendingMachine(RuleBasedStateMachine):
    """Hypothesis explores event orders for one agent (agents are independent in the pure machine)."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World(AGENT)

    @rule(op=st.sampled_from(OPERATIONS), n=st.integers(min_value=0, max_value=999))
    def happen(self, op: str, n: int) -> None:
        step(self.world, op, n)

    @rule()
    def quiesce(self) -> None:
        self.world.quiesce()

    @invariant()
    def nothing_forbidden(self) -> None:
        self.world.check()


TestBlendingMachine = BlendingMachine.TestCase
TestBlendingMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
