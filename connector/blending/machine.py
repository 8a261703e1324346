"""Media blending: what an agent's voice and chat states should be, as a pure function.

`blend(state, event, policy)` returns the agent's new state and the actions that move Finesse and the
chat side towards it. It does no I/O and reads no clock (time arrives in the events), so every row
of the reference tables and every decided open case is a one-line test (docs/blending.md).

How it works, in three steps that read like the tables:
1. *observe*: the event updates the facts (Finesse's voice state, live dialogs, open chats, the
   agent's chat readiness, what the connector asked Finesse and whether Finesse confirmed it);
2. *decide*: the chat state is the first matching row of `CHAT_RULES`, the voice state the connector
   wants is the first matching row of `VOICE_RULES`;
3. *act*: the difference between the decision and what was last asked becomes actions.

Invariants:
- a chat state is never stored that `CHAT_RULES` would not derive from the stored facts, so "the
  state before the interruption" is restored by re-deriving it from facts a call does not touch
  (chat readiness, open chats); a chat that ended during the call is reflected in the restored state;
- at most one voice request per agent is in flight: Finesse answers 202 and confirms by notification,
  so a new request is made only after confirmation, refusal, or `policy.request_timeout` seconds;
- the connector undoes only its own NOT_READY: `voice_hold` is True only while Finesse shows the
  NOT_READY the connector asked for (or will return the agent to it after a call) and the agent
  has not picked a state since;
- the chat side is told only on entering or leaving INTERRUPTED, and `chat_held` is what it was last
  told, so a failed call to it is retried by the next event instead of being forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Generic, TypeVar

from connector.blending.events import (
    BlendingEvent,
    ChatAssigned,
    ChatEnabledChanged,
    ChatEnded,
    ChatReadyChanged,
    ChatSideFailed,
    DialogChanged,
    FinesseRefused,
    VoiceStateChanged,
)

# -- Finesse facts (docs/protocols/finesse.md, "User and agent states", "Classifying a call") ----

READY = "READY"
NOT_READY = "NOT_READY"
LOGOUT = "LOGOUT"
UNKNOWN = "UNKNOWN"

VOICE_STATES = (
    "LOGOUT",
    "NOT_READY",
    "READY",
    "RESERVED",
    "RESERVED_OUTBOUND",
    "RESERVED_OUTBOUND_PREVIEW",
    "TALKING",
    "HOLD",
    "WORK",
    "WORK_READY",
    "UNKNOWN",
)
# User states in which the agent is on a call or wrapping one up (Finesse drives these itself).
ON_CALL_STATES = frozenset(
    {"RESERVED", "RESERVED_OUTBOUND", "RESERVED_OUTBOUND_PREVIEW", "TALKING", "HOLD", "WORK", "WORK_READY"}
)
# Finesse reserves only READY agents, and only for routed (ACD / campaign) calls.
RESERVED_STATES = frozenset({"RESERVED", "RESERVED_OUTBOUND", "RESERVED_OUTBOUND_PREVIEW"})
# States the agent (or a supervisor) picks; the others are set by Finesse as calls come and go.
AGENT_PICKED_STATES = frozenset({READY, NOT_READY, LOGOUT})
# Internal calls interrupt chat only when the agent has no chat (table 2). CCE/CCX names for
# transfer, consult, conference and a direct call to the extension (docs/protocols/finesse.md,
# "Classifying a call").
INTERNAL_CALL_TYPES = frozenset(
    {
        "TRANSFER",
        "CONSULT",
        "CONSULT_OFFERED",
        "CONFERENCE",
        "OTHER_IN",
        "PREROUTE_DIRECT_AGENT",
        "AGENT_INSIDE",
        "OFFERED",
    }
)
# Outgoing leg types that CCE reports for a consult when the leg names the held call it belongs to.
CONSULT_LEG_TYPES = frozenset({"OUT", "AGENT_INSIDE"})
# Participant states after which the agent is no longer on the dialog; wrap-up is the User's WORK.
ENDED_PARTICIPANT_STATES = frozenset({"DROPPED", "FAILED", "WRAP_UP", "CLOSED"})

REQUEST_ID_PREFIX = "cc-"
_RECENT_LIMIT = 32  # ended chat / dialog ids remembered, so a late duplicate cannot resurrect them


class Chat(StrEnum):
    """The agent's chat state, as the chat side routes by it."""

    READY = "READY"
    NOT_READY = "NOT_READY"
    ACTIVE = "ACTIVE"
    BUSY = "BUSY"
    INTERRUPTED = "INTERRUPTED"


ROUTABLE = frozenset({Chat.READY, Chat.ACTIVE})


@dataclass(frozen=True)
class Policy:
    """Per-deployment settings the machine needs; `reason_code_id` is resolved from the configured
    label once at start (Finesse PUTs take the database id, not the code or label)."""

    reason_code_id: str
    reason_label: str = "Handling Chat"
    max_chats: int = 5
    request_timeout: float = 30.0  # after this, an unconfirmed voice request counts as lost
    max_call_seconds: float = 8 * 3600.0  # a dialog with no news for this long is presumed gone


@dataclass(frozen=True)
class Dialog:
    """A live voice dialog the agent is on."""

    id: str
    call_type: str
    at: float = 0.0


@dataclass(frozen=True)
class VoiceRequest:
    """The connector's latest voice state request. `open` until Finesse confirms or refuses it; kept
    after that, because a notification lost earlier may still show that Finesse applied it."""

    request_id: str
    state: str
    at: float
    open: bool = True


@dataclass(frozen=True)
class AgentState:
    """Everything the machine knows about one agent. Immutable; `blend` returns a new one."""

    agent_id: str
    chat_enabled: bool = True
    # voice, as Finesse last reported it
    voice: str = UNKNOWN
    voice_reason_id: str | None = None
    voice_at: float = 0.0  # last report (a stale-report guard)
    presence: tuple[str, str | None] = (UNKNOWN, None)  # last agent-pickable state and its reason
    presence_changed_at: float = 0.0
    dialogs: tuple[Dialog, ...] = ()
    ended_dialogs: tuple[str, ...] = ()
    routed_call: bool = False  # the current call (until the agent is idle again) is a routed one
    # the connector's side of voice
    voice_hold: bool = False
    request: VoiceRequest | None = None
    refused: str | None = None  # state Finesse refused; not asked again until Finesse reports news
    last_error: str | None = None
    seq: int = 0
    # chat
    chats: tuple[str, ...] = ()
    ended_chats: tuple[str, ...] = ()
    chat_ready: bool = True
    chat: Chat = Chat.READY
    chat_held: bool = False
    updated_at: float = 0.0


# -- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetVoiceState:
    """PUT the agent's Finesse User state (`reason_code_id` with NOT_READY)."""

    agent_id: str
    state: str
    reason_code_id: str | None
    request_id: str


@dataclass(frozen=True)
class InterruptChat:
    """Tell the chat side to route no chat to the agent: a voice call has the agent."""

    agent_id: str
    request_id: str


@dataclass(frozen=True)
class ResumeChat:
    """Tell the chat side the interruption is over; `state` is the chat state the agent returns to."""

    agent_id: str
    state: Chat
    request_id: str


Action = SetVoiceState | InterruptChat | ResumeChat


# -- derived facts ------------------------------------------------------------------------------


def on_call(s: AgentState) -> bool:
    """On a call or wrapping one up. The dialog check matters on UCCX, where a non-routed call
    leaves the agent NOT_READY (docs/protocols/finesse.md, "User and agent states")."""
    return s.voice in ON_CALL_STATES or bool(s.dialogs)


def is_connector_reason(reason_code_id: str | None, reason_label: str | None, p: Policy) -> bool:
    if reason_code_id is not None:
        return reason_code_id == p.reason_code_id
    return reason_label is not None and reason_label == p.reason_label


def shows_connector_not_ready(s: AgentState, p: Policy) -> bool:
    """Finesse shows the NOT_READY reason the connector uses while the agent chats."""
    return s.voice == NOT_READY and s.voice_reason_id == p.reason_code_id


def in_flight(s: AgentState, p: Policy, now: float) -> bool:
    """A voice request is out and may still be confirmed (Finesse answered 202, no notification yet)."""
    return s.request is not None and s.request.open and now - s.request.at < p.request_timeout


# -- the decision tables (docs/blending.md mirrors them row by row) -----------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Rule(Generic[T]):
    """One row of a decision table: the first row whose `when` holds decides."""

    situation: str
    when: Callable[[AgentState, Policy], bool]
    then: T
    why: str


CHAT_RULES: tuple[Rule[Chat], ...] = (
    Rule(
        "agent is not chat-enabled",
        lambda s, p: not s.chat_enabled,
        Chat.NOT_READY,
        "the deployment's chat_enabled policy leaves them out; chats already assigned still count",
    ),
    Rule(
        "agent is logged out of Finesse",
        lambda s, p: s.voice == LOGOUT,
        Chat.NOT_READY,
        "the desktop that hosts the chat is closed",
    ),
    Rule(
        "agent set chat NOT_READY",
        lambda s, p: not s.chat_ready,
        Chat.NOT_READY,
        "their choice; a call does not override it, so there is nothing to restore when the call ends",
    ),
    Rule(
        "routed call (reserved, talking, hold, wrap-up)",
        lambda s, p: on_call(s) and s.routed_call,
        Chat.INTERRUPTED,
        "table 1: a voice call interrupts chat; chats already open stay open",
    ),
    Rule(
        "any call and no active chat",
        lambda s, p: on_call(s) and not s.chats,
        Chat.INTERRUPTED,
        "table 2: an internal call interrupts an agent with no chat",
    ),
    Rule(
        "at the configured maximum of chats",
        lambda s, p: len(s.chats) >= p.max_chats,
        Chat.BUSY,
        "table 1: BUSY once the agent holds max_chats; an internal call does not interrupt (table 2)",
    ),
    Rule(
        "one or more chats",
        lambda s, p: bool(s.chats),
        Chat.ACTIVE,
        "table 1: ACTIVE below the maximum; an internal call does not interrupt (table 2)",
    ),
    Rule("no task", lambda s, p: True, Chat.READY, "table 1: ready for both, no task"),
)

VOICE_RULES: tuple[Rule[str | None], ...] = (
    Rule(
        "voice state not known yet",
        lambda s, p: s.voice == UNKNOWN,
        None,
        "never act on a guess: agent sync or the next notification tells",
    ),
    Rule(
        "on a call or in wrap-up",
        lambda s, p: on_call(s),
        None,
        "Finesse drives call states and refuses agent-state changes mid-call; act when the agent is idle",
    ),
    Rule(
        "chatting and READY for voice",
        lambda s, p: bool(s.chats) and s.voice == READY,
        NOT_READY,
        "table 1: the first chat makes the agent NOT_READY with the configured reason",
    ),
    Rule(
        "no chat left, the connector's NOT_READY still in place",
        lambda s, p: not s.chats and s.voice_hold and shows_connector_not_ready(s, p),
        READY,
        "table 1: all chats end, voice restored to READY; only the connector's own NOT_READY is undone",
    ),
    Rule(
        "anything else",
        lambda s, p: True,
        None,
        "the agent's own NOT_READY or LOGOUT stands, as does a NOT_READY the connector no longer owns",
    ),
)


def first_rule(rules: tuple[Rule[T], ...], s: AgentState, p: Policy) -> Rule[T]:
    return next(rule for rule in rules if rule.when(s, p))


def chat_state(s: AgentState, p: Policy) -> Chat:
    return first_rule(CHAT_RULES, s, p).then


def wanted_voice(s: AgentState, p: Policy) -> str | None:
    """The User state the connector should ask Finesse for now, or None to leave it alone."""
    return first_rule(VOICE_RULES, s, p).then


# -- observe: each event updates the facts ------------------------------------------------------


def _remember(recent: tuple[str, ...], item: str) -> tuple[str, ...]:
    return (*tuple(r for r in recent if r != item), item)[-_RECENT_LIMIT:]


def _request_prefix(agent_id: str) -> str:
    return f"{REQUEST_ID_PREFIX}{agent_id}-"


def _is_ours(s: AgentState, e: VoiceStateChanged, reason_id: str | None, p: Policy) -> bool:
    """The change answers a connector request: by its requestId, or (polling carries none) because
    it is the first presence change since the request and it is exactly what was asked. A presence
    change in between (the agent picking a state) means this one is not ours; call states in between
    do not count, since Finesse returns the agent to their presence after a call."""
    if e.request_id:
        return e.request_id.startswith(_request_prefix(s.agent_id))
    r = s.request
    if r is None or r.state != e.state or s.presence_changed_at > r.at or (e.state, reason_id) == s.presence:
        return False
    return e.state != NOT_READY or reason_id == p.reason_code_id


def _observe_voice(s: AgentState, e: VoiceStateChanged, p: Policy) -> AgentState:
    # `at` is the connector's receipt time (one clock): an older report was overtaken by a newer one.
    if e.at < s.voice_at:
        return s
    connector_reason = e.state == NOT_READY and is_connector_reason(e.reason_code_id, e.reason_label, p)
    reason_id = e.reason_code_id if e.state in (NOT_READY, LOGOUT) else None
    if connector_reason and reason_id is None:
        reason_id = p.reason_code_id  # reported by label only
    ours = _is_ours(s, e, reason_id, p)
    if ours:
        hold = connector_reason
    elif e.request_id:
        hold = False  # the desktop's (or a supervisor's) own request: ownership passes to them
    elif e.state in AGENT_PICKED_STATES:
        hold = s.voice_hold and connector_reason  # only a repeat of the connector's NOT_READY keeps it
    else:
        hold = s.voice_hold  # call states: Finesse returns the agent to the NOT_READY afterwards
    request = s.request
    if ours and request is not None and e.request_id in (None, request.request_id):
        request = replace(request, open=False)
    presence = (e.state, reason_id) if e.state in AGENT_PICKED_STATES else s.presence
    dialogs, ended = s.dialogs, s.ended_dialogs
    if e.state in (READY, LOGOUT):  # a READY or logged-out agent is on no call: drop dialogs we missed
        for d in dialogs:
            ended = _remember(ended, d.id)
        dialogs = ()
    return replace(
        s,
        voice=e.state,
        voice_reason_id=reason_id,
        voice_at=e.at,
        presence=presence,
        presence_changed_at=e.at if presence != s.presence else s.presence_changed_at,
        voice_hold=hold,
        request=request,
        refused=None,
        dialogs=dialogs,
        ended_dialogs=ended,
    )


def _observe_dialog(s: AgentState, e: DialogChanged, p: Policy) -> AgentState:
    others = tuple(d for d in s.dialogs if d.id != e.dialog_id)
    if e.ended or e.state in ENDED_PARTICIPANT_STATES:
        return replace(s, dialogs=others, ended_dialogs=_remember(s.ended_dialogs, e.dialog_id))
    if e.dialog_id in s.ended_dialogs:
        return s  # a late update of a dialog already gone
    known = next((d.call_type for d in s.dialogs if d.id == e.dialog_id), "")
    call_type = e.call_type or known
    if call_type in CONSULT_LEG_TYPES and e.associated_dialog_id:
        # CCE: an outgoing leg tied to a held call is a consult (docs/protocols/finesse.md, "Classifying a call")
        call_type = "CONSULT"
    return replace(s, dialogs=(*others, Dialog(e.dialog_id, call_type, e.at)))


def _observe_chat_assigned(s: AgentState, e: ChatAssigned, p: Policy) -> AgentState:
    if e.chat_id in s.chats or e.chat_id in s.ended_chats:
        return s  # duplicate, or a late copy of a chat that already ended
    return replace(s, chats=(*s.chats, e.chat_id))


def _observe_chat_ended(s: AgentState, e: ChatEnded, p: Policy) -> AgentState:
    chats = tuple(c for c in s.chats if c != e.chat_id)
    return replace(s, chats=chats, ended_chats=_remember(s.ended_chats, e.chat_id))


def _observe_chat_ready(s: AgentState, e: ChatReadyChanged, p: Policy) -> AgentState:
    return replace(s, chat_ready=e.ready)


def _observe_chat_enabled(s: AgentState, e: ChatEnabledChanged, p: Policy) -> AgentState:
    return replace(s, chat_enabled=e.enabled)


def _observe_refused(s: AgentState, e: FinesseRefused, p: Policy) -> AgentState:
    error = f"Finesse refused {e.requested_state or 'a change'}: {e.error_type}: {e.message}"
    r = s.request
    if r is None or not r.open:
        matches = False
    elif e.request_id:  # an <apiErrors> Update names the request, not the state
        matches = e.request_id == r.request_id
    else:
        matches = r.state == e.requested_state
    if r is None or not matches:  # r is None only if nothing matches; said so the type checker knows r below
        return replace(s, last_error=error)  # about an older request, already superseded
    return replace(s, request=replace(r, open=False), refused=r.state, last_error=error)


def _observe_chat_side_failed(s: AgentState, e: ChatSideFailed, p: Policy) -> AgentState:
    if e.held != s.chat_held:
        return s  # a newer instruction superseded the one that failed
    return replace(s, chat_held=not e.held, last_error=f"chat side: {e.message}")


# The event's type selects its observer, which takes that type: Any is the one parameter type all share.
_OBSERVERS: dict[type, Callable[[AgentState, Any, Policy], AgentState]] = {
    VoiceStateChanged: _observe_voice,
    DialogChanged: _observe_dialog,
    ChatAssigned: _observe_chat_assigned,
    ChatEnded: _observe_chat_ended,
    ChatReadyChanged: _observe_chat_ready,
    ChatEnabledChanged: _observe_chat_enabled,
    FinesseRefused: _observe_refused,
    ChatSideFailed: _observe_chat_side_failed,
}


# -- decide and act -----------------------------------------------------------------------------


def _refresh_call(s: AgentState, p: Policy, now: float) -> AgentState:
    """Drop dialogs with no news for `max_call_seconds` (a missed DELETE must not interrupt forever)
    and keep `routed_call` sticky from the first sign of a routed call until the agent is idle."""
    dialogs = tuple(d for d in s.dialogs if now - d.at < p.max_call_seconds)
    s = replace(s, dialogs=dialogs) if dialogs != s.dialogs else s
    if not on_call(s):
        routed = False
    else:
        routed = (
            s.routed_call
            or s.voice in RESERVED_STATES
            or any(d.call_type and d.call_type not in INTERNAL_CALL_TYPES for d in s.dialogs)
        )
    return replace(s, routed_call=routed)


def _settle(s: AgentState, p: Policy, now: float, *, tell_chat_side: bool) -> tuple[AgentState, tuple[Action, ...]]:
    s = _refresh_call(s, p, now)
    chat = chat_state(s, p)
    want = wanted_voice(s, p)
    actions: list[Action] = []
    seq, held, request = s.seq, s.chat_held, s.request

    if tell_chat_side and (chat is Chat.INTERRUPTED) != held:
        seq += 1
        rid = f"{_request_prefix(s.agent_id)}{seq}"
        actions.append(InterruptChat(s.agent_id, rid) if not held else ResumeChat(s.agent_id, chat, rid))
        held = not held

    if want is not None and not in_flight(s, p, now) and s.refused != want:
        seq += 1
        rid = f"{_request_prefix(s.agent_id)}{seq}"
        reason = p.reason_code_id if want == NOT_READY else None
        actions.append(SetVoiceState(s.agent_id, want, reason, rid))
        request = VoiceRequest(rid, want, now)

    new = replace(s, chat=chat, chat_held=held, seq=seq, request=request, updated_at=max(s.updated_at, now))
    return new, tuple(actions)


def blend(state: AgentState, event: BlendingEvent, policy: Policy) -> tuple[AgentState, tuple[Action, ...]]:
    """The agent's next state and the actions that bring Finesse and the chat side to it."""
    if event.agent_id != state.agent_id:
        raise ValueError(f"event for agent {event.agent_id} applied to agent {state.agent_id}")
    observed = _OBSERVERS[type(event)](state, event, policy)
    # After a chat-side failure, wait for the next event before telling it again (no hot loop).
    return _settle(observed, policy, event.at, tell_chat_side=not isinstance(event, ChatSideFailed))


def new_agent(agent_id: str, *, chat_enabled: bool = True) -> AgentState:
    """The state of an agent the connector has heard nothing about yet."""
    return AgentState(agent_id=agent_id, chat_enabled=chat_enabled)


def routable(s: AgentState) -> bool:
    """The connector's own router may offer this agent a chat."""
    return s.chat in ROUTABLE
