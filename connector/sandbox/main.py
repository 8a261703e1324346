"""`python -m connector sandbox`: the simulators on fixed loopback ports, seeded with demo data.

`make run` starts it beside the connector; the sandbox configuration (`entrypoints/sandbox/`)
points the connector at these ports. Nothing here is used outside the sandbox.
"""

from __future__ import annotations

import logging
import signal
import threading

from connector.sandbox.finesse import FinesseSandbox, start_finesse_sandbox
from connector.settings import Settings

log = logging.getLogger(__name__)

FINESSE_PUBLISHER_PORT = 8101
FINESSE_SUBSCRIBER_PORT = 8102
FINESSE_CONTROL_PORT = 8103
FINESSE_XMPP_PORT = 15222
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


def run_sandbox(settings: Settings) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    finesse = start_finesse()
    log.info(
        "sandbox simulators running",
        extra={
            "finesse_publisher": finesse.publisher_url,
            "finesse_subscriber": finesse.subscriber_url,
            "finesse_control": finesse.control_url,
            "finesse_xmpp": f"{finesse.xmpp_host}:{finesse.xmpp_port}",
        },
    )
    try:
        stop.wait()
    finally:
        finesse.stop()
    return 0
