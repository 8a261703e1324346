"""The Finesse objects the connector reads (User, ReasonCode, Dialog, SystemInfo, Media, ApiError),
and how to read them from Finesse's XML.

Every document that arrives over the network is parsed with `defusedxml`, so a hostile or broken
peer cannot expand entities or fetch external DTDs. Element names are matched case-insensitively
and without namespace: Finesse REST bodies say `<User>` / `<Dialog>` while notification payloads
say `<user>` / `<dialog>`, and the documentation samples show both
(docs/protocols/finesse.md, "Update envelopes").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException


class MalformedXml(ValueError):
    """A document that is not well-formed XML, or that declares entities / a DTD."""


def parse_document(body: bytes | str) -> Element:
    """The root element of a network document; raises MalformedXml, never expands entities."""
    try:
        return SafeET.fromstring(body, forbid_dtd=True)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise MalformedXml(str(exc)) from exc


def local_name(element: Element) -> str:
    """The element's tag without namespace, lower-cased: `{ns}User` → `user`."""
    tag = element.tag if isinstance(element.tag, str) else ""
    return tag.rsplit("}", 1)[-1].lower()


def child(element: Element | None, name: str) -> Element | None:
    """The first direct child called `name` (case-insensitive)."""
    if element is None:
        return None
    name = name.lower()
    return next((c for c in element if local_name(c) == name), None)


def children(element: Element | None, name: str) -> Iterator[Element]:
    """The direct children called `name` (case-insensitive)."""
    if element is None:
        return iter(())
    name = name.lower()
    return (c for c in element if local_name(c) == name)


def descendants(element: Element, name: str) -> Iterator[Element]:
    """Every element below `element` (itself included) called `name` (case-insensitive)."""
    name = name.lower()
    return (e for e in element.iter() if local_name(e) == name)


def text(element: Element | None, name: str) -> str | None:
    """The stripped text of child `name`; None when absent or empty (Finesse sends `<pendingState/>`)."""
    found = child(element, name)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return value or None


def timestamp(value: str | None) -> float | None:
    """Finesse's ISO-8601 UTC times (`2012-03-01T17:58:21.234Z`) as unix seconds."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def last_path_segment(uri: str | None) -> str | None:
    """`/finesse/api/Dialog/12345678` → `12345678`."""
    if not uri:
        return None
    return uri.rstrip("/").rsplit("/", 1)[-1] or None


# -- objects --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReasonCode:
    """A NOT_READY or LOGOUT reason code. `id` is the database id that PUT bodies carry (`reasonCodeId`),
    `code` the number reports show; they differ (docs/protocols/finesse.md, "Reason codes")."""

    id: str
    code: str = ""
    label: str = ""
    category: str = ""
    for_all: bool = True
    system_code: bool = False


@dataclass(frozen=True)
class FinesseUser:
    """An agent as Finesse reports it. `state` is the voice (CTI) state; `reason_code_id` is set for
    NOT_READY and LOGOUT; `pending_state` is where the agent goes once the current call ends."""

    id: str
    login_name: str = ""
    first_name: str = ""
    last_name: str = ""
    extension: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    state: str = "UNKNOWN"
    reason_code_id: str | None = None
    pending_state: str | None = None
    roles: tuple[str, ...] = ()
    reason_label: str | None = None
    state_change_time: float | None = None


@dataclass(frozen=True)
class Participant:
    """One leg of a dialog; `media_address` is the agent's extension for AGENT_DEVICE participants."""

    media_address: str
    state: str
    media_address_type: str | None = None
    state_cause: str | None = None
    state_change_time: float | None = None
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dialog:
    """A voice call (docs/protocols/finesse.md, "Dialogs"). `call_type` is mediaProperties/callType;
    `state` the dialog state (ALERTING, ACTIVE, DROPPED, ...); the agent's own state is its
    participant's."""

    id: str
    call_type: str = ""
    state: str = ""
    media_type: str = "Voice"
    from_address: str | None = None
    to_address: str | None = None
    associated_dialog_id: str | None = None
    secondary_id: str | None = None
    dialed_number: str | None = None
    queue_name: str | None = None
    participants: tuple[Participant, ...] = ()

    def participant(self, extension: str | None) -> Participant | None:
        """The participant on `extension`, if the agent is one."""
        if not extension:
            return None
        return next((p for p in self.participants if p.media_address == extension), None)

    def state_for(self, extension: str | None) -> str:
        """The agent's participant state, or the dialog state when the agent is not a participant."""
        found = self.participant(extension)
        return found.state if found is not None else self.state


@dataclass(frozen=True)
class FinesseNodeInfo:
    """A node of the Finesse cluster as SystemInfo describes it (ports since 12.6(2))."""

    host: str
    https_port: int | None = None
    xmpp_port: int | None = None
    xmpp_secure_port: int | None = None


@dataclass(frozen=True)
class SystemInfo:
    """A node's view of the system. Only IN_SERVICE means usable: OUT_OF_SERVICE (and PARTIAL_SERVICE)
    nodes answer 503 to every other API (docs/protocols/finesse.md, "SystemInfo and failover")."""

    status: str
    status_reason: str | None = None
    deployment_type: str | None = None
    system_auth_mode: str | None = None
    xmpp_domain: str | None = None
    xmpp_pubsub_domain: str | None = None
    primary_node: FinesseNodeInfo | None = None
    secondary_node: FinesseNodeInfo | None = None

    @property
    def in_service(self) -> bool:
        return self.status == "IN_SERVICE"


@dataclass(frozen=True)
class MediaState:
    """An agent's state in a non-voice MRD (the ECE chat MRD as Finesse sees it;
    docs/protocols/finesse.md, "Non-voice Media API")."""

    mrd_id: str
    state: str
    name: str | None = None
    reason_code_id: str | None = None
    interruptible: bool | None = None
    max_dialog_limit: int | None = None
    routable: bool | None = None


@dataclass(frozen=True)
class ApiError:
    """One `<ApiError>` (REST answers) or `<apiError>` (asynchronous notification)."""

    error_type: str
    message: str = ""
    data: str | None = None


# -- readers --------------------------------------------------------------------------------------


def _bool(value: str | None) -> bool | None:
    return None if value is None else value.strip().lower() == "true"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def read_reason_code(element: Element) -> ReasonCode:
    rc_id = text(element, "id") or last_path_segment(text(element, "uri")) or ""
    return ReasonCode(
        id=rc_id,
        code=text(element, "code") or "",
        label=text(element, "label") or "",
        category=text(element, "category") or "",
        for_all=_bool(text(element, "forAll")) is not False,
        system_code=bool(_bool(text(element, "systemCode"))),
    )


def read_user(element: Element) -> FinesseUser:
    """A `<User>` / `<user>` element. The id is `loginId`, else the last segment of `uri`."""
    user_id = text(element, "loginId") or last_path_segment(text(element, "uri")) or ""
    roles = tuple(r.text.strip() for r in children(child(element, "roles"), "role") if r.text and r.text.strip())
    reason = child(element, "ReasonCode")
    reason_code_id = text(element, "reasonCodeId")
    if reason_code_id in ("-1", "0"):
        # Finesse reports "no reason" as -1 on some versions [I]; it is not a reason code.
        reason_code_id = None
    team = child(child(element, "teams"), "Team")
    return FinesseUser(
        id=user_id,
        login_name=text(element, "loginName") or "",
        first_name=text(element, "firstName") or "",
        last_name=text(element, "lastName") or "",
        extension=text(element, "extension"),
        team_id=text(element, "teamId") or text(team, "id"),
        team_name=text(element, "teamName") or text(team, "name"),
        state=text(element, "state") or "UNKNOWN",
        reason_code_id=reason_code_id,
        pending_state=text(element, "pendingState"),
        roles=roles,
        reason_label=text(reason, "label") if reason is not None else None,
        state_change_time=timestamp(text(element, "stateChangeTime")),
    )


def read_participant(element: Element) -> Participant:
    return Participant(
        media_address=text(element, "mediaAddress") or "",
        state=text(element, "state") or "",
        media_address_type=text(element, "mediaAddressType"),
        state_cause=text(element, "stateCause"),
        state_change_time=timestamp(text(element, "stateChangeTime")),
        actions=tuple(a.text.strip() for a in children(child(element, "actions"), "action") if a.text),
    )


def read_dialog(element: Element) -> Dialog:
    """A `<Dialog>` / `<dialog>` element."""
    props = child(element, "mediaProperties")
    return Dialog(
        id=text(element, "id") or last_path_segment(text(element, "uri")) or "",
        call_type=text(props, "callType") or "",
        state=text(element, "state") or "",
        media_type=text(element, "mediaType") or "Voice",
        from_address=text(element, "fromAddress"),
        to_address=text(element, "toAddress"),
        associated_dialog_id=last_path_segment(text(element, "associatedDialogUri")),
        secondary_id=text(element, "secondaryId"),
        dialed_number=text(props, "dialedNumber"),
        queue_name=text(props, "queueName"),
        participants=tuple(read_participant(p) for p in children(child(element, "participants"), "Participant")),
    )


def _read_node(element: Element | None) -> FinesseNodeInfo | None:
    host = text(element, "host")
    if host is None:
        return None
    return FinesseNodeInfo(
        host=host,
        https_port=_int(text(element, "httpsPort")),
        xmpp_port=_int(text(element, "xmppPort")),
        xmpp_secure_port=_int(text(element, "xmppSecurePort")),
    )


def read_system_info(element: Element) -> SystemInfo:
    return SystemInfo(
        status=text(element, "status") or "UNKNOWN",
        status_reason=text(element, "statusReason"),
        deployment_type=text(element, "deploymentType"),
        system_auth_mode=text(element, "systemAuthMode"),
        xmpp_domain=text(element, "xmppDomain"),
        xmpp_pubsub_domain=text(element, "xmppPubSubDomain"),
        primary_node=_read_node(child(element, "primaryNode")),
        secondary_node=_read_node(child(element, "secondaryNode")),
    )


def read_media(element: Element, mrd_id: str | None = None) -> MediaState:
    return MediaState(
        mrd_id=text(element, "id") or mrd_id or last_path_segment(text(element, "uri")) or "",
        state=text(element, "state") or "UNKNOWN",
        name=text(element, "name"),
        reason_code_id=text(element, "reasonCodeId"),
        interruptible=_bool(text(element, "interruptible")),
        max_dialog_limit=_int(text(element, "maxDialogLimit")),
        routable=_bool(text(element, "routable")),
    )


def read_api_errors(element: Element) -> list[ApiError]:
    """`<ApiErrors><ApiError>…` (REST) or `<apiErrors><apiError>…` (notifications), any case."""
    found = [
        ApiError(
            error_type=text(e, "errorType") or "Unknown",
            message=text(e, "errorMessage") or "",
            data=text(e, "errorData"),
        )
        for e in descendants(element, "apiError")
    ]
    return found
