"""Finesse at the wire for the blending service and agent sync tests.

`responses` answers the REST calls the way Finesse does (docs/protocols/finesse.md): XML bodies,
Basic auth, `Content-Type: application/xml` required on PUT, 202 for state changes, `<ApiErrors>` for
refusals, 503 while out of service. It keeps each agent's User state and applies a PUT the way the
User API's transition rules do. Finesse confirms a change later by notification: `notifications()`
hands the test the reports the notification source would produce (with the echoed requestId), and
the test delivers them to the service, or drops them to play a lost notification.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import responses

from connector.blending.events import VoiceStateChanged
from connector.blending.finesse.client import FinesseClient
from connector.config.model import FinesseConfig

BASE = "https://finesse-a.example.com:8445"
CONFIG = FinesseConfig(publisher=BASE, admin_user="admin", admin_password="secret")
ON_CALL = {"RESERVED", "TALKING", "HOLD", "WORK", "WORK_READY"}
XML = {"Content-Type": "application/xml"}


@dataclass
class WireAgent:
    id: str
    login_name: str
    first_name: str = "Ann"
    last_name: str = "Agent"
    extension: str = ""
    team_id: str = "1"
    team_name: str = "Support"
    state: str = "READY"
    reason_code_id: str | None = None
    roles: tuple[str, ...] = ("Agent",)


@dataclass(frozen=True)
class Put:
    agent_id: str
    path: str
    state: str
    reason_code_id: str | None
    request_id: str | None


@dataclass
class FinesseWire:
    rsps: responses.RequestsMock
    reason_codes: dict[str, str] = field(default_factory=lambda: {"22": "Handling Chat", "5": "Break"})
    agents: dict[str, WireAgent] = field(default_factory=dict)
    puts: list[Put] = field(default_factory=list)
    media_puts: list[Put] = field(default_factory=list)
    down: bool = False
    media_down: bool = False
    mrds: dict[str, str] = field(default_factory=lambda: {"4": "Cisco_Chat_MRD", "7": "Cisco_Email_MRD"})
    """The deployment's non-voice MRDs (id → name), as Media—Get List gives them."""
    _pending: list[VoiceStateChanged] = field(default_factory=list)
    _after_call: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        api = re.escape(BASE) + "/finesse/api"
        self.rsps.add_callback(responses.GET, re.compile(api + r"/Users$"), self._users)
        self.rsps.add_callback(responses.GET, re.compile(api + r"/User/([^/?]+)/ReasonCodes(\?.*)?$"), self._codes)
        self.rsps.add_callback(responses.PUT, re.compile(api + r"/User/([^/]+)/Media/([^/]+)$"), self._put_media)
        self.rsps.add_callback(responses.GET, re.compile(api + r"/User/([^/?]+)/Media$"), self._media_list)
        self.rsps.add_callback(responses.GET, re.compile(api + r"/User/([^/?]+)$"), self._get_user)
        self.rsps.add_callback(responses.PUT, re.compile(api + r"/User/([^/]+)$"), self._put_user)

    def client(self) -> FinesseClient:
        return FinesseClient(CONFIG)

    def add(self, agent_id: str, login_name: str | None = None, **fields: object) -> WireAgent:
        agent = WireAgent(agent_id, login_name or f"agent{agent_id}", **fields)
        self.agents[agent_id] = agent
        return agent

    def set(self, agent_id: str, state: str, reason_code_id: str | None = None) -> VoiceStateChanged:
        """Something other than the connector changes the agent (a call, the desktop): its report."""
        with self._lock:
            agent = self.agents[agent_id]
            agent.state, agent.reason_code_id = state, reason_code_id
            return VoiceStateChanged(agent_id, state, reason_code_id=reason_code_id)

    def start_call(self, agent_id: str) -> bool:
        """A non-routed call reaches the agent (TALKING; Finesse remembers where to return them)."""
        with self._lock:
            agent = self.agents[agent_id]
            if agent.state in ON_CALL or agent.state == "LOGOUT":
                return False
            self._after_call[agent_id] = (agent.state, agent.reason_code_id)
            agent.state, agent.reason_code_id = "TALKING", None
            self._pending.append(VoiceStateChanged(agent_id, "TALKING"))
            return True

    def end_call(self, agent_id: str) -> None:
        """The call ends: Finesse returns the agent to the state they had before it."""
        with self._lock:
            agent = self.agents[agent_id]
            agent.state, agent.reason_code_id = self._after_call.pop(agent_id)
            self._pending.append(VoiceStateChanged(agent_id, agent.state, reason_code_id=agent.reason_code_id))

    def notifications(self) -> list[VoiceStateChanged]:
        with self._lock:
            pending, self._pending = self._pending, []
            return pending

    # -- REST ---------------------------------------------------------------------------------------

    def _refuse(self, status: int, error_type: str, message: str):
        body = (
            f"<ApiErrors><ApiError><ErrorType>{escape(error_type)}</ErrorType>"
            f"<ErrorMessage>{escape(message)}</ErrorMessage><ErrorData/></ApiError></ApiErrors>"
        )
        return status, XML, body

    def _guard(self, request, *, media: bool = False):
        if not request.headers.get("Authorization", "").startswith("Basic "):
            return self._refuse(401, "Authorization Failure", "no credentials")
        if self.down or (media and self.media_down):
            return self._refuse(503, "Service Unavailable", "OUT_OF_SERVICE")
        return None

    def _user_xml(self, a: WireAgent) -> str:
        roles = "".join(f"<role>{r}</role>" for r in a.roles)
        return (
            f"<User><uri>/finesse/api/User/{a.id}</uri><roles>{roles}</roles><loginId>{a.id}</loginId>"
            f"<loginName>{escape(a.login_name)}</loginName><state>{a.state}</state>"
            f"<reasonCodeId>{a.reason_code_id or ''}</reasonCodeId><pendingState/>"
            f"<extension>{a.extension}</extension><firstName>{escape(a.first_name)}</firstName>"
            f"<lastName>{escape(a.last_name)}</lastName><teamId>{a.team_id}</teamId>"
            f"<teamName>{escape(a.team_name)}</teamName></User>"
        )

    def _users(self, request):
        if refused := self._guard(request):
            return refused
        with self._lock:
            return 200, XML, "<Users>" + "".join(self._user_xml(a) for a in self.agents.values()) + "</Users>"

    def _get_user(self, request):
        if refused := self._guard(request):
            return refused
        agent_id = request.path_url.rsplit("/", 1)[-1]
        with self._lock:
            agent = self.agents.get(agent_id)
            if agent is None:
                return self._refuse(404, "Not Found", f"User {agent_id}")
            return 200, XML, self._user_xml(agent)

    def _codes(self, request):
        if refused := self._guard(request):
            return refused
        codes = "".join(
            f"<ReasonCode><uri>/finesse/api/ReasonCode/{rc}</uri><category>NOT_READY</category><code>{rc}</code>"
            f"<label>{escape(label)}</label><forAll>true</forAll><id>{rc}</id></ReasonCode>"
            for rc, label in self.reason_codes.items()
        )
        return 200, XML, f"<ReasonCodes>{codes}</ReasonCodes>"

    def _body(self, request) -> tuple[str, str | None]:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        state = re.search(r"<state>(.*?)</state>", body).group(1)
        reason = re.search(r"<reasonCodeId>(.*?)</reasonCodeId>", body)
        return state, reason.group(1) if reason else None

    def _put_user(self, request):
        if refused := self._guard(request):
            return refused
        if request.headers.get("Content-Type") != "application/xml":
            return self._refuse(400, "Invalid Input", "Content-Type must be application/xml")
        agent_id = request.path_url.rsplit("/", 1)[-1]
        state, reason = self._body(request)
        request_id = request.headers.get("requestId")
        with self._lock:
            agent = self.agents[agent_id]
            self.puts.append(Put(agent_id, request.path_url, state, reason, request_id))
            if agent.state in ON_CALL or agent.state == "LOGOUT":
                return self._refuse(400, "Invalid State", f"cannot go {state} from {agent.state}")
            if state == "NOT_READY" and reason not in self.reason_codes:
                return self._refuse(400, "Invalid Input", f"reasonCodeId {reason}")
            agent.state, agent.reason_code_id = state, reason
            self._pending.append(VoiceStateChanged(agent_id, state, reason_code_id=reason, request_id=request_id))
        return 202, {}, ""

    def _media_list(self, request):
        if refused := self._guard(request):
            return refused
        media = "".join(
            f"<Media><uri>{escape(request.path_url)}/{mrd}</uri><id>{mrd}</id><name>{escape(name)}</name>"
            f"<interruptible>true</interruptible><state>READY</state><routable>true</routable></Media>"
            for mrd, name in self.mrds.items()
        )
        return 200, XML, f"<MediaList>{media}</MediaList>"

    def _put_media(self, request):
        if refused := self._guard(request, media=True):
            return refused
        agent_id = request.path_url.split("/User/", 1)[1].split("/", 1)[0]
        state, reason = self._body(request)
        with self._lock:
            self.media_puts.append(Put(agent_id, request.path_url, state, reason, request.headers.get("requestId")))
        return 202, {}, ""
