"""The media-blending section (`finesse:`) over the REST API: read it, make or replace it (admins, when
no provisioning file defines it), test each configured node, and "test and save".

Bodies are the YAML shape, validated by `FinesseSchema` (a 422 names the field as check-config
would); answers are the same shape with the admin password as MASK, plus `source` (the provisioning
file, or null) and `read_only`. A MASK or missing password keeps the stored one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from flask import request
from marshmallow import Schema, fields

from connector.api.access import abort, api_blueprint, api_user, documented_errors, requires, runtime, store_errors
from connector.config.schemas import FinesseSchema
from connector.operations import finesse

blueprint = api_blueprint(
    "finesse",
    "/finesse",
    "The media-blending section (finesse:): Cisco Finesse nodes, NOT_READY reason, chat limits and policy",
)


def errors(*codes: int) -> Callable[[Any], Any]:
    return documented_errors(blueprint, *codes)


# -- schemas ----------------------------------------------------------------------------------------


class FinesseOut(FinesseSchema):
    """The section as the API shows it: the YAML shape, the admin password as MASK, where it comes from."""

    source = fields.String(allow_none=True, metadata={"description": "provisioning file, or null if made in UI/API"})
    read_only = fields.Boolean(required=True, metadata={"description": "defined by a provisioning file"})


class TestQuery(Schema):
    test = fields.Boolean(
        load_default=False,
        metadata={"description": "ask each configured node's SystemInfo first; save only if all are IN_SERVICE"},
    )


class NodeOut(Schema):
    role = fields.String(required=True, metadata={"description": "publisher | subscriber"})
    url = fields.String(required=True)
    reachable = fields.Boolean(required=True)
    in_service = fields.Boolean(required=True)
    status = fields.String(
        allow_none=True, metadata={"description": "IN_SERVICE, OUT_OF_SERVICE, ...; null: no answer"}
    )
    status_reason = fields.String(allow_none=True)
    deployment_type = fields.String(allow_none=True, metadata={"description": "UCCE | UCCX, as SystemInfo says"})
    error = fields.String(allow_none=True, metadata={"description": "what is wrong, in words; null when in service"})


class NodeTestOut(Schema):
    ok = fields.Boolean(required=True, metadata={"description": "every configured node is IN_SERVICE"})
    active = fields.String(
        allow_none=True,
        metadata={"description": "the node blending would work through now (publisher first); null: halted"},
    )
    checked_at = fields.Float(required=True)
    nodes = fields.List(fields.Nested(NodeOut), required=True)


BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": FinesseSchema}}}}
TEST_BODY_DOC = {
    "requestBody": {
        "required": False,
        "description": "a candidate section (admins); without a body, the section in effect is tested",
        "content": {"application/json": {"schema": FinesseSchema}},
    }
}


def node_test_out(result: finesse.NodeTest) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "active": result.active,
        "checked_at": result.checked_at,
        "nodes": [{**asdict(n), "in_service": n.in_service} for n in result.nodes],
    }


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(422, message="the body is not valid", errors={"json": {"_schema": ["send a JSON object"]}})
    return body


def _current() -> dict[str, Any]:
    try:
        return finesse.shown(finesse.current(runtime()))
    except finesse.NotConfigured as exc:
        abort(404, message=str(exc))


# -- routes -----------------------------------------------------------------------------------------


@blueprint.route("")
@blueprint.response(200, FinesseOut)
@errors(401, 404)
def get_finesse() -> dict[str, Any]:
    """The section in effect: provisioned (read-only, with its file) or made in the UI / API; 404 without one."""
    return _current()


@blueprint.route("", methods=["PUT"])
@requires("admin")
@blueprint.arguments(TestQuery, location="query", as_kwargs=True)
@blueprint.doc(**BODY_DOC)
@blueprint.response(200, FinesseOut)
@errors(401, 403, 409, 422)
def put_finesse(test: bool) -> dict[str, Any]:
    """Make or replace the section (409 while a provisioning file defines it); with `?test=true` only
    after every configured node answers SystemInfo IN_SERVICE (422 with `errors.test` naming each node
    otherwise). The listener works with the section it started with: a change applies when it restarts."""
    rt = runtime()
    with store_errors():
        try:
            finesse.save(rt, _body(), test=test)
        except finesse.TestFailed as failed:
            abort(
                422,
                message="the Finesse test failed: nothing was saved",
                errors={"test": {n.role: [n.error or ""] for n in failed.result.nodes if not n.in_service}},
            )
    return _current()


@blueprint.route("", methods=["DELETE"])
@requires("admin")
@blueprint.response(204)
@errors(401, 403, 404, 409)
def delete_finesse() -> None:
    """Remove the section made in the UI / API (409 for a provisioned one): media blending is then off
    once the listener restarts."""
    with store_errors():
        finesse.delete(runtime())


@blueprint.route("/test", methods=["POST"])
@blueprint.doc(**TEST_BODY_DOC)
@blueprint.response(200, NodeTestOut)
@errors(401, 403, 404, 409, 422)
def test_finesse() -> dict[str, Any]:
    """Ask each configured node's SystemInfo now: reachable, IN_SERVICE or not, and why. Without a
    body (an editor) the section in effect (404 without one); with a candidate section (an admin) that
    one, nothing saved, a MASK password taking the stored one."""
    rt = runtime()
    body = _body() if request.get_data().strip() else {}
    if not body:
        try:
            return node_test_out(finesse.check_nodes(finesse.current(rt)))
        except finesse.NotConfigured as exc:
            abort(404, message=str(exc))
    if not api_user().can("admin"):
        abort(403, message="testing a candidate section needs the admin role")
    with store_errors():
        found = finesse.candidate(rt, body)
    return node_test_out(finesse.check_nodes(found.item))
