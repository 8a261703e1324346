"""The events the blending module reacts to, from both sides, as plain immutable data.

Finesse-side events are produced by the notification sources (XMPP or REST polling) from Finesse
`<Update>` envelopes; chat-side events come from the contact-center chat side (ECE `assigned` /
`complete` callbacks, later the Hybrid Chat router). The blending state machine consumes them; it
never sees XML or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- Finesse (voice) side -----------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceStateChanged:
    """Finesse reported the agent's User state (READY, NOT_READY, RESERVED, TALKING, WORK, WORK_READY,
    LOGOUT, ...). `reason_code_id` / `reason_label` are set for NOT_READY and LOGOUT."""

    agent_id: str
    state: str
    reason_code_id: str | None = None
    reason_label: str | None = None
    pending_state: str | None = None
    at: float = 0.0
    request_id: str | None = None  # Finesse's <requestId>: set when the change answers a request that carried one
    # -- set by the Finesse notification sources --
    extension: str | None = None  # the agent's device; dialog participants are matched on it


@dataclass(frozen=True)
class DialogChanged:
    """A voice dialog of the agent changed. `call_type` is Finesse's mediaProperties/callType
    (ACD_IN, PREROUTE_ACD_IN, OTHER_IN, OUT, AGENT_INSIDE, CONSULT, CONFERENCE, TRANSFER, ...);
    `state` the agent's participant state (ALERTING, ACTIVE, HELD, DROPPED, WRAP_UP, ...) or the
    dialog state when the agent is not a participant. `ended` is True when the dialog is gone for
    this agent (DELETE update or DROPPED)."""

    agent_id: str
    dialog_id: str
    call_type: str
    state: str
    ended: bool = False
    at: float = 0.0
    # -- set by the Finesse notification sources --
    # consult legs: the held original call (docs/protocols/finesse.md, "Dialogs", "Classifying a call")
    associated_dialog_id: str | None = None


# -- chat side -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatAssigned:
    """A chat was assigned to the agent (ECE `assigned` callback or the Hybrid Chat router)."""

    agent_id: str
    chat_id: str
    at: float = 0.0


@dataclass(frozen=True)
class ChatEnded:
    """A chat of the agent ended or was transferred away from them."""

    agent_id: str
    chat_id: str
    at: float = 0.0


@dataclass(frozen=True)
class ChatReadyChanged:
    """The agent set their chat availability themself (READY / NOT_READY for chat)."""

    agent_id: str
    ready: bool
    at: float = 0.0


# -- infrastructure ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinesseRefused:
    """Finesse refused a state change the connector asked for (400 Invalid State, 503, ...)."""

    agent_id: str
    requested_state: str
    error_type: str
    message: str
    at: float = 0.0
    request_id: str | None = None  # the requestId of the refused request, when known


@dataclass(frozen=True)
class ChatSideFailed:
    """The chat side could not apply an interruption (`held`=True) or its lifting (`held`=False)."""

    agent_id: str
    held: bool
    message: str
    at: float = 0.0


@dataclass(frozen=True)
class ChatEnabledChanged:
    """Agent sync found the deployment's chat_enabled policy now includes / excludes the agent."""

    agent_id: str
    enabled: bool
    at: float = 0.0


# -- produced by the Finesse notification sources; not part of FinesseEvent, so blend() never
# sees it unless a source is built with media=True (only with finesse.chat_mrd_id set).


@dataclass(frozen=True)
class MediaStateChanged:
    """Finesse reported the agent's state in a non-voice MRD (ECE chat on Finesse): LOGOUT, NOT_READY,
    READY, RESERVED, WORK, INTERRUPTED (docs/protocols/finesse.md, "Non-voice Media API")."""

    agent_id: str
    mrd_id: str
    state: str
    reason_code_id: str | None = None
    at: float = 0.0
    request_id: str | None = None


FinesseEvent = VoiceStateChanged | DialogChanged | FinesseRefused
ChatEvent = ChatAssigned | ChatEnded | ChatReadyChanged
ConnectorEvent = ChatSideFailed | ChatEnabledChanged
BlendingEvent = FinesseEvent | ChatEvent | ConnectorEvent
