"""The simulated Finesse cluster's shared state: agents, reason codes, dialogs, MRD media states, node
status, the requests received and the notifications published.

Both nodes (publisher, subscriber) serve this one model, as a real cluster replicates its state.
Every change goes through a method that holds the lock, checks the transition rules
(docs/protocols/finesse.md, "Changing the agent state") and queues the `<Update>` notifications;
they are handed to the listeners (the XMPP server) only after the lock is released, so a
notification never races ahead of the change it reports and a listener can call back into the model.
"""

from __future__ import annotations

import hmac
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from connector.sandbox.finesse import documents as doc

API = "/finesse/api"

USER_STATES = {
    "LOGIN", "LOGOUT", "NOT_READY", "READY", "RESERVED", "RESERVED_OUTBOUND", "RESERVED_OUTBOUND_PREVIEW",
    "TALKING", "HOLD", "WORK", "WORK_READY", "UNKNOWN",
}  # fmt: skip
ON_CALL = {"RESERVED", "TALKING", "HOLD"}
MEDIA_STATES = {"LOGIN", "LOGOUT", "NOT_READY", "READY", "RESERVED", "WORK", "INTERRUPTED"}
CHAT_MRD = ("2", "Chat")
"""The chat MRD (id, name) every agent has unless provisioned with other MRDs: ECE's chat on Finesse."""

Listener = Callable[[str, str], None]


class SimError(Exception):
    """A refusal the REST layer renders as `<ApiErrors>` with `status`."""

    def __init__(self, status: int, error_type: str, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.data = data


@dataclass
class SimReasonCode:
    id: str
    category: str  # NOT_READY | LOGOUT
    code: str
    label: str
    for_all: bool = True
    system: bool = False


@dataclass
class SimMedia:
    mrd_id: str
    name: str = "Chat"
    state: str = "LOGOUT"
    reason_code_id: str | None = None
    state_change_time: float = field(default_factory=time.time)
    interruptible: bool = True
    max_dialog_limit: int = 5
    before_interrupt: tuple[str, str | None] | None = None  # state to restore when the voice call ends


@dataclass
class SimAgent:
    id: str
    password: str = field(repr=False)
    extension: str
    login_name: str = ""
    first_name: str = ""
    last_name: str = ""
    team_id: str = "1"
    team_name: str = "Default"
    roles: tuple[str, ...] = ("Agent",)
    state: str = "LOGOUT"
    reason_code_id: str | None = None
    pending_state: str | None = None
    pending_reason_code_id: str | None = None
    state_change_time: float = field(default_factory=time.time)
    media: dict[str, SimMedia] = field(default_factory=dict)
    refusals: list[tuple[str, str, str | None]] = field(default_factory=list)
    before_call: tuple[str, str | None] | None = None  # state to restore after a non-routed call
    routed_call: bool = False  # the current call session began with a routed offer

    @property
    def supervisor(self) -> bool:
        return "Supervisor" in self.roles


@dataclass
class SimParticipant:
    media_address: str
    state: str
    media_address_type: str | None = None
    state_cause: str | None = None
    start_time: float = field(default_factory=time.time)
    state_change_time: float = field(default_factory=time.time)

    @property
    def actions(self) -> tuple[str, ...]:
        """Allowed actions by participant state (docs/protocols/finesse.md, "Dialogs")."""
        return {
            "INITIATING": ("DROP", "UPDATE_CALL_DATA"),
            "INITIATED": ("DROP", "UPDATE_CALL_DATA"),
            "ALERTING": ("ANSWER",),
            "ACTIVE": ("HOLD", "DROP", "UPDATE_CALL_DATA", "CONSULT_CALL"),
            "HELD": ("RETRIEVE", "DROP", "UPDATE_CALL_DATA"),
            "FAILED": ("DROP",),
            "WRAP_UP": ("UPDATE_CALL_DATA",),
        }.get(self.state, ())


@dataclass
class SimDialog:
    id: str
    agent_id: str
    call_type: str
    routed: bool
    outgoing: bool
    from_address: str
    to_address: str
    state: str
    participants: list[SimParticipant]
    associated_dialog_id: str | None = None
    queue_name: str | None = None
    queue_number: str | None = None
    call_variables: dict[str, str] = field(default_factory=dict)

    def agent_participant(self, extension: str) -> SimParticipant:
        return next(p for p in self.participants if p.media_address == extension)


@dataclass
class NodeState:
    name: str
    status: str = "IN_SERVICE"
    status_reason: str | None = None
    reachable: bool = True
    host: str = "127.0.0.1"
    https_port: int = 0


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request a node received; `user` is the Basic-auth user name (never the password)."""

    node: str
    method: str
    path: str
    query: str
    user: str | None
    request_id: str | None
    content_type: str | None
    status: int
    at: float


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin account or an agent (possibly a supervisor)."""

    admin: bool
    agent: SimAgent | None = None

    @property
    def name(self) -> str:
        return "admin" if self.admin or self.agent is None else self.agent.id


class FinesseModel:
    """The cluster's state. `deployment` (UCCE | UCCX) changes how non-routed calls and hold show in
    the agent state (docs/protocols/finesse.md, "User and agent states"). `reason_code_required`
    makes NOT_READY without a reasonCodeId a 400 Parameter Missing, as deployments that enforce
    reason codes do."""

    def __init__(
        self,
        *,
        admin_user: str = "admin",
        admin_password: str = "admin-password",  # noqa: S107 (the sandbox's published demo login)
        deployment: str = "UCCE",
        xmpp_domain: str = "finesse.sandbox",
        xmpp_port: int = 5222,
        reason_code_required: bool = True,
        admin_may_change_states: bool = False,
    ) -> None:
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.deployment = deployment.upper()
        self.xmpp_domain = xmpp_domain
        self.xmpp_port = xmpp_port
        self.reason_code_required = reason_code_required
        # [I] Finesse's User API lets an agent change itself and a supervisor set READY / LOGOUT;
        # nothing documents the administrator changing agent states, so by default it cannot.
        self.admin_may_change_states = admin_may_change_states
        self.agents: dict[str, SimAgent] = {}
        self.reason_codes: dict[str, SimReasonCode] = {}
        self.dialogs: dict[str, SimDialog] = {}
        self.nodes: dict[str, NodeState] = {"publisher": NodeState("publisher"), "subscriber": NodeState("subscriber")}
        self.requests: list[RequestRecord] = []
        self.notifications: list[tuple[str, str]] = []
        self.listeners: list[Listener] = []
        self.lock = threading.RLock()
        self._outbox: list[tuple[str, str]] = []
        self._depth = 0
        self._ids = itertools.count(16_777_300)
        # CCE puts an agent who lets a routed call ring out NOT_READY with a system reason code.
        # [I] the code number and label are illustrative; the simulator only needs it to be a system code.
        self.rona_reason = self.add_reason_code("32767", "NOT_READY", "32767", "Redirection on No Answer", system=True)

    # -- transactions and notifications ---------------------------------------------------------

    @contextmanager
    def changing(self) -> Iterator[None]:
        """Hold the lock for a change; publish its notifications once the outermost change is done."""
        outbox: list[tuple[str, str]] = []
        try:
            with self.lock:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                    if self._depth == 0:
                        outbox, self._outbox = self._outbox, []
        finally:
            # Also after a refusal part-way: whatever changed is reported.
            for node, xml in outbox:
                for listener in list(self.listeners):
                    listener(node, xml)

    def _publish(self, node: str, xml: str) -> None:
        self._outbox.append((node, xml))
        self.notifications.append((node, xml))
        del self.notifications[:-2000]

    def inject(self, node: str, xml: str) -> None:
        """Push an arbitrary notification body (malformed or unknown, for robustness tests)."""
        with self.changing():
            self._publish(node, xml)

    def publish_user(self, agent: SimAgent, request_id: str | None = None) -> None:
        source = f"{API}/User/{agent.id}"
        payload = doc.user(agent, self._reason(agent.reason_code_id), tag="user")
        self._publish(source, doc.update("PUT", source, payload, request_id))

    def publish_dialog(self, dialog: SimDialog, event: str, request_id: str | None = None) -> None:
        """POST (new dialog) goes out as `<dialogs><Dialog>` from the user's Dialogs collection;
        PUT and DELETE as `<dialog>` from the dialog itself (docs/protocols/finesse.md, "Update envelopes")."""
        node = f"{API}/User/{dialog.agent_id}/Dialogs"
        if event == "POST":
            payload, source = doc.dialogs([dialog], tag="dialogs"), node
        else:
            payload, source = doc.dialog(dialog, tag="dialog"), f"{API}/Dialog/{dialog.id}"
        self._publish(node, doc.update(event, source, payload, request_id))

    def publish_media(self, agent: SimAgent, media: SimMedia, request_id: str | None = None) -> None:
        """On the User's Media node, from the MRD's own source (docs/protocols/finesse.md, "XMPP notifications")."""
        source = f"{API}/User/{agent.id}/Media/{media.mrd_id}"
        payload = doc.media(agent, media, self._reason(media.reason_code_id), tag="media")
        self._publish(f"{API}/User/{agent.id}/Media", doc.update("PUT", source, payload, request_id))

    def publish_api_error(
        self, agent_id: str, error_type: str, message: str, data: str | None = None, request_id: str | None = None
    ) -> None:
        """An asynchronous refusal, e.g. the CTI server rejecting a state change Finesse accepted with 202."""
        with self.changing():
            agent = self.agent(agent_id)
            source = f"{API}/User/{agent.id}"
            payload = doc.api_errors([(error_type, message, data)], notification=True)
            self._publish(source, doc.update("PUT", source, payload, request_id))

    # -- provisioning ---------------------------------------------------------------------------

    def add_reason_code(
        self, rc_id: str, category: str, code: str, label: str, *, system: bool = False, for_all: bool = True
    ) -> SimReasonCode:
        if category not in ("NOT_READY", "LOGOUT"):
            raise SimError(400, "Invalid Input", f"reason code category must be NOT_READY or LOGOUT, got {category!r}")
        with self.lock:
            rc = SimReasonCode(str(rc_id), category, str(code), label, for_all=for_all, system=system)
            self.reason_codes[rc.id] = rc
            return rc

    def add_agent(
        self,
        agent_id: str,
        password: str,
        *,
        extension: str,
        state: str = "LOGOUT",
        reason_code_id: str | None = None,
        media: tuple[str, ...] | None = None,
        media_state: str | None = None,
        **details: object,
    ) -> SimAgent:
        """Provision an agent; `details` are SimAgent fields (login_name, first_name, team_id, roles, ...).
        `media`: the agent's MRD ids (default: the chat MRD, CHAT_MRD), each in `media_state`, by default
        LOGOUT for a logged-out agent, else READY for a READY agent and NOT_READY otherwise."""
        if state not in USER_STATES - {"LOGIN"}:
            raise SimError(400, "Invalid Input", f"unknown state {state!r}")
        with self.changing():
            agent = SimAgent(id=str(agent_id), password=password, extension=str(extension), **details)  # type: ignore[arg-type]
            agent.login_name = agent.login_name or agent.id
            agent.state, agent.reason_code_id = state, reason_code_id
            if media_state is None:
                media_state = "LOGOUT" if state == "LOGOUT" else ("READY" if state == "READY" else "NOT_READY")
            if media_state not in MEDIA_STATES - {"LOGIN"}:
                raise SimError(400, "Invalid Input", f"unknown media state {media_state!r}")
            ids = (CHAT_MRD[0],) if media is None else media
            agent.media = {
                str(m): SimMedia(str(m), CHAT_MRD[1] if str(m) == CHAT_MRD[0] else "Chat", media_state) for m in ids
            }
            self.agents[agent.id] = agent
            return agent

    # -- lookups --------------------------------------------------------------------------------

    def agent(self, agent_id: str) -> SimAgent:
        found = self.agents.get(agent_id)
        if found is None:
            raise SimError(404, "Not Found", f"User {agent_id} not found")
        return found

    def _reason(self, rc_id: str | None) -> SimReasonCode | None:
        return self.reason_codes.get(rc_id) if rc_id else None

    def reason(self, rc_id: str | None) -> SimReasonCode | None:
        with self.lock:
            return self._reason(rc_id)

    def visible_reason_codes(self, category: str) -> list[SimReasonCode]:
        """What the User API lists: no system codes (docs/protocols/finesse.md, "Reason codes")."""
        if category not in ("NOT_READY", "LOGOUT", "ALL"):
            raise SimError(400, "Invalid Input", f"category must be NOT_READY or LOGOUT, got {category!r}")
        with self.lock:
            return [rc for rc in self.reason_codes.values() if not rc.system and category in (rc.category, "ALL")]

    def dialogs_of(self, agent_id: str) -> list[SimDialog]:
        with self.lock:
            return [d for d in self.dialogs.values() if d.agent_id == agent_id]

    def dialog(self, dialog_id: str) -> SimDialog:
        found = self.dialogs.get(dialog_id)
        if found is None:
            raise SimError(404, "Not Found", f"Dialog {dialog_id} not found")
        return found

    def next_id(self) -> str:
        return str(next(self._ids))

    # -- authentication and authorization -------------------------------------------------------

    def authenticate(self, username: str | None, password: str | None) -> Principal | None:
        """Basic auth is `loginId|loginName:password`; constant-time compares
        (docs/protocols/finesse.md, "Transport and authentication")."""
        if username is None or password is None:
            return None
        with self.lock:
            if hmac.compare_digest(username.encode(), self.admin_user.encode()):
                ok = hmac.compare_digest(password.encode(), self.admin_password.encode())
                return Principal(admin=True) if ok else None
            agent = self.agents.get(username) or next(
                (a for a in self.agents.values() if a.login_name == username), None
            )
            if agent is not None and hmac.compare_digest(password.encode(), agent.password.encode()):
                return Principal(admin=False, agent=agent)
            return None

    def require_admin(self, who: Principal) -> None:
        if not who.admin:
            raise SimError(401, "Authorization Failure", "this API requires administrator credentials")

    def require_read(self, who: Principal, agent_id: str) -> None:
        """Own user, the admin, or a supervisor of the agent's team may read it."""
        if who.admin or who.agent is None or who.agent.id == agent_id:
            return
        target = self.agents.get(agent_id)
        if who.agent.supervisor and target is not None and target.team_id == who.agent.team_id:
            return
        raise SimError(401, "Invalid Authorization User Specified", f"{who.name} may not access User {agent_id}")

    def require_write(self, who: Principal, agent_id: str, state: str | None = None) -> None:
        """An agent changes only itself; a supervisor may set a team member READY or LOGOUT only; the
        administrator only when `admin_may_change_states` (inferred behaviour, configurable)."""
        if who.admin or who.agent is None:
            if self.admin_may_change_states or state in ("READY", "LOGOUT"):
                return
            raise SimError(
                401, "Invalid State", "the administrator may only set an agent READY or LOGOUT (like a supervisor)"
            )
        if who.agent.id == agent_id:
            return
        self.require_read(who, agent_id)
        if state not in ("READY", "LOGOUT"):
            raise SimError(401, "Invalid State", "a supervisor may only set an agent READY or LOGOUT")

    # -- user state -----------------------------------------------------------------------------

    def move(self, agent: SimAgent, state: str, reason_code_id: str | None = None) -> None:
        """Set the agent's state (no checks, no notification); callers publish."""
        agent.state = state
        agent.reason_code_id = reason_code_id if state in ("NOT_READY", "LOGOUT") else None
        agent.state_change_time = time.time()

    def _check_reason(self, category: str, rc_id: str | None) -> None:
        if rc_id is None:
            if category == "NOT_READY" and self.reason_code_required:
                raise SimError(400, "Parameter Missing", "reasonCodeId is required for NOT_READY")
            return
        rc = self.reason_codes.get(rc_id)
        if rc is None or rc.category != category or rc.system:
            raise SimError(400, "Invalid Input", f"reasonCodeId {rc_id} is not a {category} reason code")

    def change_state(
        self,
        who: Principal,
        agent_id: str,
        *,
        state: str | None,
        reason_code_id: str | None = None,
        extension: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """PUT User: validate synchronously (400 / 401 / 404), then apply and notify (the 202 path)."""
        with self.changing():
            if state is None:
                raise SimError(400, "Parameter Missing", "state is required")
            if state not in USER_STATES:
                raise SimError(400, "Invalid Input", f"unknown state {state!r}")
            self.require_write(who, agent_id, state)
            agent = self.agent(agent_id)
            current = agent.state
            if state == "LOGIN":
                if current != "LOGOUT":
                    raise SimError(400, "Invalid State", f"LOGIN is not allowed from {current}")
                if not extension:
                    raise SimError(400, "Parameter Missing", "extension is required for LOGIN")
            elif state in ("READY", "NOT_READY"):
                if current == "LOGOUT":
                    raise SimError(400, "Invalid State", f"{state} is not allowed from LOGOUT")
                if state == "NOT_READY":
                    self._check_reason("NOT_READY", reason_code_id)
            elif state == "LOGOUT":
                # LOGOUT is allowed only from NOT_READY (docs/protocols/finesse.md, "Changing the agent state").
                if current != "NOT_READY":
                    raise SimError(400, "Invalid State", f"LOGOUT is allowed only from NOT_READY, agent is {current}")
                self._check_reason("LOGOUT", reason_code_id)
            else:
                raise SimError(400, "Invalid State", f"{state} is driven by the system and cannot be requested")
            if agent.refusals:
                # Accepted with 202, then refused asynchronously by the CTI server.
                error_type, message, data = agent.refusals.pop(0)
                self.publish_api_error(agent.id, error_type, message, data, request_id)
                return
            self._apply_request(agent, state, reason_code_id, extension, request_id)

    def _apply_request(
        self, agent: SimAgent, state: str, reason_code_id: str | None, extension: str | None, request_id: str | None
    ) -> None:
        if state == "LOGIN":
            # LOGIN is transient: the agent lands in NOT_READY, and so do its non-voice MRDs.
            agent.extension = extension or agent.extension
            self.move(agent, "NOT_READY")
            for media in agent.media.values():
                self._set_media(agent, media, "NOT_READY", None, request_id)
        elif agent.state in ON_CALL:
            # While on a call the request becomes the pending state, applied when the call ends.
            agent.pending_state, agent.pending_reason_code_id = state, reason_code_id
        else:
            self.move(agent, state, reason_code_id)
            agent.pending_state = agent.pending_reason_code_id = None
            if state == "LOGOUT":
                for media in agent.media.values():
                    self._set_media(agent, media, "LOGOUT", None, request_id)
        self.publish_user(agent, request_id)

    def end_wrapup(self, agent_id: str) -> None:
        """The wrap-up timer expired: WORK → NOT_READY, WORK_READY → READY
        (docs/protocols/finesse.md, "User and agent states")."""
        with self.changing():
            agent = self.agent(agent_id)
            if agent.state not in ("WORK", "WORK_READY"):
                raise SimError(409, "Invalid State", f"agent {agent_id} is {agent.state}, not in wrap-up")
            if agent.pending_state:
                self.move(agent, agent.pending_state, agent.pending_reason_code_id)
                agent.pending_state = agent.pending_reason_code_id = None
            else:
                self.move(agent, "NOT_READY" if agent.state == "WORK" else "READY")
            self.publish_user(agent)

    def reset_agents(self, state: str = "NOT_READY") -> None:
        """What a Finesse failover does to logged-in agents not on a call: they come back NOT_READY."""
        with self.changing():
            for agent in self.agents.values():
                if agent.state not in ("LOGOUT", *ON_CALL) and agent.state != state:
                    self.move(agent, state)
                    self.publish_user(agent)

    def refuse_next(self, agent_id: str, error_type: str, message: str, data: str | None = None) -> None:
        """The agent's next accepted PUT User is refused asynchronously with an `<apiErrors>` Update."""
        with self.lock:
            self.agent(agent_id).refusals.append((error_type, message, data))

    # -- non-voice media (MRD) ------------------------------------------------------------------

    def media_of(self, agent_id: str, mrd_id: str) -> tuple[SimAgent, SimMedia]:
        agent = self.agent(agent_id)
        media = agent.media.get(mrd_id)
        if media is None:
            raise SimError(404, "Not Found", f"Media {mrd_id} not found for User {agent_id}")
        return agent, media

    def media_list(self, agent_id: str) -> tuple[SimAgent, list[SimMedia]]:
        agent = self.agent(agent_id)
        return agent, list(agent.media.values())

    def _set_media(
        self, agent: SimAgent, media: SimMedia, state: str, reason_code_id: str | None, request_id: str | None
    ) -> None:
        media.state, media.reason_code_id, media.state_change_time = state, reason_code_id, time.time()
        media.before_interrupt = None  # a change during the call replaces what the call's end would restore
        self.publish_media(agent, media, request_id)

    def interrupt_media(self, agent: SimAgent) -> None:
        """A voice call began: each interruptible MRD the agent is READY in goes INTERRUPTED (with
        interruptAction ACCEPT; docs/protocols/finesse.md, "Non-voice Media API"). [I] NOT_READY and
        LOGOUT MRDs stay as they are. Call inside `changing()`."""
        for media in agent.media.values():
            if media.interruptible and media.state == "READY":
                self._set_media(agent, media, "INTERRUPTED", None, None)
                media.before_interrupt = ("READY", None)

    def resume_media(self, agent: SimAgent) -> None:
        """The agent's last call ended: MRDs still INTERRUPTED return to their state before the call; one
        changed during the call (a PUT Media) keeps that change. Call inside `changing()`."""
        for media in agent.media.values():
            if media.state == "INTERRUPTED" and media.before_interrupt is not None:
                self._set_media(agent, media, *media.before_interrupt, None)
            media.before_interrupt = None

    def change_media_state(
        self,
        who: Principal,
        agent_id: str,
        mrd_id: str,
        *,
        state: str | None,
        reason_code_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """PUT Media: LOGIN (→ NOT_READY) from LOGOUT; READY / NOT_READY once logged in; LOGOUT only from
        NOT_READY, mirroring the voice rules ([I], docs/protocols/finesse.md, "Non-voice Media API")."""
        with self.changing():
            if state is None:
                raise SimError(400, "Parameter Missing", "state is required")
            if state not in MEDIA_STATES:
                raise SimError(400, "Invalid Input", f"unknown media state {state!r}")
            self.require_write(who, agent_id, state)
            agent, media = self.media_of(agent_id, mrd_id)
            current = media.state
            if state == "LOGIN" and current == "LOGOUT":
                self._set_media(agent, media, "NOT_READY", None, request_id)
            elif state in ("READY", "NOT_READY") and current not in ("LOGOUT",):
                if reason_code_id is not None:
                    self._check_reason("NOT_READY", reason_code_id)
                self._set_media(agent, media, state, reason_code_id if state == "NOT_READY" else None, request_id)
            elif state == "LOGOUT" and current == "NOT_READY":
                self._set_media(agent, media, "LOGOUT", None, request_id)
            else:
                raise SimError(400, "Invalid State", f"media state {state} is not allowed from {current}")

    # -- nodes and request log ------------------------------------------------------------------

    def node(self, name: str) -> NodeState:
        found = self.nodes.get(name)
        if found is None:
            raise SimError(404, "Not Found", f"no node {name!r} (publisher | subscriber)")
        return found

    def set_status(self, name: str, status: str, reason: str | None = None) -> None:
        if status not in ("IN_SERVICE", "OUT_OF_SERVICE", "PARTIAL_SERVICE"):
            raise SimError(400, "Invalid Input", f"unknown status {status!r}")
        with self.lock:
            node = self.node(name)
            node.status, node.status_reason = status, reason

    def record(self, entry: RequestRecord) -> None:
        with self.lock:
            self.requests.append(entry)
            del self.requests[:-10000]

    def requests_to(self, node: str | None = None, *, api_only: bool = False) -> list[RequestRecord]:
        """Requests received, oldest first; `api_only` leaves out SystemInfo (liveness probes)."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (node is None or r.node == node) and not (api_only and r.path.endswith("/SystemInfo"))
            ]

    def system_info_xml(self, name: str) -> bytes:
        with self.lock:
            node = self.node(name)
            primary, secondary = self.nodes["publisher"], self.nodes["subscriber"]
            return doc.serialize(
                doc.system_info(
                    status=node.status,
                    status_reason=node.status_reason,
                    deployment=self.deployment,
                    xmpp_domain=self.xmpp_domain,
                    primary=(primary.host, primary.https_port, self.xmpp_port),
                    secondary=(secondary.host, secondary.https_port, self.xmpp_port),
                )
            )
