"""The whole loop on loopback, as fixtures (`stack`, `stack_factory`): the ECE simulator, the provider
simulators and the customer emulator (connector/sandbox), the connector's web app on a real HTTP
server, real worker processes, a real Redis. Nothing of the connector is mocked; only the outside systems are
simulated, by the simulators `make run` uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector import create_app
from connector.config.loader import load_config
from connector.runtime import Runtime
from connector.sandbox.ece import EceSimulator
from connector.sandbox.ece.model import Conversation
from connector.sandbox.http import LoopbackServer
from connector.sandbox.providers.hold import send_holds
from connector.sandbox.server import ChannelSandbox, channel_sandbox, ece_app
from connector.settings import Settings
from tests.helpers import wait_for

INTEGRATION = "E2E"
CALLBACK_TOKEN = "e2e-callback-token"
CLIENT = ("e2e-client-key", "e2e-client-secret")
ASSETS = {
    "sms": "e2e-sms",
    "messenger": "e2e-messenger",
    "whatsapp": "e2e-whatsapp",
    "apple": "e2e-apple",
    "inapp": "e2e-app",
}
CUSTOMERS = {
    "sms": "+15557770001",
    "messenger": "7100000000000001",
    "whatsapp": "15557770003",
    "apple": "urn:mbid:AQAAY2UtZTJlLWN1c3RvbWVyLTAwMDE",
    "inapp": "app-user-0001",
}
WORKER_ENV = {
    "CONNECTOR_SANDBOX": "1",
    "CONNECTOR_RETRY_BASE_SECONDS": "0.3",
    "CONNECTOR_RETRY_MAX_SECONDS": "2",
    "CONNECTOR_SWEEP_INTERVAL_SECONDS": "1",
    "CONNECTOR_LEASE_SECONDS": "10",
}

HYBRID = "HybridE2E"
"""The Hybrid Chat integration a stack built with `hybrid=HybridOptions(...)` has beside ECE."""
HYBRID_AGENTS: tuple[Mapping[str, Any], ...] = (
    {"login": "zoe", "name": "Zoe", "password": "zoe-password-1", "skills": ["english"], "max_chats": 2},
    {"login": "yan", "name": "Yan", "password": "yan-password-2", "skills": ["billing"], "max_chats": 2},
    {"login": "uma", "name": "Uma", "password": "uma-password-3", "skills": ["english"], "max_chats": 1},
    {"login": "vic", "name": "Vic", "password": "vic-password-4", "skills": ["english"], "max_chats": 1},
)
"""Local agents (no Finesse): Zoe takes Support, Yan Billing; Uma and Vic take one Support chat each."""


@dataclass(frozen=True)
class HybridOptions:
    """A Hybrid Chat integration (`HYBRID`) with two queues, Support (skill english) and Billing (skill
    billing), and `hybrid_agents`; each channel's support rule then forwards to its Support queue
    (SMS keyword SALES still goes to ECE's Sales). `support` / `billing` override the queues' settings,
    whose defaults are short for tests: 5 s offers (the least allowed), a 60 s wait."""

    support: Mapping[str, Any] = field(default_factory=dict)
    billing: Mapping[str, Any] = field(default_factory=dict)
    agents: tuple[Mapping[str, Any], ...] = HYBRID_AGENTS

    def integration(self) -> dict[str, Any]:
        return {
            "name": HYBRID,
            "type": "hybrid",
            "entry_points": [
                {
                    "name": "Support",
                    "skills": ["english"],
                    "offer_timeout_seconds": 5,
                    "max_wait_seconds": 60,
                    "unavailable": {"action": "close", "after_seconds": 4},
                    **self.support,
                },
                {
                    "name": "Billing",
                    "skills": ["billing"],
                    "priority": 2,
                    "offer_timeout_seconds": 5,
                    "max_wait_seconds": 60,
                    **self.billing,
                },
            ],
        }


def write_config(
    folder: Path,
    ece_url: str,
    sandbox_url: str,
    *,
    hybrid: HybridOptions | None = None,
    finesse: Mapping[str, Any] | None = None,
    integration: Mapping[str, Any] | None = None,
    flows: Sequence[Mapping[str, Any]] = (),
    sales_flow: str | None = None,
    channel_flows: Mapping[str, str] | None = None,
    **entry_point_overrides: Any,
) -> Path:
    """The configuration the end-to-end tests run: one ECE integration on the simulator, one asset of
    each channel on the provider simulators, one rule per channel (SMS keyword SALES → Sales).
    `hybrid`: a Hybrid Chat integration besides, which the channels' support rules forward to;
    `finesse`: the `finesse:` section (media blending against a Finesse simulator); `integration`:
    settings of the ECE integration (e.g. `max_in_flight`); `flows`: the `flows:` section (`SANDBOX` in
    a string stands for the sandbox server's URL), which the SMS SALES rule (`sales_flow`) and the
    support rules of `channel_flows` (channel → flow) name."""
    support = {
        "name": "Support",
        "id": "1001",
        "unavailable": {"action": "discard", "after_seconds": 4},
        **entry_point_overrides.get("support", {}),
    }
    sales = {
        "name": "Sales",
        "id": "1002",
        "unavailable": {"action": "close", "after_seconds": 4},
        **entry_point_overrides.get("sales", {}),
    }
    config = {
        "integrations": [
            {
                "name": INTEGRATION,
                "type": "ece",
                "base_url": f"{ece_url}/ece",
                "client_key": CLIENT[0],
                "client_secret": CLIENT[1],
                "callback_auth": {"type": "bearer", "token": CALLBACK_TOKEN},
                "entry_points": [support, sales],
                "custom_attributes": [
                    {"name": "$(wa.profile)", "value": "$(whatsapp.profile_name)"},
                    {"name": "$(app.user)", "value": "$(inapp.name) <$(inapp.email)>"},
                    {"name": "$(fb.username)", "value": "$(messenger.username)"},
                ],
                **(integration or {}),
            }
        ],
        "assets": [
            {
                "name": ASSETS["sms"],
                "channel": "sms",
                "provider": "twilio",
                "number": "+15550002222",
                "account_sid": "ACe2e00000000000000000000000000000",
                "auth_token": "e2e-twilio-token",
                "api_base_url": f"{sandbox_url}/twilio",
            },
            {
                "name": ASSETS["messenger"],
                "channel": "messenger",
                "page_id": "200000000000001",
                "app_secret": "e2e-meta-secret",
                "page_access_token": "e2e-page-token",
                "verify_token": "e2e-verify",
                "api_base_url": f"{sandbox_url}/graph",
                "human_agent_tag": False,
            },
            {
                "name": ASSETS["whatsapp"],
                "channel": "whatsapp",
                "phone_number_id": "200000000000002",
                "app_secret": "e2e-meta-secret",
                "access_token": "e2e-wa-token",
                "verify_token": "e2e-verify",
                "api_base_url": f"{sandbox_url}/graph",
            },
            {
                "name": ASSETS["apple"],
                "channel": "apple",
                "business_id": "00000000-0000-4000-8000-0000000000e2",
                "msp_id": "e2e-msp",
                "secret": "ZTJlLWFwcGxlLXNlY3JldC1mb3ItdGVzdHMtb25seS0zMmI=",
                "api_base_url": f"{sandbox_url}/apple",
            },
            {
                "name": ASSETS["inapp"],
                "channel": "inapp",
                "app_id": "e2e-app",
                "secret": "e2e-inapp-secret-0123456789",
                "delivery_url": f"{sandbox_url}/inapp/deliver",
            },
        ],
        "rules": [
            {
                "name": "sms-sales",
                "channel": "sms",
                "event": "mo",
                "asset": ASSETS["sms"],
                "keyword": "SALES",
                "action": {
                    "forward_to": INTEGRATION,
                    "entry_point": "Sales",
                    **({"flow": sales_flow} if sales_flow else {}),
                },
            },
            *(
                {
                    "name": f"{channel}-support",
                    "channel": channel,
                    "event": "mo" if channel == "sms" else "incoming_message",
                    "asset": asset,
                    "action": {
                        "forward_to": HYBRID if hybrid else INTEGRATION,
                        "entry_point": "Support",
                        **({"flow": channel_flows[channel]} if channel in (channel_flows or {}) else {}),
                    },
                }
                for channel, asset in ASSETS.items()
            ),
        ],
    }
    if hybrid is not None:
        config["integrations"].append(hybrid.integration())
        config["hybrid_agents"] = [dict(agent) for agent in hybrid.agents]
    if finesse is not None:
        config["finesse"] = dict(finesse)
    if flows:
        config["flows"] = [_on_sandbox(dict(flow), sandbox_url) for flow in flows]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "e2e.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


SANDBOX = "{sandbox}"
"""In a flow given to `write_config`, stands for the sandbox server's URL (its `/identity/verify` and
`/bot/turn`), known only once the stack has bound its ports."""


def _on_sandbox(value: Any, sandbox_url: str) -> Any:
    if isinstance(value, str):
        return value.replace(SANDBOX, sandbox_url)
    if isinstance(value, Mapping):
        return {k: _on_sandbox(v, sandbox_url) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_on_sandbox(v, sandbox_url) for v in value]
    return value


@dataclass
class Stack:
    ece: EceSimulator
    ece_server: LoopbackServer
    sandbox: ChannelSandbox
    connector_url: str
    runtime: Runtime
    workers: list[Any] = field(default_factory=list)
    """The worker processes started for this stack (tests/e2e/conftest.py, WorkerProcess), oldest first."""
    add_worker: Callable[[], Any] = field(default=lambda: None)
    """Start one more worker with the stack's environment (after a test killed one)."""

    @property
    def providers(self):
        return self.sandbox.providers

    @property
    def customer(self):
        return self.sandbox.customer

    def conversations(self, entry_point: str | None = None) -> list[Conversation]:
        with self.ece.model.lock:
            found = list(self.ece.model.conversations.values())
        return [c for c in found if entry_point is None or c.entry_point_id == entry_point]

    def wait_conversation(self, count: int = 1, timeout: float = 15.0) -> Conversation:
        wait_for(lambda: len(self.conversations()) >= count, timeout=timeout, what=f"{count} ECE conversation(s)")
        return sorted(self.conversations(), key=lambda c: c.started_at)[count - 1]

    def wait_received(self, conversation: Conversation, count: int, timeout: float = 15.0) -> list[Any]:
        wait_for(lambda: len(conversation.received) >= count, timeout=timeout, what=f"{count} item(s) on ECE")
        return list(conversation.received)

    def sent(self, channel: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [s for s in self.providers.store.sent(channel) if kind is None or s["kind"] == kind]

    def wait_sent(
        self, channel: str, predicate: Callable[[list[dict[str, Any]]], bool], what: str, timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        wait_for(lambda: predicate(self.sent(channel)), timeout=timeout, what=what)
        return self.sent(channel)

    def wait_text(self, channel: str, needle: str, timeout: float = 15.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((s for s in self.sent(channel) if needle in (s.get("text") or "")), None)

        wait_for(lambda: found() is not None, timeout=timeout, what=f"{channel} send containing {needle!r}")
        return found()  # type: ignore[return-value]


@pytest.fixture
def stack_factory(tmp_path, redis, redis_url, start_worker) -> Iterator[Callable[..., Stack]]:
    started: list[tuple[LoopbackServer, ...]] = []
    simulators: list[EceSimulator] = []
    sandboxes: list[ChannelSandbox] = []

    def build(
        workers: int = 1,
        worker_env: dict[str, str] | None = None,
        hybrid: HybridOptions | None = None,
        finesse: Mapping[str, Any] | None = None,
        integration: Mapping[str, Any] | None = None,
        ece_threads: int | None = None,
        sandbox_threads: int | None = None,
        flows: Sequence[Mapping[str, Any]] = (),
        sales_flow: str | None = None,
        channel_flows: Mapping[str, str] | None = None,
        **entry_point_overrides: Any,
    ) -> Stack:
        ece = EceSimulator(
            client_key=CLIENT[0],
            client_secret=CLIENT[1],
            entry_points=("1001", "1002"),
            callback_auth={"type": "bearer", "token": CALLBACK_TOKEN},
        )
        simulators.append(ece)
        ece_server = LoopbackServer(ece_app(ece), **({"threads": ece_threads} if ece_threads else {})).start()
        # Bound first, apps set once every address is known: each side's URL is in the other's config.
        # A slow provider (`providers.set_delay`) holds one sandbox thread per send in flight.
        sandbox_server = LoopbackServer(**({"threads": sandbox_threads} if sandbox_threads else {})).start()
        connector_server = LoopbackServer().start()
        started.append((connector_server, sandbox_server, ece_server))
        connector_url = connector_server.url
        config_dir = write_config(
            tmp_path / "config",
            ece_server.url,
            sandbox_server.url,
            hybrid=hybrid,
            finesse=finesse,
            integration=integration,
            flows=flows,
            sales_flow=sales_flow,
            channel_flows=channel_flows,
            **entry_point_overrides,
        )
        config = load_config(config_dir)
        sandbox = channel_sandbox(config, sandbox_server.url, connector_url, connector_url)
        sandbox_server.app = sandbox.app
        settings = Settings.from_env(
            redis_url=redis_url,
            config_dir=config_dir,
            public_base_url=connector_url,
            secret_key="e2e-secret-key",
            data_dir=tmp_path,
            sandbox=True,
        )
        runtime = Runtime(settings)
        connector_server.app = create_app(runtime=runtime)
        ece.model.configure_callback(
            f"{connector_url}/ece/{INTEGRATION}/callback", {"type": "bearer", "token": CALLBACK_TOKEN}
        )
        ece.start()
        env = {
            **WORKER_ENV,
            "CONNECTOR_CONFIG_DIR": str(config_dir),
            "PUBLIC_BASE_URL": connector_url,
            **(worker_env or {}),
        }
        stack = Stack(ece, ece_server, sandbox, connector_url, runtime)

        def add_worker() -> Any:
            stack.workers.append(start_worker(**env))
            return stack.workers[-1]

        stack.add_worker = add_worker
        for _ in range(workers):
            stack.add_worker()
        sandboxes.append(sandbox)
        return stack

    yield build
    for sandbox in sandboxes:
        send_holds(sandbox.providers.state).release_all()
    for ece in simulators:
        ece.stop()
    for servers in started:
        for server in servers:
            server.stop()


@pytest.fixture
def stack(stack_factory) -> Stack:
    return stack_factory()


def settle(seconds: float = 0.5) -> None:
    """Give the workers a moment when a test asserts that something did NOT happen."""
    time.sleep(seconds)
