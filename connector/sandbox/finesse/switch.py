"""The phone switch and router behind the simulated Finesse: scripted voice calls.

A call rings, is answered, held, retrieved, ends (optionally into wrap-up) or rings out (RONA), and
each step moves the agent's User state and the Dialog the way Finesse reports it
(docs/protocols/finesse.md, "User and agent states", "Classifying a call"): routed calls go READY →
RESERVED → TALKING → WORK / WORK_READY / READY; non-routed calls leave
the agent's state alone while ringing, show TALKING once answered (NOT_READY on UCCX) and restore the
previous state afterwards; a request made during a call is applied as the pending state at its end.
The agent's first call puts their interruptible MRDs that are READY in INTERRUPTED, and the end of the
last one returns those still INTERRUPTED to READY. Each step publishes the Dialog POST / PUT / DELETE,
User PUT and Media PUT notifications.
"""

from __future__ import annotations

import time

from connector.sandbox.finesse.model import FinesseModel, Principal, SimAgent, SimDialog, SimError, SimParticipant

ROUTED_TYPES = {"ACD_IN", "PREROUTE_ACD_IN", "OUTBOUND", "OUTBOUND_PREVIEW"}
OUTGOING_TYPES = {"OUT", "AGENT_INSIDE", "CONSULT"}
CALL_TYPES = ROUTED_TYPES | OUTGOING_TYPES | {
    "PREROUTE_DIRECT_AGENT", "TRANSFER", "OTHER_IN", "CONSULT_OFFERED", "CONFERENCE", "SUPERVISOR_MONITOR",
    "OFFERED", "BARGE_IN_CONSULT",
}  # fmt: skip
INTERNAL_PARTY = "1099"  # the other agent's extension on internal calls
EXTERNAL_PARTY = "+15550100"


class Switch:
    """Drives calls on the model; every method is one step of a script and raises SimError (409) when
    the step makes no sense in the call's current state."""

    def __init__(self, model: FinesseModel) -> None:
        self.model = model

    # -- steps ----------------------------------------------------------------------------------

    def start_call(
        self,
        agent_id: str,
        call_type: str,
        *,
        from_address: str | None = None,
        to_address: str | None = None,
        routed: bool | None = None,
        associated_dialog_id: str | None = None,
        queue_name: str | None = None,
        call_variables: dict[str, str] | None = None,
    ) -> SimDialog:
        """Ring the agent (incoming) or place the agent's call (OUT, AGENT_INSIDE, CONSULT)."""
        if call_type not in CALL_TYPES:
            raise SimError(400, "Invalid Input", f"unknown callType {call_type!r}; one of {sorted(CALL_TYPES)}")
        model = self.model
        with model.changing():
            agent = model.agent(agent_id)
            if agent.state == "LOGOUT":
                raise SimError(409, "Invalid State", f"agent {agent_id} is logged out")
            routed = call_type in ROUTED_TYPES if routed is None else routed
            outgoing = call_type in OUTGOING_TYPES
            existing = model.dialogs_of(agent.id)
            if routed and (agent.state != "READY" or existing):
                # The router offers a call only to an idle READY agent.
                raise SimError(409, "Invalid State", f"agent {agent_id} is {agent.state}: a routed call needs READY")
            held: SimDialog | None = None
            if call_type == "CONSULT":
                held = self._active_dialog(agent, associated_dialog_id)
            elif outgoing and any(d.agent_participant(agent.extension).state == "ACTIVE" for d in existing):
                raise SimError(409, "Invalid State", f"agent {agent_id} is already on an active call")
            if not existing:
                agent.before_call = (agent.state, agent.reason_code_id)
                agent.routed_call = routed
            now = time.time()
            internal = call_type not in ("ACD_IN", "PREROUTE_ACD_IN", "OTHER_IN", "OUT", "OUTBOUND")
            other = INTERNAL_PARTY if internal else EXTERNAL_PARTY
            if outgoing:
                me = SimParticipant(agent.extension, "INITIATED", "AGENT_DEVICE", start_time=now)
                far = SimParticipant(to_address or other, "ALERTING", "AGENT_DEVICE" if internal else None)
                participants, source, target, state = [me, far], agent.extension, far.media_address, "ALERTING"
            else:
                me = SimParticipant(agent.extension, "ALERTING", "AGENT_DEVICE", start_time=now)
                caller = SimParticipant(from_address or other, "ACTIVE", "AGENT_DEVICE" if internal else None)
                participants, source, target, state = [caller, me], caller.media_address, agent.extension, "ALERTING"
                if call_type == "CONFERENCE":
                    participants.insert(1, SimParticipant("1098", "ACTIVE", "AGENT_DEVICE"))
            dialog = SimDialog(
                id=model.next_id(),
                agent_id=agent.id,
                call_type=call_type,
                routed=routed,
                outgoing=outgoing,
                from_address=source,
                to_address=to_address if (to_address and not outgoing) else target,
                state=state,
                participants=participants,
                associated_dialog_id=held.id if held else associated_dialog_id,
                queue_name=queue_name or ("Sales" if routed else None),
                queue_number="8001" if routed else None,
                call_variables=dict(call_variables or {"callVariable1": ""}),
            )
            model.dialogs[dialog.id] = dialog
            if held is not None:
                # The consult puts the original call on hold (docs/protocols/finesse.md, "Classifying a call").
                self._participant_state(held, agent, "HELD")
                model.publish_dialog(held, "PUT")
            model.publish_dialog(dialog, "POST")
            if routed:
                self._user_state(agent, "RESERVED")
            if not existing:
                model.interrupt_media(agent)  # the call interrupts the agent's chat MRD
            return dialog

    def answer(self, dialog_id: str) -> SimDialog:
        """The agent answers (incoming) or the far end answers (outgoing)."""
        model = self.model
        with model.changing():
            dialog = model.dialog(dialog_id)
            agent = model.agent(dialog.agent_id)
            if dialog.agent_participant(agent.extension).state not in ("ALERTING", "INITIATED", "INITIATING"):
                raise SimError(409, "Invalid State", f"dialog {dialog_id} is not ringing")
            for participant in dialog.participants:
                participant.state, participant.state_change_time = "ACTIVE", time.time()
            dialog.state = "ACTIVE"
            model.publish_dialog(dialog, "PUT")
            if model.deployment == "UCCX" and not dialog.routed:
                # UCCX: the agent is NOT_READY during a non-routed call
                # (docs/protocols/finesse.md, "User and agent states").
                if agent.state != "NOT_READY":
                    self._user_state(agent, "NOT_READY")
            else:
                self._user_state(agent, "TALKING")
            return dialog

    def hold(self, dialog_id: str) -> SimDialog:
        return self._move_participant(dialog_id, "ACTIVE", "HELD", "is not active")

    def retrieve(self, dialog_id: str) -> SimDialog:
        return self._move_participant(dialog_id, "HELD", "ACTIVE", "is not held")

    def _move_participant(self, dialog_id: str, expected: str, new_state: str, refusal: str) -> SimDialog:
        """The agent's leg from `expected` to `new_state` (HOLD / RETRIEVE), else 409 Invalid State."""
        model = self.model
        with model.changing():
            dialog = model.dialog(dialog_id)
            agent = model.agent(dialog.agent_id)
            if dialog.agent_participant(agent.extension).state != expected:
                raise SimError(409, "Invalid State", f"dialog {dialog_id} {refusal}")
            self._participant_state(dialog, agent, new_state)
            model.publish_dialog(dialog, "PUT")
            self._settle_on_call(agent)
            return dialog

    def end(self, dialog_id: str, *, wrapup: str | None = None) -> None:
        """The call is dropped: participant DROPPED (PUT), then the dialog is removed (DELETE). With no
        call left the agent goes to its pending state, else into `wrapup` (WORK | WORK_READY) or READY
        after a routed call, or back to the state it had before a non-routed one."""
        if wrapup not in (None, "WORK", "WORK_READY"):
            raise SimError(400, "Invalid Input", "wrapup must be WORK or WORK_READY")
        model = self.model
        with model.changing():
            dialog = model.dialog(dialog_id)
            agent = model.agent(dialog.agent_id)
            self._drop(dialog, agent)
            if model.dialogs_of(agent.id):
                self._settle_on_call(agent)
                return
            if agent.pending_state and not (agent.routed_call and wrapup):
                self._user_state(agent, agent.pending_state, agent.pending_reason_code_id)
                agent.pending_state = agent.pending_reason_code_id = None
            elif agent.routed_call:
                self._user_state(agent, wrapup or "READY")
            elif agent.before_call is not None:
                self._user_state(agent, *agent.before_call)
            agent.before_call, agent.routed_call = None, False
            model.resume_media(agent)

    def rona(self, dialog_id: str) -> None:
        """Redirection on no answer: a routed call rings out, the router takes it back and the agent
        becomes NOT_READY with the RONA system reason."""
        model = self.model
        with model.changing():
            dialog = model.dialog(dialog_id)
            agent = model.agent(dialog.agent_id)
            if not dialog.routed or dialog.agent_participant(agent.extension).state != "ALERTING":
                raise SimError(409, "Invalid State", f"dialog {dialog_id} is not a ringing routed call")
            self._drop(dialog, agent)
            agent.before_call, agent.routed_call = None, False
            agent.pending_state = agent.pending_reason_code_id = None
            self._user_state(agent, "NOT_READY", model.rona_reason.id)
            model.resume_media(agent)

    def act(self, who: Principal, dialog_id: str, action: str | None, target: str | None) -> None:
        """PUT Dialog with requestedAction ANSWER | HOLD | RETRIEVE | DROP for the agent on `target`."""
        model = self.model
        with model.changing():
            dialog = model.dialog(dialog_id)
            if not (who.admin or (who.agent is not None and who.agent.id == dialog.agent_id)):
                raise SimError(401, "Invalid Authorization User Specified", f"{who.name} is not on dialog {dialog_id}")
            agent = model.agent(dialog.agent_id)
            if not action:
                raise SimError(400, "Parameter Missing", "requestedAction is required")
            if target != agent.extension:
                raise SimError(400, "Invalid Input", f"targetMediaAddress {target!r} is not a participant")
            steps = {"ANSWER": self.answer, "HOLD": self.hold, "RETRIEVE": self.retrieve, "DROP": self.end}
            if action not in steps:
                raise SimError(400, "Invalid Input", f"requestedAction {action} is not supported by the simulator")
            if action not in dialog.agent_participant(agent.extension).actions:
                raise SimError(400, "Invalid State", f"{action} is not allowed in participant state")
            steps[action](dialog_id)

    # -- helpers --------------------------------------------------------------------------------

    def _active_dialog(self, agent: SimAgent, dialog_id: str | None) -> SimDialog:
        for dialog in self.model.dialogs_of(agent.id):
            if (dialog_id in (None, dialog.id)) and dialog.agent_participant(agent.extension).state == "ACTIVE":
                return dialog
        raise SimError(409, "Invalid State", f"agent {agent.id} has no active call to consult from")

    @staticmethod
    def _participant_state(dialog: SimDialog, agent: SimAgent, state: str) -> None:
        participant = dialog.agent_participant(agent.extension)
        participant.state, participant.state_change_time = state, time.time()

    def _drop(self, dialog: SimDialog, agent: SimAgent) -> None:
        self._participant_state(dialog, agent, "DROPPED")
        dialog.state = "DROPPED"
        self.model.publish_dialog(dialog, "PUT")
        self.model.publish_dialog(dialog, "DELETE")
        del self.model.dialogs[dialog.id]

    def _settle_on_call(self, agent: SimAgent) -> None:
        """The agent's state while calls remain: TALKING with any active call, HOLD when all are held
        (UCCE; UCCX keeps TALKING on hold), RESERVED while only a routed offer rings."""
        if self.model.deployment == "UCCX" or agent.state == "NOT_READY":
            return
        states = {d.agent_participant(agent.extension).state for d in self.model.dialogs_of(agent.id)}
        if "ACTIVE" in states:
            self._user_state(agent, "TALKING")
        elif "HELD" in states:
            self._user_state(agent, "HOLD")

    def _user_state(self, agent: SimAgent, state: str, reason_code_id: str | None = None) -> None:
        if agent.state == state and agent.reason_code_id == reason_code_id:
            return
        self.model.move(agent, state, reason_code_id)
        self.model.publish_user(agent)
