"""`python -m connector sandbox`: the simulators on fixed loopback ports, seeded with demo data.

`make run` starts it beside the connector; the sandbox configuration (`entrypoints/sandbox/`)
points the connector at these ports. Nothing here is used outside the sandbox.
"""

from __future__ import annotations

import logging
import signal
import threading

from connector.config.loader import load_config
from connector.sandbox.desktops import log_in_agents
from connector.sandbox.finesse import FinesseSandbox, start_finesse_sandbox
from connector.sandbox.http import LoopbackServer
from connector.sandbox.server import channel_sandbox, ece_simulator_for
from connector.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

CHANNEL_SANDBOX_PORT = 8100
"""ECE simulator (/ece), provider simulators (/twilio, /graph, /apple, /inapp), customer page (/customer),
the flows' identity service (/identity/verify) and FAQ bot (/bot/turn)."""
CHANNEL_SANDBOX_THREADS = 512
"""Requests the port-8100 server answers at once. The ECE and provider simulators are served there,
and with a delay switched on (`POST /ece/control/failures {"delay_seconds": s}`, `POST
/providers/control/delay {"delay_seconds": s}`) each call or send holds a thread for that long. A
real ECE or provider holds hundreds of calls at once: 300 sends/s answered in 1 s are 300 in flight
(bench/slow_provider.py), and the connector's drain may hold 2 dispatchers x 256 loops
(`CONNECTOR_DRAIN_THREADS_MAX`) with one call each, plus loops a job hands over still busy. With
fewer threads the simulator, not the connector, would set the calls in flight. Idle kept-alive
connections hold no thread, so the other simulators on this port answer as before."""
FINESSE_PUBLISHER_PORT = 8101
FINESSE_SUBSCRIBER_PORT = 8102
FINESSE_CONTROL_PORT = 8103
FINESSE_XMPP_PORT = 15222
FINESSE_XMPP_CA = PROJECT_ROOT / "var" / "sandbox" / "finesse-xmpp-ca.pem"
"""The XMPP service's self-signed certificate, made at every start (STARTTLS, as Finesse's 5222):
`entrypoints/sandbox/sandbox.yaml` names it as `finesse.ca_bundle` (relative to the project folder,
where `make run` starts every process), so the connector verifies it. Only the certificate is written,
never the key."""
FINESSE_ADMIN = ("sandbox-admin", "sandbox-admin-password")

DEMO_REASON_CODES = (
    ("21", "NOT_READY", "21", "Handling Chat"),
    ("22", "NOT_READY", "22", "Break"),
    ("23", "NOT_READY", "23", "Meeting"),
    ("31", "LOGOUT", "31", "End of shift"),
)
DEMO_AGENTS = (
    # id, login name, first, last, extension, team
    ("1001", "alice", "Alice", "Agent", "3001", "Support"),
    ("1002", "bob", "Bob", "Agent", "3002", "Support"),
    ("1003", "carol", "Carol", "Agent", "3003", "Sales"),
)


def demo_password(login_name: str) -> str:
    """The published demo password of a sandbox agent (shown by `make run`)."""
    return f"{login_name}-demo"


def start_finesse() -> FinesseSandbox:
    sandbox = start_finesse_sandbox(
        publisher_port=FINESSE_PUBLISHER_PORT,
        subscriber_port=FINESSE_SUBSCRIBER_PORT,
        control_port=FINESSE_CONTROL_PORT,
        xmpp_port=FINESSE_XMPP_PORT,
        xmpp_tls="starttls",
        xmpp_cert_path=FINESSE_XMPP_CA,
        admin_user=FINESSE_ADMIN[0],
        admin_password=FINESSE_ADMIN[1],
    )
    for rc_id, category, code, label in DEMO_REASON_CODES:
        sandbox.model.add_reason_code(rc_id, category, code, label)
    for agent_id, login, first, last, extension, team in DEMO_AGENTS:
        sandbox.model.add_agent(
            agent_id,
            demo_password(login),
            extension=extension,
            state="READY",
            login_name=login,
            first_name=first,
            last_name=last,
            team_id=team.lower(),
            team_name=team,
        )
    return sandbox


def start_channel_sandbox(settings: Settings) -> tuple[LoopbackServer, object]:
    """The ECE, provider and customer simulators on port 8100, wired to the connector at
    PUBLIC_BASE_URL with the sandbox configuration's client app and callback credentials."""
    config = load_config(settings.config_dir)
    connector_url = settings.public_base_url
    integration = next((i for i in config.integrations if i.type == "ece"), None)
    ece = None
    if integration is not None:
        ece = ece_simulator_for(integration, f"{connector_url}/ece/{integration.name}/callback")
        ece.start()
    sandbox = channel_sandbox(config, f"http://127.0.0.1:{CHANNEL_SANDBOX_PORT}", connector_url, connector_url, ece=ece)
    server = LoopbackServer(sandbox.app, CHANNEL_SANDBOX_PORT, threads=CHANNEL_SANDBOX_THREADS).start()
    return server, sandbox


def banner_lines(connector_url: str) -> list[str]:
    """What `make run` shows a newcomer about the simulators (printed once they listen)."""
    logins = ", ".join(f"{login} / {demo_password(login)}" for _id, login, *_ in DEMO_AGENTS)
    sandbox = f"http://127.0.0.1:{CHANNEL_SANDBOX_PORT}"
    return [
        "",
        "Sandbox simulators are running",
        f"  customer   {sandbox}/customer/  (write as a WhatsApp, SMS, Messenger, Apple or in-app customer)",
        f"  agent      {sandbox}/ece/console  (the ECE simulator's agent console: accept, reply, close)",
        f"  flows      {sandbox}/identity/verify (identity service), {sandbox}/bot/turn (FAQ bot); "
        "faults via POST .../control",
        f"  finesse    http://127.0.0.1:{FINESSE_PUBLISHER_PORT}/finesse/api "
        f"(simulator; control API on :{FINESSE_CONTROL_PORT}/control)",
        f"  desk       {connector_url}/agent/  (the Hybrid Chat agent desktop; in-app chats go there)",
        f"  agents     {', '.join(login for _id, login, *_ in DEMO_AGENTS)} log in to the connector now, as their "
        "Finesse desktops would, so media blending acts for them",
        f"             log in to the desk, or POST {connector_url}/agent/login, as one of: {logins}",
        "",
    ]


def run_sandbox(settings: Settings) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    finesse = start_finesse()
    server, sandbox = start_channel_sandbox(settings)
    log.info(
        "sandbox simulators running",
        extra={
            "customer_page": f"{server.url}/customer/",
            "ece_console": f"{server.url}/ece/console",
            "finesse_publisher": finesse.publisher_url,
            "finesse_subscriber": finesse.subscriber_url,
            "finesse_control": finesse.control_url,
            "finesse_xmpp": f"{finesse.xmpp_host}:{finesse.xmpp_port} (STARTTLS)",
            "finesse_xmpp_ca": str(finesse.xmpp_ca_file),
        },
    )
    print("\n".join(banner_lines(settings.public_base_url)), flush=True)
    agents = [(agent_id, login, demo_password(login)) for agent_id, login, *_ in DEMO_AGENTS]
    threading.Thread(
        target=log_in_agents, args=(settings.public_base_url, agents, stop), name="sandbox-desktops", daemon=True
    ).start()
    try:
        stop.wait()
    finally:
        server.stop()
        if sandbox.ece is not None:
            sandbox.ece.stop()
        finesse.stop()
    return 0
