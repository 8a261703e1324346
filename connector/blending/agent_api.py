"""The agent's side of media blending over HTTP.

`POST /agent/login` takes the agent's Finesse login, verifies it against Finesse (a GET of the
agent's own User with those credentials) and keeps the password encrypted, so the listener can open
the agent's notification session and change their state; `POST /agent/logout` forgets it.
Operators see the agents and ask for a sync through the REST API (`connector/api/agents.py`) and
the Agents page.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import replace

from flask import Blueprint, Response, current_app, jsonify, request

from connector.blending.agents import AgentRegistry
from connector.blending.finesse.client import (
    AuthorizationError,
    FinesseClient,
    FinesseError,
    FinesseUnavailable,
    NotFound,
)
from connector.blending.finesse.credentials import CredentialStore
from connector.config.model import FinesseConfig
from connector.runtime import Runtime
from connector.store import keys, replies

log = logging.getLogger(__name__)

blueprint = Blueprint("agent_api", __name__)

MAX_FAILURES = 5
LOCKOUT_SECONDS = 300


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["connector"]
    return runtime


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify(error=code, message=message), status


def _finesse() -> FinesseConfig | None:
    return _runtime().config.finesse


def verify_agent_login(config: FinesseConfig, agent_id: str, login: str, password: str) -> None:
    """Raise AuthorizationError / NotFound / FinesseUnavailable unless Finesse accepts the login.

    Tries the publisher, then the subscriber: a login must work while one node is down.
    """
    nodes = [n for n in (config.publisher, config.subscriber) if n]
    last: FinesseError | None = None
    for node in nodes:
        client = FinesseClient(replace(config, publisher=node), credentials=lambda _agent: (login, password))
        try:
            client.get_user(agent_id)
            return
        except FinesseUnavailable as exc:
            last = exc
    raise last or FinesseUnavailable("no Finesse node configured", error_type="Unavailable")


@blueprint.post("/agent/login")
def agent_login() -> Response | tuple[Response, int]:
    config = _finesse()
    if config is None:
        return _error(404, "routing_not_configured", "media blending (finesse:) is not configured")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error(400, "invalid_payload", 'send JSON {"username": ..., "password": ...}')
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not username.strip() or not isinstance(password, str) or not password:
        return _error(400, "invalid_payload", "username and password are required")
    runtime = _runtime()
    username = username.strip()
    failures_key = keys.agent_login_failures(username)
    if int(replies.bytes_or_none(runtime.redis.get(failures_key)) or 0) >= MAX_FAILURES:
        return _error(429, "locked_out", f"too many failed logins; try again in {LOCKOUT_SECONDS // 60} minutes")
    registry = AgentRegistry(runtime.redis)
    agent_id = registry.agent_id_for_login(username) or username
    try:
        verify_agent_login(config, agent_id, username, password)
    except (AuthorizationError, NotFound):
        pipe = runtime.redis.pipeline()
        pipe.incr(failures_key)
        pipe.expire(failures_key, LOCKOUT_SECONDS)
        replies.execute(pipe)
        log.warning("agent login refused by Finesse", extra={"agent": agent_id})
        return _error(401, "invalid_credentials", "Finesse refused this username and password")
    except FinesseUnavailable:
        return _error(503, "finesse_unavailable", "no Finesse node is in service; try again shortly")
    runtime.redis.delete(failures_key)
    CredentialStore(runtime.redis, runtime.settings.secret_key).save(agent_id, username, password)
    log.info("agent logged in to the connector", extra={"agent": agent_id})
    return jsonify(agent_id=agent_id, status="logged_in")


@blueprint.post("/agent/logout")
def agent_logout() -> Response | tuple[Response, int]:
    body = request.get_json(silent=True) or {}
    username, password = body.get("username"), body.get("password")
    config = _finesse()
    if config is None or not isinstance(username, str) or not isinstance(password, str):
        return _error(400, "invalid_payload", "username and password are required")
    runtime = _runtime()
    agent_id = AgentRegistry(runtime.redis).agent_id_for_login(username) or username
    stored = CredentialStore(runtime.redis, runtime.settings.secret_key).get(agent_id)
    if stored is None or not hmac.compare_digest(stored[1].encode(), password.encode()):
        return _error(401, "invalid_credentials", "not logged in with these credentials")
    CredentialStore(runtime.redis, runtime.settings.secret_key).remove(agent_id)
    return jsonify(agent_id=agent_id, status="logged_out")
