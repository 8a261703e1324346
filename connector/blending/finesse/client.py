"""The Finesse REST client: agent state, reason codes, dialogs, media state, SystemInfo.

Every call goes to the node the failover currently marks active (`nodes.active_node()`); while both
nodes are down that raises FinesseUnavailable before any request is made, so blending halts instead
of hammering dead nodes. Bodies are XML with `Content-Type: application/xml` (Finesse refuses PUTs
without it); answers and ApiErrors are parsed with defusedxml. State changes are accepted with 202
and confirmed later by an XMPP Update, so `set_state` returning means "Finesse will try", not "done".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol
from urllib.parse import quote
from xml.etree.ElementTree import Element, SubElement, tostring

import requests

from connector.blending.finesse.objects import (
    ApiError,
    Dialog,
    FinesseNodeInfo,
    FinesseUser,
    MalformedXml,
    MediaState,
    Participant,
    ReasonCode,
    SystemInfo,
    children,
    parse_document,
    read_api_errors,
    read_dialog,
    read_media,
    read_reason_code,
    read_system_info,
    read_user,
)
from connector.config.model import FinesseConfig
from connector.http_session import outbound_session

__all__ = [
    "ActiveNode",
    "AuthorizationError",
    "Dialog",
    "FinesseClient",
    "FinesseError",
    "FinesseNodeInfo",
    "FinesseUnavailable",
    "FinesseUser",
    "FixedNode",
    "InvalidInput",
    "InvalidState",
    "MediaState",
    "NotFound",
    "Participant",
    "ReasonCode",
    "SystemInfo",
]

log = logging.getLogger(__name__)

API = "/finesse/api"
XML = "application/xml"

Credentials = tuple[str, str]
CredentialsProvider = Callable[[str], Credentials | None]


# -- errors ---------------------------------------------------------------------------------------


class FinesseError(Exception):
    """Finesse refused or could not answer a call. `error_type` is the ApiError's ErrorType
    ("Invalid State", "Parameter Missing", ...) or what went wrong on the wire."""

    def __init__(
        self, message: str, *, status: int | None = None, error_type: str = "", data: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.data = data

    def __str__(self) -> str:
        where = f"{self.status} " if self.status is not None else ""
        return f"{where}{self.error_type}: {self.message}" if self.error_type else f"{where}{self.message}"


class InvalidState(FinesseError):
    """400 Invalid State: the transition is not allowed from the agent's current state (LOGOUT from
    READY, READY while TALKING, ...). Reconcile against the reported state instead of retrying."""


class InvalidInput(FinesseError):
    """Any other 400 (Invalid Input, Parameter Missing, Bad Request): the request itself is wrong,
    e.g. a reasonCodeId that is not a NOT_READY reason code of this agent."""


class AuthorizationError(FinesseError):
    """401: wrong credentials, or the credentials may not act on this agent (admin-only call with agent
    credentials, an agent reading another agent)."""


class NotFound(FinesseError):
    """404: no such user, dialog, reason code or MRD."""


class FinesseUnavailable(FinesseError):
    """The node cannot serve now: 503 (OUT_OF_SERVICE, PARTIAL_SERVICE), connection refused, timeout,
    or no node in service at all (blending halted). Retry after the failover finds a node."""


_BY_STATUS: Mapping[int, type[FinesseError]] = {401: AuthorizationError, 404: NotFound, 503: FinesseUnavailable}


def error_for(status: int, api_error: ApiError | None, reason: str = "") -> FinesseError:
    """The typed error for an HTTP answer; 400 splits on ErrorType because only Invalid State means
    "the agent is not where you think" (docs/protocols/finesse.md, "Errors (ApiErrors)")."""
    error_type = api_error.error_type if api_error else reason or f"HTTP {status}"
    message = (api_error.message if api_error else "") or reason or f"HTTP {status}"
    data = api_error.data if api_error else None
    if status == 400:
        cls: type[FinesseError] = InvalidState if error_type.lower() == "invalid state" else InvalidInput
    else:
        cls = _BY_STATUS.get(status, FinesseError)
    return cls(message, status=status, error_type=error_type, data=data)


# -- which node -----------------------------------------------------------------------------------


class ActiveNode(Protocol):
    """Where Finesse calls go now; the failover implements it."""

    def active_node(self) -> str:
        """The base URL of the node to use; raises FinesseUnavailable while no node is in service."""
        ...


class FixedNode:
    """A single node, no failover (a lab, or before the failover is wired)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def active_node(self) -> str:
        return self.url


# -- client ---------------------------------------------------------------------------------------


def _xml_body(root_tag: str, fields: Mapping[str, str | None]) -> bytes:
    root = Element(root_tag)
    for name, value in fields.items():
        if value is not None:
            SubElement(root, name).text = value
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=False)  # typeshed: Any for a named encoding
    return body


class FinesseClient:
    """Blocking Finesse REST client, safe to share between threads (one requests.Session).

    Agent-scoped calls authenticate as the agent when `credentials(agent_id)` knows them, else as the
    admin; admin calls (`users`) always use the admin account. Passwords are never logged.
    """

    def __init__(
        self,
        config: FinesseConfig,
        *,
        credentials: CredentialsProvider | None = None,
        nodes: ActiveNode | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
        probe_timeout: float = 3.0,
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.nodes: ActiveNode = nodes or FixedNode(config.publisher)
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self.session = session or outbound_session()
        # Passed on every request: a Session's own `verify` loses to REQUESTS_CA_BUNDLE in the environment.
        self.verify: bool | str = True
        if config.ca_bundle:
            self.verify = config.ca_bundle
        elif not config.verify_tls:
            self.verify = False
            log.warning(
                "Finesse TLS certificates are NOT verified (finesse.verify_tls: false); "
                "set ca_bundle to the cluster's CA instead in production"
            )
        for node in (config.publisher, config.subscriber):
            if node and node.startswith("http://"):
                log.warning("Finesse node %s is plain http: credentials travel unencrypted", node)

    # -- agent ----------------------------------------------------------------------------------

    def get_user(self, agent_id: str) -> FinesseUser:
        root = self._call("GET", f"/User/{quote(agent_id, safe='')}", agent_id=agent_id)
        return read_user(root)

    def users(self) -> list[FinesseUser]:
        """Every user of the deployment (admin only)."""
        root = self._call("GET", "/Users", agent_id=None)
        return [read_user(u) for u in children(root, "User")]

    def set_state(
        self,
        agent_id: str,
        state: str,
        *,
        reason_code_id: str | None = None,
        request_id: str | None = None,
        extension: str | None = None,
    ) -> None:
        """Ask for a voice state change. Finesse answers 202; the outcome arrives as an XMPP Update
        (a User Update, or an `<apiErrors>` Update echoing `request_id`)."""
        body = _xml_body("User", {"state": state, "reasonCodeId": reason_code_id, "extension": extension})
        self._call("PUT", f"/User/{quote(agent_id, safe='')}", agent_id=agent_id, body=body, request_id=request_id)

    def reason_codes(self, agent_id: str, category: str = "NOT_READY") -> list[ReasonCode]:
        """The agent's reason codes of `category` (NOT_READY or LOGOUT); system codes are not listed."""
        root = self._call(
            "GET", f"/User/{quote(agent_id, safe='')}/ReasonCodes", agent_id=agent_id, params={"category": category}
        )
        return [read_reason_code(rc) for rc in children(root, "ReasonCode")]

    def dialogs(self, agent_id: str) -> list[Dialog]:
        """The agent's voice dialogs (calls ringing, active, held, wrapping up)."""
        root = self._call("GET", f"/User/{quote(agent_id, safe='')}/Dialogs", agent_id=agent_id)
        return [read_dialog(d) for d in children(root, "Dialog")]

    def dialog(self, dialog_id: str, *, agent_id: str | None = None) -> Dialog:
        root = self._call("GET", f"/Dialog/{quote(dialog_id, safe='')}", agent_id=agent_id)
        return read_dialog(root)

    def media(self, agent_id: str, mrd_id: str) -> MediaState:
        root = self._call("GET", f"/User/{quote(agent_id, safe='')}/Media/{quote(mrd_id, safe='')}", agent_id=agent_id)
        return read_media(root, mrd_id)

    def media_list(self, agent_id: str) -> list[MediaState]:
        """The non-voice MRDs Finesse lists for the agent (id, name, the agent's state in each): Media—Get
        List, `GET /finesse/api/User/{id}/Media` answering `<MediaList>`, at `finesse.media_list_path`
        (docs/protocols/finesse.md, "Non-voice Media API")."""
        path = self.config.media_list_path.replace("{id}", quote(agent_id, safe=""))
        root = self._call("GET", path.removeprefix(API), agent_id=agent_id)
        return [read_media(media) for media in children(root, "Media")]

    def set_media_state(
        self,
        agent_id: str,
        mrd_id: str,
        state: str,
        *,
        reason_code_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """Ask for a state change in a non-voice MRD (ECE chat on Finesse); 202, confirmed by Update."""
        body = _xml_body("Media", {"state": state, "reasonCodeId": reason_code_id})
        path = f"/User/{quote(agent_id, safe='')}/Media/{quote(mrd_id, safe='')}"
        self._call("PUT", path, agent_id=agent_id, body=body, request_id=request_id)

    # -- system ---------------------------------------------------------------------------------

    def system_info(self, node_url: str) -> SystemInfo:
        """SystemInfo of one given node, bypassing the failover (it is the failover's probe).
        Answers even while the node is OUT_OF_SERVICE; unreachable → FinesseUnavailable."""
        root = self._call("GET", "/SystemInfo", agent_id=None, node=node_url.rstrip("/"), timeout=self.probe_timeout)
        return read_system_info(root)

    # -- wire -----------------------------------------------------------------------------------

    def _auth(self, agent_id: str | None) -> Credentials:
        if agent_id is not None and self.credentials is not None:
            found = self.credentials(agent_id)
            if found:
                return found
        return (self.config.admin_user, self.config.admin_password)

    def _call(
        self,
        method: str,
        path: str,
        *,
        agent_id: str | None,
        body: bytes | None = None,
        request_id: str | None = None,
        params: Mapping[str, str] | None = None,
        node: str | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> Element:
        base = node or self.nodes.active_node()  # raises FinesseUnavailable while halted: no request
        headers = {"Accept": XML}
        if body is not None:
            headers["Content-Type"] = XML  # Finesse rejects PUTs without it
        if request_id:
            headers["requestId"] = request_id  # echoed in the async Update / apiErrors
        url = f"{base}{API}{path}"
        try:
            response = self.session.request(
                method,
                url,
                data=body,
                params=params,
                headers=headers,
                auth=self._auth(agent_id),
                timeout=timeout or self.timeout,
                verify=self.verify,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise FinesseUnavailable(f"{method} {url} timed out", error_type="Timeout") from exc
        except requests.ConnectionError as exc:
            raise FinesseUnavailable(f"cannot connect to {base}: {exc}", error_type="Connection") from exc
        log.debug(
            "finesse %s %s -> %s", method, path, response.status_code, extra={"request_id": request_id, "node": base}
        )
        if 200 <= response.status_code < 300:
            return self._document(response, method, url)
        raise self._error(response)

    @staticmethod
    def _document(response: requests.Response, method: str, url: str) -> Element:
        if not response.content.strip():
            return Element("empty")  # 202 Accepted carries no body
        try:
            return parse_document(response.content)
        except MalformedXml as exc:
            raise FinesseError(
                f"{method} {url} answered {response.status_code} with a body that is not XML: {exc}",
                status=response.status_code,
                error_type="Malformed Response",
            ) from exc

    @staticmethod
    def _error(response: requests.Response) -> FinesseError:
        api_error: ApiError | None = None
        if response.content.strip():
            try:
                root = parse_document(response.content)
                errors = read_api_errors(root)
                api_error = errors[0] if errors else None
            except MalformedXml:
                api_error = None
        return error_for(response.status_code, api_error, response.reason or "")
