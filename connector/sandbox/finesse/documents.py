"""Finesse's XML documents as the simulator writes them (docs/protocols/finesse.md, sections
"User and agent states" to "Non-voice Media API").

REST bodies use capitalised roots (`<User>`, `<Dialog>`); notification payloads use lower-case ones
(`<user>`, `<dialog>`), as the real notification service does, so clients must read both.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, SubElement, tostring

if TYPE_CHECKING:
    from connector.sandbox.finesse.model import SimAgent, SimDialog, SimMedia, SimReasonCode

API = "/finesse/api"


def iso(ts: float | None) -> str:
    """Unix seconds → Finesse's `2012-03-01T17:58:21.234Z`."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def _add(parent: Element, tag: str, value: object | None = None) -> Element:
    element = SubElement(parent, tag)
    if value is not None and value != "":
        element.text = str(value).lower() if isinstance(value, bool) else str(value)
    return element


def serialize(element: Element) -> bytes:
    return tostring(element, encoding="utf-8", xml_declaration=False)


def reason_code(rc: SimReasonCode, tag: str = "ReasonCode") -> Element:
    root = Element(tag)
    _add(root, "category", rc.category)
    _add(root, "uri", f"{API}/ReasonCode/{rc.id}")
    _add(root, "code", rc.code)
    _add(root, "label", rc.label)
    _add(root, "forAll", rc.for_all)
    _add(root, "systemCode", rc.system)
    _add(root, "id", rc.id)
    return root


def reason_codes(items: Iterable[SimReasonCode]) -> Element:
    root = Element("ReasonCodes")
    for rc in items:
        root.append(reason_code(rc))
    return root


def user(agent: SimAgent, reason: SimReasonCode | None, tag: str = "User") -> Element:
    root = Element(tag)
    _add(root, "uri", f"{API}/User/{agent.id}")
    roles = _add(root, "roles")
    for role in agent.roles:
        _add(roles, "role", role)
    _add(root, "loginId", agent.id)
    _add(root, "loginName", agent.login_name)
    _add(root, "state", agent.state)
    _add(root, "stateChangeTime", iso(agent.state_change_time))
    _add(root, "pendingState", agent.pending_state)
    _add(root, "reasonCodeId", agent.reason_code_id)
    if reason is not None:
        root.append(reason_code(reason))
    settings = _add(root, "settings")
    _add(settings, "wrapUpOnIncoming", "OPTIONAL")
    _add(settings, "wrapUpOnOutgoing", "NOT_ALLOWED")
    _add(root, "extension", agent.extension)
    _add(root, "firstName", agent.first_name)
    _add(root, "lastName", agent.last_name)
    _add(root, "teamId", agent.team_id)
    _add(root, "teamName", agent.team_name)
    _add(root, "mediaType", 1)
    _add(root, "dialogs", f"{API}/User/{agent.id}/Dialogs")
    team = _add(_add(root, "teams"), "Team")
    _add(team, "uri", f"{API}/Team/{agent.team_id}")
    _add(team, "id", agent.team_id)
    _add(team, "name", agent.team_name)
    return root


def users(agents: Iterable[tuple[SimAgent, SimReasonCode | None]]) -> Element:
    root = Element("Users")
    for agent, reason in agents:
        root.append(user(agent, reason))
    return root


def dialog(d: SimDialog, tag: str = "Dialog") -> Element:
    root = Element(tag)
    _add(root, "associatedDialogUri", f"{API}/Dialog/{d.associated_dialog_id}" if d.associated_dialog_id else None)
    _add(root, "fromAddress", d.from_address)
    _add(root, "id", d.id)
    _add(root, "secondaryId", d.associated_dialog_id)
    props = _add(root, "mediaProperties")
    _add(props, "mediaId", 1)
    _add(props, "DNIS", d.to_address)
    _add(props, "callType", d.call_type)
    _add(props, "dialedNumber", d.to_address)
    _add(props, "outboundClassification")
    variables = _add(props, "callvariables")
    for name, value in d.call_variables.items():
        variable = _add(variables, "CallVariable")
        _add(variable, "name", name)
        _add(variable, "value", value)
    _add(props, "queueNumber", d.queue_number)
    _add(props, "queueName", d.queue_name)
    _add(root, "mediaType", "Voice")
    participants = _add(root, "participants")
    for p in d.participants:
        participant = _add(participants, "Participant")
        actions = _add(participant, "actions")
        for action in p.actions:
            _add(actions, "action", action)
        _add(participant, "mediaAddress", p.media_address)
        _add(participant, "mediaAddressType", p.media_address_type)
        _add(participant, "startTime", iso(p.start_time))
        _add(participant, "state", p.state)
        _add(participant, "stateCause", p.state_cause)
        _add(participant, "stateChangeTime", iso(p.state_change_time))
    _add(root, "state", d.state)
    _add(root, "toAddress", d.to_address)
    _add(root, "uri", f"{API}/Dialog/{d.id}")
    return root


def dialogs(items: Iterable[SimDialog], tag: str = "Dialogs", item_tag: str = "Dialog") -> Element:
    root = Element(tag)
    for d in items:
        root.append(dialog(d, item_tag))
    return root


def media(agent: SimAgent, m: SimMedia, reason: SimReasonCode | None, tag: str = "Media") -> Element:
    root = Element(tag)
    _add(root, "uri", f"{API}/User/{agent.id}/Media/{m.mrd_id}")
    _add(root, "id", m.mrd_id)
    _add(root, "name", m.name)
    _add(root, "description", m.name)
    _add(root, "interruptible", m.interruptible)
    _add(root, "maxDialogLimit", m.max_dialog_limit)
    _add(root, "interruptAction", "ACCEPT")
    _add(root, "dialogLogoutAction", "CLOSE")
    _add(root, "routable", m.state == "READY")
    _add(root, "state", m.state)
    _add(root, "stateChangeTime", iso(m.state_change_time))
    _add(root, "reasonCodeId", m.reason_code_id)
    if reason is not None:
        root.append(reason_code(reason))
    _add(root, "mediaConnected", True)
    return root


def media_list(agent: SimAgent, items: Iterable[tuple[SimMedia, SimReasonCode | None]]) -> Element:
    root = Element("MediaList")
    for m, reason in items:
        root.append(media(agent, m, reason))
    return root


def system_info(
    *,
    status: str,
    status_reason: str | None,
    deployment: str,
    xmpp_domain: str,
    primary: tuple[str, int, int] | None,
    secondary: tuple[str, int, int] | None,
) -> Element:
    """`primary` / `secondary` are (host, https port, xmpp port)."""
    root = Element("SystemInfo")
    _add(root, "currentTimestamp", iso(datetime.now(UTC).timestamp()))
    _add(root, "deploymentType", deployment)
    _add(root, "license")
    for tag, node in (("primaryNode", primary), ("secondaryNode", secondary)):
        if node is not None:
            element = _add(root, tag)
            _add(element, "host", node[0])
            _add(element, "httpsPort", node[1])
            _add(element, "xmppPort", node[2])
            _add(element, "xmppSecurePort", node[2])
    _add(root, "status", status)
    _add(root, "statusReason", status_reason)
    _add(root, "systemAuthMode", "NON_SSO")
    _add(root, "timezoneOffset", 0)
    _add(root, "uri", f"{API}/SystemInfo")
    _add(root, "xmppDomain", xmpp_domain)
    _add(root, "xmppPubSubDomain", f"pubsub.{xmpp_domain}")
    return root


def api_errors(errors: Iterable[tuple[str, str, str | None]], *, notification: bool = False) -> Element:
    """(ErrorType, ErrorMessage, ErrorData) triples. REST answers say `<ApiErrors><ApiError><ErrorType>`;
    asynchronous ones inside an Update say `<apiErrors><apiError><errorType>`."""
    names = ("apiErrors", "apiError", "errorType", "errorMessage", "errorData")
    if not notification:
        names = ("ApiErrors", "ApiError", "ErrorType", "ErrorMessage", "ErrorData")
    root = Element(names[0])
    for error_type, message, data in errors:
        error = _add(root, names[1])
        _add(error, names[4], data)
        _add(error, names[3], message)
        _add(error, names[2], error_type)
    return root


def update(event: str, source: str, payload: Element, request_id: str | None = None) -> str:
    """An `<Update>` envelope as the notification service publishes it
    (docs/protocols/finesse.md, "Update envelopes")."""
    root = Element("Update")
    data = _add(root, "data")
    data.append(payload)
    _add(root, "event", event)
    _add(root, "requestId", request_id)
    _add(root, "source", source)
    return serialize(root).decode()
