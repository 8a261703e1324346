"""Finesse notifications by REST polling, for agents whose password the connector does not have
(`finesse.events: poll`, or agents without XMPP credentials).

Each round reads `GET User/{id}` and `GET User/{id}/Dialogs` per agent with the client's credentials
(the admin account for such agents) and emits the same events the XMPP source would, but only on
change: a new state / reason / pending state, a dialog that appeared or whose call type or participant
state changed, a dialog that disappeared (ended). The first round reports what it finds. A round cut
short by an outage keeps the last snapshot, so recovery does not replay stale changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from connector.blending.events import DialogChanged, FinesseEvent, VoiceStateChanged
from connector.blending.finesse.client import FinesseClient, FinesseError, FinesseUnavailable, NotFound
from connector.blending.finesse.updates import agent_participant_state

log = logging.getLogger(__name__)


@dataclass
class _Snapshot:
    voice: tuple[str, str | None, str | None] | None = None  # state, reason code id, pending state
    dialogs: dict[str, DialogChanged] = field(default_factory=dict)


class PollingSource:
    """Polls the agents `agents()` returns every `interval` seconds; `poll_once()` is one round."""

    def __init__(
        self,
        client: FinesseClient,
        agents: Callable[[], Iterable[str]],
        on_event: Callable[[FinesseEvent], None],
        *,
        interval: float = 2.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.agents = agents
        self.on_event = on_event
        self.interval = interval
        self.now = now
        self.snapshots: dict[str, _Snapshot] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> list[FinesseEvent]:
        """One round over every agent; returns (and emits) the events of the changes it saw."""
        emitted: list[FinesseEvent] = []
        wanted = set(self.agents())
        for gone in set(self.snapshots) - wanted:
            del self.snapshots[gone]
        for agent_id in sorted(wanted):
            try:
                events = self._poll_agent(agent_id)
            except FinesseUnavailable as exc:
                log.info("finesse polling round cut short: %s", exc)
                break  # the failover is halted or switching: the next round tries again
            except NotFound:
                log.warning(
                    "finesse polling: agent %s does not exist in Finesse", agent_id, extra={"agent_id": agent_id}
                )
                self.snapshots.pop(agent_id, None)
                continue
            except FinesseError as exc:
                log.error("finesse polling: agent %s: %s", agent_id, exc, extra={"agent_id": agent_id})
                continue
            for event in events:
                try:
                    self.on_event(event)
                except Exception:
                    log.exception("finesse polling: on_event failed", extra={"agent_id": agent_id})
            emitted.extend(events)
        return emitted

    def _poll_agent(self, agent_id: str) -> list[FinesseEvent]:
        # Read both before touching the snapshot: a half-read agent must not change it.
        user = self.client.get_user(agent_id)
        dialogs = self.client.dialogs(agent_id)
        at = self.now()
        snapshot = self.snapshots.setdefault(agent_id, _Snapshot())
        events: list[FinesseEvent] = []
        voice = (user.state, user.reason_code_id, user.pending_state)
        if voice != snapshot.voice:
            snapshot.voice = voice
            events.append(
                VoiceStateChanged(
                    agent_id=agent_id,
                    state=user.state,
                    reason_code_id=user.reason_code_id,
                    reason_label=user.reason_label,
                    pending_state=user.pending_state,
                    at=at,
                    extension=user.extension,
                )
            )
        seen: dict[str, DialogChanged] = {}
        for dialog in dialogs:
            state = agent_participant_state(dialog, user.extension)
            event = DialogChanged(
                agent_id=agent_id,
                dialog_id=dialog.id,
                call_type=dialog.call_type,
                state=state,
                ended=state == "DROPPED",
                at=at,
                associated_dialog_id=dialog.associated_dialog_id,
            )
            seen[dialog.id] = event
            before = snapshot.dialogs.get(dialog.id)
            if before is None or (before.call_type, before.state) != (event.call_type, event.state):
                events.append(event)
        for dialog_id, before in snapshot.dialogs.items():
            if dialog_id not in seen and not before.ended:
                # Gone between two polls: the call ended (the DELETE a notification would carry).
                events.append(
                    DialogChanged(
                        agent_id=agent_id,
                        dialog_id=dialog_id,
                        call_type=before.call_type,
                        state="DROPPED",
                        ended=True,
                        at=at,
                        associated_dialog_id=before.associated_dialog_id,
                    )
                )
        snapshot.dialogs = seen
        return events

    # -- the runner ---------------------------------------------------------------------------

    def start(self) -> PollingSource:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="finesse-polling", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # the poller must outlive any single bad round
                log.exception("finesse polling round failed")
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
