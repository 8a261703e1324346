"""Conversation flows over the API: list, create / read / replace / delete flows made in the UI or API.

Request bodies are the YAML shape (`flows:` in entrypoints/*.yaml), validated by `FlowSchema` through
the config store, so a 422 names every field exactly as check-config would (`steps.1.pattern`), the
references (templates that no locale has) beside the schema's. Provisioned flows are read-only (409
naming their file); deleting a flow a rule or an entry point names is refused (409 naming them).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields

from connector.api import named
from connector.api.access import (
    abort,
    api_blueprint,
    documented_errors,
    runtime,
)
from connector.api.flow_steps import Flow
from connector.config.schemas import FlowSchema
from connector.operations import flows

KIND = flows.KIND

blueprint = api_blueprint(
    "flows",
    "/flows",
    "Conversation flows: questions and steps a conversation runs between its rule and its entry point. "
    "Each step is one of the step kinds (AskStep, BotStep, ...) by its `type`; a `bot` step's chatbot "
    "speaks our signed JSON contract, summarised in BotStep and written out in docs/protocols/bots.md.",
)


def errors(*codes: int) -> Callable[[Any], Any]:
    return documented_errors(blueprint, 403, *codes)


FLOW_BODY = {
    "required": True,
    "description": "The flow in its YAML shape; each step's fields are those of its `type` (docs/flows.md)",
    "content": {"application/json": {"schema": Flow}},
}


def _out_fields() -> dict[str, fields.Field[Any]]:
    """FlowSchema's fields as they come out (steps and blocks as mappings: one answer schema for every
    step kind), so the answer stays in step with the YAML schema."""
    found: dict[str, fields.Field[Any]] = {}
    for name, field in FlowSchema._declared_fields.items():
        if name == "steps":
            found[name] = fields.List(fields.Dict(), required=True)
        elif isinstance(field, fields.Nested):
            found[name] = fields.Dict(allow_none=True)
        else:
            shown = copy.copy(field)
            shown.validators = []
            shown.required = name == "name"
            shown.allow_none = name != "name"
            found[name] = shown
    return found


FlowOut = Schema.from_dict(
    {
        **_out_fields(),
        "source": fields.String(allow_none=True, metadata={"description": "provisioning file; null for API/UI flows"}),
        "read_only": fields.Boolean(required=True),
        "used_by": fields.List(
            fields.String(),
            required=True,
            metadata={"description": "`rule <name>` and `entry point <integration>/<entry point>` running it"},
        ),
    },
    name="FlowOut",
)


def _out(row: flows.FlowRow) -> dict[str, Any]:
    return {**row.fields, "source": row.source, "read_only": row.read_only, "used_by": list(row.used_by)}


def _row(name: str) -> dict[str, Any]:
    found = flows.row(runtime().config, name)
    if found is None:
        abort(404, message=f"no flow named {name!r}")
    return _out(found)


@blueprint.route("")
@blueprint.response(200, FlowOut(many=True))
@errors()
def list_flows() -> list[dict[str, Any]]:
    """Every flow: provisioned ones (read-only, with their file) and those made in the UI/API."""
    return [_out(row) for row in flows.listing(runtime().config)]


@blueprint.route("", methods=["POST"])
@blueprint.doc(requestBody=FLOW_BODY)
@blueprint.response(201, FlowOut)
@errors(409, 422)
def create_flow() -> dict[str, Any]:
    """Create a flow (the YAML shape); a rule or an entry point then runs it by naming it in `flow`."""
    return _row(named.create(KIND, named.json_object("flow")))


@blueprint.route("/<name>")
@blueprint.response(200, FlowOut)
@errors(404)
def get_flow(name: str) -> dict[str, Any]:
    return _row(name)


@blueprint.route("/<name>", methods=["PUT"])
@blueprint.doc(requestBody=FLOW_BODY)
@blueprint.response(200, FlowOut)
@errors(404, 409, 422)
def replace_flow(name: str) -> dict[str, Any]:
    """Replace a flow made in the UI or API; the name is its identity (rules name it) and cannot change."""
    named.replace(KIND, "flow", name, named.json_object("flow"), runtime().provisioned.flow(name))
    return _row(name)


@blueprint.route("/<name>", methods=["DELETE"])
@blueprint.response(204)
@errors(404, 409)
def delete_flow(name: str) -> None:
    """Delete a flow made in the UI or API; refused (409, naming them) while rules or entry points run it."""
    named.delete(KIND, name)
