"""The blending service: events in; agent state per the tables; Finesse and the chat side moved to it.

Invariants:
- one handler at a time per agent (the registry's lock). It loads the state, runs the pure machine,
  saves the decision, applies the actions and saves what they came to, all under the lock, so two
  workers never reorder one agent's effects;
- the decision is saved before its effects are applied. A crash in between leaves an open request
  on record, which reconcile re-reads once `request_timeout` has passed;
- a change Finesse did not take (unavailable or halted, refused) is fed back into the machine as
  `FinesseRefused`, and the agent is marked due. `reconcile` re-reads the agent from Finesse and
  re-applies what is still due: a desired state, converged to, never a fire-and-forget toggle;
- every change carries a requestId, so the notification that confirms it is known as the connector's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from connector.blending.agents import AgentRegistry
from connector.blending.chat_side import ChatSide, chat_side_for
from connector.blending.events import BlendingEvent, ChatSideFailed, FinesseRefused, VoiceStateChanged
from connector.blending.finesse.client import FinesseClient, FinesseError, FinesseUnavailable, FinesseUser, NotFound
from connector.blending.machine import (
    Action,
    AgentState,
    Chat,
    InterruptChat,
    Policy,
    ResumeChat,
    SetVoiceState,
    blend,
    in_flight,
)
from connector.config.model import FinesseConfig

log = logging.getLogger(__name__)

_MAX_FEEDBACK_ROUNDS = 4  # a failure is fed back; the machine does not re-ask what just failed


class ReasonCodeMissing(Exception):
    """The configured NOT_READY reason label does not exist in Finesse."""


def resolve_reason_code(client: FinesseClient, agent_id: str, label: str) -> str:
    """The database id of the NOT_READY reason code labelled `label` (Finesse PUTs take the id, not
    the code or label). Raises ReasonCodeMissing naming the label and the labels that do exist."""
    codes = client.reason_codes(agent_id, "NOT_READY")
    wanted = label.strip().casefold()
    for code in codes:
        if code.label.strip().casefold() == wanted:
            return code.id
    existing = ", ".join(f'"{c.label}"' for c in codes) or "none"
    raise ReasonCodeMissing(
        f'finesse.not_ready_reason "{label}" is not a NOT_READY reason code in Finesse '
        f"(agent {agent_id} has: {existing}). Create it in Finesse administration (Reason Codes, "
        f"Not Ready, global) or set finesse.not_ready_reason to one of these labels."
    )


def resolve_chat_mrd(client: FinesseClient, agent_id: str, config: FinesseConfig, *, ece: bool = False) -> str | None:
    """ECE's chat MRD id: `finesse.chat_mrd_id`, else the MRD named `finesse.chat_mrd_name` in the
    media list Finesse gives for `agent_id` (every non-voice MRD of the deployment, the same for any
    agent). None, with an ERROR naming the field, when it cannot be had: blending then runs without the
    MRD (the router's flag only) instead of not at all. FinesseUnavailable propagates (start waits)."""
    if config.chat_mrd_id:
        return config.chat_mrd_id
    if not config.chat_mrd_name:
        if ece:
            log.error(
                "an ECE integration is configured but neither finesse.chat_mrd_id nor finesse.chat_mrd_name is set: "
                "voice calls will not stop ECE routing chats to the agent (set one of them)"
            )
        return None
    wanted = config.chat_mrd_name.strip().casefold()
    try:
        media = client.media_list(agent_id)
    except FinesseUnavailable:
        raise
    except FinesseError as exc:
        log.error(
            'finesse.chat_mrd_name "%s" cannot be resolved: Finesse\'s media list (GET %s for agent %s) failed: %s. '
            "Blending runs without ECE's chat MRD; set finesse.chat_mrd_id, or finesse.media_list_path if this "
            "Finesse serves the list elsewhere",
            config.chat_mrd_name,
            config.media_list_path,
            agent_id,
            exc,
        )
        return None
    for item in media:
        if (item.name or "").strip().casefold() == wanted and item.mrd_id:
            log.info("ECE's chat MRD %r is %s", item.name, item.mrd_id, extra={"mrd_id": item.mrd_id})
            return item.mrd_id
    found = ", ".join(f'"{m.name}" (id {m.mrd_id})' for m in media) or "none"
    log.error(
        'finesse.chat_mrd_name "%s" is not a media routing domain Finesse lists for agent %s (it has: %s). '
        "Blending runs without ECE's chat MRD: set finesse.chat_mrd_name to one of these names, or finesse.chat_mrd_id",
        config.chat_mrd_name,
        agent_id,
        found,
    )
    return None


def policy_for(config: FinesseConfig, reason_code_id: str) -> Policy:
    return Policy(reason_code_id=reason_code_id, reason_label=config.not_ready_reason, max_chats=config.max_chats)


def may_need_reconcile(state: AgentState) -> bool:
    """Something the connector asked for is unconfirmed or was not taken."""
    open_request = state.request is not None and state.request.open
    chat_side_off = (state.chat is Chat.INTERRUPTED) != state.chat_held
    return open_request or state.refused is not None or chat_side_off


def needs_reconcile(state: AgentState, policy: Policy, now: float) -> bool:
    """Re-reading Finesse is due now: a request is past its time unconfirmed, or a change was not taken."""
    if state.request is not None and state.request.open and in_flight(state, policy, now):
        return False  # Finesse may still confirm it
    return may_need_reconcile(state)


def voice_report(user: FinesseUser, at: float) -> VoiceStateChanged:
    """A User read from Finesse as a report without requestId; `at` is taken before the read, so a
    notification processed meanwhile counts as newer."""
    return VoiceStateChanged(
        agent_id=user.id,
        state=user.state,
        reason_code_id=user.reason_code_id,
        reason_label=user.reason_label,
        pending_state=user.pending_state,
        at=at,
    )


class Effector:
    """Carries out the machine's actions. Returns the failure, as an event for the machine, or None."""

    def __init__(self, client: FinesseClient, chat_side: ChatSide) -> None:
        self.client = client
        self.chat_side = chat_side

    def apply(self, action: Action, at: float) -> BlendingEvent | None:
        agent_id = action.agent_id
        extra = {"agent_id": agent_id, "request_id": action.request_id, "action": type(action).__name__}
        try:
            match action:
                case SetVoiceState(state=state, reason_code_id=reason, request_id=rid):
                    self.client.set_state(agent_id, state, reason_code_id=reason, request_id=rid)
                case InterruptChat(request_id=rid):
                    self.chat_side.interrupt(agent_id, request_id=rid)
                case ResumeChat(state=chat, request_id=rid):
                    self.chat_side.resume(agent_id, chat, request_id=rid)
        except FinesseError as exc:
            log.warning("blending change not taken: %s", exc, extra=extra)
            if isinstance(action, SetVoiceState):
                kind = "Unavailable" if isinstance(exc, FinesseUnavailable) else (exc.error_type or type(exc).__name__)
                return FinesseRefused(agent_id, action.state, kind, exc.message, at=at, request_id=action.request_id)
            return ChatSideFailed(agent_id, held=isinstance(action, InterruptChat), message=str(exc), at=at)
        log.info("blending change sent", extra=extra)
        return None


class BlendingService:
    """Runs the blending machine for every agent, against Finesse and the chat side."""

    def __init__(
        self,
        registry: AgentRegistry,
        effector: Effector,
        policy: Policy,
        *,
        clock: Callable[[], float] = time.time,
        chat_mrd_id: str | None = None,
    ) -> None:
        self.registry = registry
        self.effector = effector
        self.policy = policy
        self.clock = clock
        self.chat_mrd_id = chat_mrd_id  # ECE's chat MRD on Finesse, when the chat side drives it

    @classmethod
    def start(
        cls,
        config: FinesseConfig,
        client: FinesseClient,
        registry: AgentRegistry,
        *,
        chat_side: ChatSide | None = None,
        probe_agent_id: str | None = None,
        ece: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> BlendingService:
        """Resolve the NOT_READY reason once, through one agent's reason codes (global reason codes are
        the same for every agent), and ECE's chat MRD (`resolve_chat_mrd`; `ece`: an ECE integration is
        configured), and build the service. The agent is `probe_agent_id`, else one from the registry,
        else the first user Finesse lists (before the first agent sync)."""
        probe = probe_agent_id or next(iter(registry.ids()), None)
        if probe is None:
            probe = next((u.id for u in client.users()), None)
        if probe is None:
            raise ReasonCodeMissing("Finesse lists no agents: the NOT_READY reason codes cannot be read")
        reason_id = resolve_reason_code(client, probe, config.not_ready_reason)
        mrd_id = resolve_chat_mrd(client, probe, config, ece=ece)
        side = chat_side or chat_side_for(redis=registry.redis, client=client, reason_code_id=reason_id, mrd_id=mrd_id)
        return cls(registry, Effector(client, side), policy_for(config, reason_id), clock=clock, chat_mrd_id=mrd_id)

    # -- events -----------------------------------------------------------------------------------

    def handle(self, event: BlendingEvent) -> AgentState:
        """Apply one event to its agent, under the agent's lock; returns the agent's new state.
        Events without `at` are stamped with the receipt time. Raises AgentBusy if another handler
        holds the agent beyond the registry's wait: the caller retries the event (it is idempotent)."""
        if not event.at:
            event = replace(event, at=self.clock())
        agent_id = event.agent_id
        with self.registry.lock(agent_id) as lock:
            state, actions = blend(self.registry.state(agent_id), event, self.policy)
            self.registry.save_state(lock, state)
            for _ in range(_MAX_FEEDBACK_ROUNDS):
                if not actions:
                    break
                feedback = [f for f in (self.effector.apply(a, event.at) for a in actions) if f is not None]
                actions = ()
                for failure in feedback:
                    state, more = blend(state, failure, self.policy)
                    actions += more
                if feedback:
                    self.registry.save_state(lock, state)
            self.registry.mark_due(agent_id, may_need_reconcile(state))
            return state

    # -- reconcile --------------------------------------------------------------------------------

    def reconcile(self, agent_id: str) -> AgentState | None:
        """Re-read the agent from Finesse and re-apply what is due. None if Finesse could not answer
        (the agent stays due)."""
        state, _ = self._reconcile(agent_id)
        return state

    def reconcile_all(self, *, everyone: bool = False) -> int:
        """Reconcile the agents that are due now (every agent with `everyone`, e.g. after a failover,
        read with one admin GET /Users). Returns how many were re-read; stops while Finesse is down."""
        if everyone:
            at = self.clock()
            try:
                users = self.effector.client.users()
            except FinesseError as exc:
                log.warning("reconcile of all agents postponed: %s", exc)
                return 0
            known = set(self.registry.ids())
            mine = [u for u in users if u.id in known]
            for user in mine:
                self.handle(voice_report(user, at))
            return len(mine)
        done = 0
        now = self.clock()
        for agent_id in self.registry.due():
            if not needs_reconcile(self.registry.state(agent_id), self.policy, now):
                continue
            state, error = self._reconcile(agent_id)
            if isinstance(error, FinesseUnavailable):
                break  # no node in service: every other read would fail the same way
            if state is not None:
                done += 1
        return done

    def _reconcile(self, agent_id: str) -> tuple[AgentState | None, FinesseError | None]:
        at = self.clock()
        try:
            user = self.effector.client.get_user(agent_id)
        except NotFound as exc:
            log.warning("agent %s is not in Finesse; agent sync will remove it", agent_id, extra={"agent_id": agent_id})
            self.registry.mark_due(agent_id, False)
            return None, exc
        except FinesseError as exc:
            log.warning("reconcile of agent %s postponed: %s", agent_id, exc, extra={"agent_id": agent_id})
            self.registry.mark_due(agent_id, True)
            return None, exc
        return self.handle(voice_report(user, at)), None
