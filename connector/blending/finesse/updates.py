"""Finesse notification `<Update>` documents → the blending events of `events.py`.

    <Update><event>PUT|POST|DELETE</event><requestId/><source>/finesse/api/User/1001</source>
            <data><user>…</user></data></Update>

`data` holds a `<user>`, `<dialogs>` / `<dialog>`, `<media>` or `<apiErrors>`
(docs/protocols/finesse.md, "Update envelopes").
Nothing here raises on input: a malformed document or an unknown payload is logged and skipped,
because one bad notification must not stop an agent's event stream. `at` is when the connector read
the update (its own clock), so events from XMPP and from polling order the same way.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from connector.blending.events import DialogChanged, FinesseEvent, FinesseRefused, MediaStateChanged, VoiceStateChanged
from connector.blending.finesse.objects import (
    Dialog,
    MalformedXml,
    child,
    children,
    local_name,
    parse_document,
    read_api_errors,
    read_dialog,
    read_media,
    read_user,
    text,
)

log = logging.getLogger(__name__)

Event = FinesseEvent | MediaStateChanged

_USER_SOURCE = re.compile(r"/finesse/api/User/([^/]+)(?:/Media/([^/]+))?")
_DIALOG_SOURCE = re.compile(r"/finesse/api/Dialog/([^/]+)")


def agent_participant_state(dialog: Dialog, extension: str | None) -> str:
    """The agent's participant state; without a known extension, the only AGENT_DEVICE participant's,
    else the dialog's own state."""
    found = dialog.participant(extension)
    if found is None and not extension:
        devices = [p for p in dialog.participants if p.media_address_type == "AGENT_DEVICE"]
        found = devices[0] if len(devices) == 1 else None
    return found.state if found is not None else dialog.state


def dialog_event(dialog: Dialog, agent_id: str, extension: str | None, *, deleted: bool, at: float) -> DialogChanged:
    """`ended` on a DELETE, or once the agent's participant (or the dialog) is DROPPED."""
    state = agent_participant_state(dialog, extension)
    return DialogChanged(
        agent_id=agent_id,
        dialog_id=dialog.id,
        call_type=dialog.call_type,
        state=state,
        ended=deleted or state == "DROPPED",
        at=at,
        associated_dialog_id=dialog.associated_dialog_id,
    )


def read_update(
    document: str | bytes,
    *,
    agent_id: str | None = None,
    extension: str | None = None,
    media: bool = False,
    now: Callable[[], float] = time.time,
) -> list[Event]:
    """The events in one Update. `agent_id` is the agent whose node delivered it (the XMPP session's
    agent); without it the agent is taken from `<source>`. `extension` picks the agent's participant
    in dialogs. Media updates are returned only with `media=True` (the blending does not take them)."""
    try:
        root = parse_document(document)
    except MalformedXml as exc:
        log.warning("finesse update skipped: not well-formed XML (%s)", exc)
        return []
    if local_name(root) != "update":
        log.warning("finesse notification skipped: <%s> is not an <Update>", local_name(root))
        return []
    event = (text(root, "event") or "").upper()
    source = text(root, "source") or ""
    request_id = text(root, "requestId")
    payload = next(iter(child(root, "data") or ()), None)
    user_match = _USER_SOURCE.match(source)
    agent = agent_id or (user_match.group(1) if user_match else None)
    if agent is None:
        log.warning("finesse update skipped: no agent for source %r", source)
        return []
    if payload is None:
        return _deleted_dialog(source, agent, event, now())
    kind = local_name(payload)
    at = now()
    if kind == "user":
        user = read_user(payload)
        return [
            VoiceStateChanged(
                agent_id=agent,
                state=user.state,
                reason_code_id=user.reason_code_id,
                reason_label=user.reason_label,
                pending_state=user.pending_state,
                at=at,
                request_id=request_id,
                extension=user.extension,
            )
        ]
    if kind in ("dialogs", "dialog"):
        dialogs = [payload] if kind == "dialog" else list(children(payload, "dialog"))
        return [
            dialog_event(read_dialog(d), agent, extension, deleted=event == "DELETE", at=at) for d in dialogs
        ] or _deleted_dialog(source, agent, event, at)
    if kind == "apierrors":
        return [
            FinesseRefused(
                agent_id=agent,
                requested_state="",
                error_type=error.error_type,
                message=error.message,
                at=at,
                request_id=request_id,
            )
            for error in read_api_errors(payload)
        ]
    if kind == "media":
        if not media:
            return []
        state = read_media(payload, user_match.group(2) if user_match else None)
        return [MediaStateChanged(agent, state.mrd_id, state.state, state.reason_code_id, at, request_id)]
    log.info("finesse update skipped: unhandled payload <%s> from %s", kind, source, extra={"agent_id": agent})
    return []


def _deleted_dialog(source: str, agent_id: str, event: str, at: float) -> list[Event]:
    """A DELETE whose data does not repeat the dialog still ends it, by the id in `<source>`."""
    match = _DIALOG_SOURCE.match(source)
    if event == "DELETE" and match:
        return [
            DialogChanged(agent_id=agent_id, dialog_id=match.group(1), call_type="", state="DROPPED", ended=True, at=at)
        ]
    log.info("finesse update skipped: %s from %s carries no data", event or "event", source)
    return []


class UpdateReader:
    """Reads the Updates of many agents, remembering each agent's extension from its User updates
    (dialog participants are identified by extension, not by agent id)."""

    def __init__(self, *, media: bool = False, now: Callable[[], float] = time.time) -> None:
        self.media = media
        self.now = now
        self.extensions: dict[str, str] = {}

    def remember(self, agent_id: str, extension: str | None) -> None:
        if extension:
            self.extensions[agent_id] = extension

    def read(self, document: str | bytes, agent_id: str | None = None) -> list[Event]:
        extension = self.extensions.get(agent_id) if agent_id else None
        events = read_update(document, agent_id=agent_id, extension=extension, media=self.media, now=self.now)
        for event in events:
            if isinstance(event, VoiceStateChanged):
                self.remember(event.agent_id, event.extension)
        return events
