"""The loaded configuration as plain, immutable objects.

Schemas (`schemas.py`) turn YAML or API input into these; everything else reads only these.
`source` records where an item was defined ("entrypoints/x.yaml"), so the UI can show provisioned
items read-only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from connector.flows.definition import Flow
from connector.flows.hours import Calendar


@dataclass(frozen=True)
class Asset:
    """A channel account ("app" in Webex Connect): one number, page, phone number id, business or app.

    `options` holds the channel-specific fields (docs/architecture.md, "Configuration concepts"; the
    schemas are in connector/config/schemas.py), secrets already resolved.
    """

    name: str
    channel: str
    options: Mapping[str, Any] = field(default_factory=dict)
    default_locale: str | None = None
    source: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.options[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class UnavailablePolicy:
    """What happens after the "no agents" message: discard customer input, or close the chat."""

    action: str = "discard"  # discard | close
    after_seconds: int = 300


@dataclass(frozen=True)
class EntryPoint:
    name: str
    id: str
    max_wait_seconds: int = 120
    unavailable: UnavailablePolicy = field(default_factory=UnavailablePolicy)
    messages: Mapping[str, str] = field(default_factory=dict)
    """Overrides for every locale: message type → template text."""
    locale_messages: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Overrides for one locale (locale → type → text); they win over `messages` for that locale."""
    default_locale: str = "en"
    queue_status_after_seconds: int | None = None
    """When a waiting customer is first told their place and the expected wait (None: never)."""
    queue_status_interval_seconds: int | None = None
    """Then how often their place is checked again; they are told only when it has improved."""
    enabled: bool = True
    skills: tuple[str, ...] = ()
    """Hybrid Chat: the skills an agent needs, every one, to be offered this queue's chats."""
    priority: int = 1
    """Hybrid Chat: queues of a lower number are served first; FIFO within one priority."""
    offer_timeout_seconds: int = 30
    """Hybrid Chat: how long an offer rings before it goes to the next agent (RONA)."""
    inactivity_timeout_seconds: int = 900
    """Hybrid Chat: an accepted chat whose customer says nothing this long ends (0: never)."""
    flow: str | None = None
    """The flow a conversation for this entry point runs first, unless its rule names one."""
    hours: Calendar | None = None
    """Business hours and holidays, checked by a flow's `hours` step (connector/flows/hours.py)."""


@dataclass(frozen=True)
class CustomAttribute:
    name: str
    value: str


@dataclass(frozen=True)
class CallbackAuth:
    """How the contact center authenticates its calls to our callback URL."""

    type: str = "none"  # none | basic | bearer
    token: str | None = None
    username: str | None = None
    password: str | None = None


DEFAULT_MAX_IN_FLIGHT = 128
"""Calls to one integration a process holds at once unless configured: with two workers, 256, room
for 200 conversations each in a call to an ECE answering in seconds (docs/architecture.md)."""


@dataclass(frozen=True)
class Integration:
    name: str
    type: str  # ece | hybrid
    base_url: str
    version: str | None = None
    client_key: str | None = None
    client_secret: str | None = None
    callback_auth: CallbackAuth = field(default_factory=CallbackAuth)
    verify_tls: bool = True
    ca_bundle: str | None = None
    entry_points: tuple[EntryPoint, ...] = ()
    custom_attributes: tuple[CustomAttribute, ...] = ()
    api_paths: Mapping[str, str] = field(default_factory=dict)
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """Most calls to this contact center one process holds at once (its conversations wait their
    turn beyond it): protects an ECE that cannot take more. See docs/architecture.md."""
    source: str | None = None

    def entry_point(self, name: str) -> EntryPoint | None:
        return next((ep for ep in self.entry_points if ep.name == name), None)


@dataclass(frozen=True)
class RuleAction:
    forward_to: str
    entry_point: str
    flow: str | None = None
    """The flow the conversation runs before the entry point (wins over the entry point's)."""


@dataclass(frozen=True)
class Rule:
    name: str
    channel: str
    event: str
    asset: str
    action: RuleAction
    keyword: str | None = None
    start: date | None = None
    end: date | None = None
    status: str = "active"  # active | inactive
    source: str | None = None
    language: str | None = None
    """ISO 639-1: the rule matches only a customer whose first message reads in this language
    (connector/flows/language.py `customer_language`)."""


@dataclass(frozen=True)
class DefaultRule:
    """Where a routable message goes when no rule matches (optional)."""

    action: RuleAction
    name: str = "default"
    source: str | None = None


@dataclass(frozen=True)
class FinesseConfig:
    """The media-blending section (docs/architecture.md, "Configuration concepts"); one per deployment."""

    publisher: str
    subscriber: str | None = None
    deployment: str = "ucce"
    admin_user: str = ""
    admin_password: str = ""
    events: str = "xmpp"
    xmpp_port: int | None = None  # None: Finesse's port for the mode, 5223 for direct TLS, else 5222
    xmpp_tls: str = "starttls"  # starttls | direct | plain (written `false` in YAML): docs/protocols/finesse.md
    not_ready_reason: str = "Handling Chat"
    max_chats: int = 5
    liveness_interval_seconds: float = 5.0
    chat_mrd_id: str | None = None
    chat_mrd_name: str | None = None  # ECE's chat MRD by name, resolved to its id at listener start
    media_list_path: str = "/finesse/api/User/{id}/Media"  # Finesse's Media—Get List: docs/protocols/finesse.md
    ece_agent_field: str = "name"  # name | id: which field of ECE's sender.user names the agent
    ece_agents: Mapping[str, str] = field(default_factory=dict)  # that value → Finesse login, where they differ
    verify_tls: bool = True
    ca_bundle: str | None = None
    chat_enabled: str = "all"  # all | none | team:<name>[,<name>] | role:<role>
    sync_interval_seconds: float = 300.0
    source: str | None = None


LOCAL_AGENT_PREFIX = "local:"
"""A local agent's id is this and their login: they have no Finesse id (and no voice to blend)."""


@dataclass(frozen=True)
class HybridAgent:
    """An agent's Hybrid Chat routing settings, by login: a Finesse agent's (synced), or a local agent
    of a deployment without Finesse, who then logs in with a password the connector keeps."""

    login: str
    name: str | None = None
    skills: tuple[str, ...] = ()
    max_chats: int | None = None
    """None: `finesse.max_chats`, else the built-in default."""
    password: str | None = None
    """A local agent's password as provisioned (`${ENV}`); compared in constant time, never shown."""
    password_hash: str | None = None
    """A local agent made in the UI or API: only the hash is kept."""
    source: str | None = None

    @property
    def local(self) -> bool:
        return bool(self.password or self.password_hash)


@dataclass(frozen=True)
class Config:
    """Everything provisioned; lookups by name are the only way in."""

    integrations: tuple[Integration, ...] = ()
    assets: tuple[Asset, ...] = ()
    rules: tuple[Rule, ...] = ()
    default_rule: DefaultRule | None = None
    finesse: FinesseConfig | None = None
    hybrid_agents: tuple[HybridAgent, ...] = ()
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Deployment-wide template overrides made in the UI: locale → type → text (replace the files)."""
    flows: tuple[Flow, ...] = ()
    """Conversation flows: provisioned in YAML, or made in the UI / API."""

    def asset(self, channel: str, name: str) -> Asset | None:
        return next((a for a in self.assets if a.name == name and a.channel == channel), None)

    def integration(self, name: str) -> Integration | None:
        return next((i for i in self.integrations if i.name == name), None)

    def flow(self, name: str) -> Flow | None:
        return next((f for f in self.flows if f.name == name), None)

    def flow_for(self, action: RuleAction) -> Flow | None:
        """The flow a conversation routed by `action` runs: the rule's, else its entry point's."""
        name = action.flow
        if name is None:
            integration = self.integration(action.forward_to)
            entry_point = integration.entry_point(action.entry_point) if integration else None
            name = entry_point.flow if entry_point else None
        return self.flow(name) if name else None

    def hybrid_agent(self, login: str) -> HybridAgent | None:
        """By login, case-insensitively (as Finesse logins are)."""
        wanted = login.casefold()
        return next((a for a in self.hybrid_agents if a.login.casefold() == wanted), None)


class TeamMember(Protocol):
    """What the chat-enabled policy reads of an agent (a Finesse user)."""

    @property
    def team_name(self) -> str | None: ...

    @property
    def roles(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class ChatEnabledPolicy:
    """Which agents may take chats: `all`, `none`, `team:<name>[,<name>…]` or `role:<role>`
    (names compared case-insensitively)."""

    kind: str
    names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> ChatEnabledPolicy:
        value = (text or "").strip()
        kind, _, rest = value.partition(":")
        kind = kind.strip().lower()
        names = frozenset(n.strip().casefold() for n in rest.split(",") if n.strip())
        if kind in ("all", "none") and not rest:
            return cls(kind)
        if kind in ("team", "role") and names:
            return cls(kind, names)
        raise ValueError(
            f'finesse.chat_enabled "{text}" is not one of: all, none, team:<name>[,<name>...], role:<role> '
            '(e.g. "team:Support,Billing" or "role:Agent")'
        )

    def includes(self, user: TeamMember) -> bool:
        match self.kind:
            case "all":
                return True
            case "team":
                return (user.team_name or "").strip().casefold() in self.names
            case "role":
                return any(role.casefold() in self.names for role in user.roles)
        return False
