"""Agents over the REST API: the registry agent sync fills from Finesse, each agent's voice and chat
states, and on-demand agent sync.

Besides operators' tokens and sessions (viewers read, editors ask for a sync), these three routes take
the deployment-wide `CONNECTOR_API_TOKEN` bearer, for wallboards and scripts that have no operator
account (README, "Media blending"). Nothing here calls Finesse: the listener runs a requested sync
within a second and records its outcome, which `sync` shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from marshmallow import Schema, fields

from connector.api.access import abort, api_blueprint, documented_errors, runtime
from connector.operations import agents
from connector.operations.finesse import NotConfigured

blueprint = api_blueprint(
    "agents",
    "/agents",
    "Agents synced from Cisco Finesse, with their voice and chat states (media blending), and agent sync. "
    "Also open to the deployment-wide CONNECTOR_API_TOKEN bearer.",
    deployment_token=("agents.list_agents", "agents.get_agent", "agents.request_sync"),
)


def errors(*codes: int) -> Callable[[Any], Any]:
    return documented_errors(blueprint, *codes)


# -- answers ----------------------------------------------------------------------------------------


class AgentOut(Schema):
    id = fields.String(required=True, metadata={"description": "the Finesse agent id"})
    login_name = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    team = fields.String(allow_none=True)
    extension = fields.String(allow_none=True)
    logged_in_to_connector = fields.Boolean(
        required=True, metadata={"description": "the agent gave the connector their Finesse login (POST /agent/login)"}
    )
    voice_state = fields.String(required=True, metadata={"description": "Finesse's voice state, UNKNOWN before sync"})
    voice_reason_id = fields.String(allow_none=True, metadata={"description": "the reason code id of a NOT_READY"})
    chat_state = fields.String(
        required=True, metadata={"description": "READY | ACTIVE | BUSY | NOT_READY | INTERRUPTED"}
    )
    active_chats = fields.Integer(required=True)
    chat_enabled = fields.Boolean(required=True)
    chat_enabled_reason = fields.String(
        required=True, metadata={"description": "why, in the words of the finesse.chat_enabled policy"}
    )
    held_not_ready_by_connector = fields.Boolean(
        required=True, metadata={"description": "Finesse shows the NOT_READY the connector set for chatting"}
    )
    pending_change = fields.Boolean(
        required=True, metadata={"description": "a change the connector asked for is unconfirmed or was refused"}
    )
    last_error = fields.String(allow_none=True, metadata={"description": "the last change Finesse refused, and why"})
    updated_at = fields.Float(allow_none=True, metadata={"description": "unix seconds of the last state change"})


class SyncOut(Schema):
    at = fields.Float(allow_none=True, metadata={"description": "unix seconds the last sync started; null: never"})
    ok = fields.Boolean(allow_none=True, metadata={"description": "null: never run"})
    outcome = fields.String(required=True, metadata={"description": "the last sync in words"})
    error = fields.String(allow_none=True)
    agents = fields.Integer(allow_none=True)
    added = fields.Integer(allow_none=True)
    updated = fields.Integer(allow_none=True)
    removed = fields.Integer(allow_none=True)
    chat_enabled = fields.Integer(allow_none=True)
    requested_at = fields.Float(
        allow_none=True, metadata={"description": "a requested sync the listener has not taken yet"}
    )
    running = fields.Boolean(required=True)
    interval_seconds = fields.Float(allow_none=True, metadata={"description": "finesse.sync_interval_seconds"})


class AgentsOut(Schema):
    agents = fields.List(fields.Nested(AgentOut), required=True)
    finesse_configured = fields.Boolean(required=True, metadata={"description": "a finesse: section is in effect"})
    chat_enabled_policy = fields.String(allow_none=True, metadata={"description": "finesse.chat_enabled"})
    sync = fields.Nested(SyncOut, required=True)


class SyncRequestedOut(Schema):
    status = fields.String(required=True, metadata={"description": '"sync requested"'})
    sync = fields.Nested(SyncOut, required=True)


def sync_out(status: agents.SyncStatus) -> dict[str, Any]:
    return {**asdict(status), "outcome": status.outcome}


# -- routes -----------------------------------------------------------------------------------------


@blueprint.route("")
@blueprint.response(200, AgentsOut)
@errors(401)
def list_agents() -> dict[str, Any]:
    """Every agent with their voice and chat states, and the last agent sync."""
    rt = runtime()
    finesse = rt.config.finesse
    return {
        "agents": [asdict(row) for row in agents.listing(rt)],
        "finesse_configured": finesse is not None,
        "chat_enabled_policy": finesse.chat_enabled if finesse is not None else None,
        "sync": sync_out(agents.sync_status(rt.redis, finesse)),
    }


@blueprint.route("/<agent_id>")
@blueprint.response(200, AgentOut)
@errors(401, 404)
def get_agent(agent_id: str) -> dict[str, Any]:
    row = agents.one(runtime(), agent_id)
    if row is None:
        abort(404, message=f"no agent {agent_id!r} in the registry (agent sync fills it from Finesse)")
    return asdict(row)


@blueprint.route("/sync", methods=["POST"])
@blueprint.response(202, SyncRequestedOut)
@errors(401, 403, 404)
def request_sync() -> dict[str, Any]:
    """Ask for an agent sync now (an editor); the listener runs it within a second and records the
    outcome in `sync` of `GET /agents`. 404 while no finesse: section is configured."""
    try:
        status = agents.request_sync(runtime())
    except NotConfigured as exc:
        abort(404, message=str(exc))
    return {"status": "sync requested", "sync": sync_out(status)}
