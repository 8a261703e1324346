"""Hybrid Chat agents over the REST API: `hybrid_agents` items by login (case-insensitive).

An item holds a Finesse agent's Hybrid Chat settings (skills, most chats), or is a local agent of a
deployment without Finesse, who logs in with a password. Bodies are the YAML shape, validated by
`HybridAgentSchema` as the provisioning files are (a 422 names the field). A `password` is hashed
before it is stored and never comes back: answers say `"password": "set"` or `"not set"`, and a PUT
whose password is left out, empty, `"set"` or `"********"` keeps the stored hash, so an answer can be
edited and sent back. Provisioned logins are read-only (409 naming the file). Viewers read, editors
write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from flask import request
from marshmallow import Schema, fields

from connector.api.access import (
    abort,
    api_blueprint,
    documented_errors,
    refuse_with_store_errors,
    runtime,
    store_errors,
)
from connector.config.schemas import HybridAgentSchema
from connector.operations import agents

blueprint = api_blueprint(
    "hybrid_agents",
    "/hybrid-agents",
    "Hybrid Chat agents: a Finesse agent's skills and most chats, and local agents (no Finesse) with a password",
)

OUTPUT_ONLY = ("source", "read_only", "local", "max_chats_in_effect", "configured")
"""Fields of an answer that a PUT body may carry back: they are ignored."""


def errors(*codes: int) -> Callable[[Any], Any]:
    return documented_errors(blueprint, *codes)


# -- schemas ----------------------------------------------------------------------------------------


class HybridAgentOut(Schema):
    """An agent's Hybrid Chat settings as the API shows them: never the password or its hash."""

    login = fields.String(required=True)
    name = fields.String(allow_none=True)
    skills = fields.List(fields.String(), required=True, metadata={"description": "a queue's chats need every one"})
    max_chats = fields.Integer(allow_none=True, metadata={"description": "as configured; null: the default"})
    max_chats_in_effect = fields.Integer(
        required=True, metadata={"description": "max_chats, else finesse.max_chats, else Hybrid Chat's default"}
    )
    local = fields.Boolean(required=True, metadata={"description": "logs in with a password here (no Finesse)"})
    password = fields.String(required=True, metadata={"description": '"set" or "not set"; never the password'})
    source = fields.String(allow_none=True, metadata={"description": "provisioning file, or null if made in UI/API"})
    read_only = fields.Boolean(required=True, metadata={"description": "defined by a provisioning file"})
    configured = fields.Boolean(
        required=True, metadata={"description": "false: a login with no item, on the defaults (a Finesse agent)"}
    )


class HybridAgentBody(HybridAgentSchema):
    """A PUT body: the `hybrid_agents:` item (its login defaults to the path's). `password`: a new
    password, hashed before it is stored; left out, empty, "set" or "********", the stored hash is kept.
    `password_hash`: a hash as an export writes it (instead of a password)."""

    login = fields.String(metadata={"description": "defaults to the path's; it cannot change"})


BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": HybridAgentBody}}}}


def shown(row: agents.HybridAgentRow) -> dict[str, Any]:
    return {**asdict(row), "read_only": row.read_only}


def _found(login: str) -> agents.HybridAgentRow:
    row = agents.hybrid_settings(runtime().config, login)
    if not row.configured:
        abort(404, message=f"no hybrid agent {login!r}: PUT one to set its skills or make a local agent")
    return row


# -- routes -----------------------------------------------------------------------------------------


@blueprint.route("")
@blueprint.response(200, HybridAgentOut(many=True))
@errors(401)
def list_hybrid_agents() -> list[dict[str, Any]]:
    """Every `hybrid_agents` item in effect: provisioned ones (read-only, with their file), then those made here."""
    return [shown(row) for row in agents.hybrid_agents(runtime().config)]


@blueprint.route("/<login>")
@blueprint.response(200, HybridAgentOut)
@errors(401, 404)
def get_hybrid_agent(login: str) -> dict[str, Any]:
    """One agent by login, in any case."""
    return shown(_found(login))


@blueprint.route("/<login>", methods=["PUT"])
@blueprint.doc(**BODY_DOC)
@blueprint.response(200, HybridAgentOut)
@errors(401, 403, 404, 409, 422)
def put_hybrid_agent(login: str) -> dict[str, Any]:
    """Create or replace an agent's settings (an editor). With a `password` it is a local agent; without
    one and without a finesse: section in effect, 422 (a local agent needs a password). 409 for a login
    a provisioning file defines."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(422, message="the body is not valid", errors={"json": {"_schema": ["send a JSON object"]}})
    item = {k: v for k, v in body.items() if k not in OUTPUT_ONLY}
    given = item.setdefault("login", login)
    if not isinstance(given, str) or given.strip().casefold() != login.strip().casefold():
        rt = runtime()
        refuse_with_store_errors(
            {"login": [f"the login cannot change (it is {login})"]},
            lambda: rt.overrides.prepared_agent({**item, "login": login}, rt.provisioned),
        )
    with store_errors():
        return shown(agents.save_hybrid_agent(runtime(), item))


@blueprint.route("/<login>", methods=["DELETE"])
@blueprint.response(204)
@errors(401, 403, 404, 409)
def delete_hybrid_agent(login: str) -> None:
    """Remove an agent made here (an editor): a Finesse agent's settings go back to the defaults, a local
    agent can no longer log in. 409 for a provisioned login."""
    with store_errors():
        agents.delete_hybrid_agent(runtime(), login)
