"""Shared set-up for the tests that run against the Finesse simulator: a provisioned sandbox and the
connector configuration pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from connector.config.model import FinesseConfig
from connector.sandbox.finesse import FinesseSandbox, start_finesse_sandbox

ADMIN = ("admin", "admin-password")
AGENT, AGENT_PASSWORD = "1001", "agent-1001-pw"
OTHER, OTHER_PASSWORD = "1002", "agent-1002-pw"
SUPERVISOR, SUPERVISOR_PASSWORD = "2001", "super-2001-pw"
CHAT_REASON = "12"  # NOT_READY "Handling Chat"
BREAK_REASON = "13"  # NOT_READY "Break"
LOGOUT_REASON = "22"
CHAT_MRD = "5000"


def provision(sandbox: FinesseSandbox, *, state: str = "READY") -> None:
    """Two agents of team 1 (plus one of team 2), a supervisor of team 1, and the reason codes."""
    model = sandbox.model
    model.add_reason_code(CHAT_REASON, "NOT_READY", "10", "Handling Chat")
    model.add_reason_code(BREAK_REASON, "NOT_READY", "11", "Break")
    model.add_reason_code(LOGOUT_REASON, "LOGOUT", "5", "End of shift")
    model.add_agent(AGENT, AGENT_PASSWORD, extension=AGENT, state=state, media=(CHAT_MRD,), first_name="Ada")
    model.add_agent(OTHER, OTHER_PASSWORD, extension=OTHER, state=state, team_id="2", team_name="Sales")
    model.add_agent(SUPERVISOR, SUPERVISOR_PASSWORD, extension=SUPERVISOR, roles=("Agent", "Supervisor"))
    if state == "NOT_READY":
        model.agents[AGENT].reason_code_id = model.agents[OTHER].reason_code_id = BREAK_REASON


def finesse_config(sandbox: FinesseSandbox, **overrides: object) -> FinesseConfig:
    values: dict[str, object] = {
        "publisher": sandbox.publisher_url,
        "subscriber": sandbox.subscriber_url,
        "admin_user": ADMIN[0],
        "admin_password": ADMIN[1],
        "xmpp_port": sandbox.xmpp_port,
        "liveness_interval_seconds": 0.05,
    }
    if sandbox.xmpp_ca_file is not None:  # STARTTLS (the default) verified against the simulator's certificate
        values["ca_bundle"] = str(sandbox.xmpp_ca_file)
    values.update(overrides)
    return FinesseConfig(**values)  # type: ignore[arg-type]


@contextmanager
def running_sandbox(**options: object) -> Iterator[FinesseSandbox]:
    sandbox = start_finesse_sandbox(**options)  # type: ignore[arg-type]
    try:
        yield sandbox
    finally:
        sandbox.stop()
