"""The sandbox's Finesse agents have their desktops open: each is logged in to the connector the way the
Hybrid Chat gadget in their Finesse desktop logs its agent in (`POST /agent/gadget/login` with the
agent's Finesse id and the Basic authorization the desktop holds), so media blending may act for them.

Why: a supervisor may set an agent only READY or LOGOUT, and no administrator path to NOT_READY is
documented (docs/protocols/finesse.md, "Which credentials"); the Finesse simulator refuses it (401).
The listener asks with the agent's own credentials, which the connector holds only once the agent has
logged in to it (the login verifies them against Finesse and keeps them encrypted). Without these
logins the walk-through's first chat would ask Finesse for NOT_READY with the admin account and log
"blending change not taken: 401". The gadget's login names the agent by Finesse id, so it works before
the listener's first agent sync has taught the connector which id a login name has.

Logging in opens no chat for Hybrid Chat: an agent is offered chats only once they say READY at the
desk (`/agent/`), where they may log in again themselves.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterable

import requests

log = logging.getLogger(__name__)

LOGIN_DEADLINE_SECONDS = 120.0
"""How long to wait for the connector (started beside the simulators) to take the logins."""
RETRY_SECONDS = 1.0


def log_in_agents(
    connector_url: str,
    agents: Iterable[tuple[str, str, str]],
    stop: threading.Event,
    *,
    deadline_seconds: float = LOGIN_DEADLINE_SECONDS,
) -> list[str]:
    """The gadget's login for each (Finesse id, login name, password) until it answers 200: meanwhile
    the connector may still be starting (connection refused, 502/503 while Finesse is not in service).
    Returns the logins that got in; a refused one (401), or the deadline, is a warning that says what
    it means for the demo."""
    pending = {login: (agent_id, password) for agent_id, login, password in agents}
    done: list[str] = []
    deadline = time.monotonic() + deadline_seconds
    while pending and not stop.is_set():
        for login, (agent_id, password) in list(pending.items()):
            answer = _try(connector_url, agent_id, login, password)
            if answer is None or answer.status_code in (429, 502, 503):
                continue  # not up yet, or Finesse not in service yet: again in a second
            del pending[login]
            if answer.status_code == 200:
                done.append(login)
                log.info(
                    "sandbox agent logged in to the connector, as their Finesse desktop would", extra={"login": login}
                )
            else:
                log.warning(
                    "sandbox agent not logged in (%s %s): media blending cannot change their Finesse state "
                    "until they log in at /agent/",
                    answer.status_code,
                    answer.text[:200],
                    extra={"login": login},
                )
        if pending and (time.monotonic() > deadline or stop.wait(RETRY_SECONDS)):
            break
    if pending and not stop.is_set():
        log.warning(
            "the connector did not take the sandbox agents' logins in time: media blending cannot change their "
            "Finesse states (Finesse refuses its admin, 401) until they log in at /agent/",
            extra={"logins": sorted(pending), "connector": connector_url},
        )
    return done


def _try(connector_url: str, agent_id: str, login: str, password: str) -> requests.Response | None:
    """One gadget login: what Finesse's gadget API hands the gadget is `Basic base64(login:password)`."""
    authorization = "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()
    try:
        return requests.post(
            f"{connector_url.rstrip('/')}/agent/gadget/login",
            json={"agent_id": agent_id, "authorization": authorization},
            timeout=10,
        )
    except requests.RequestException:
        return None
