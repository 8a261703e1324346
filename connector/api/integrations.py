"""Integrations over the REST API: CRUD, "test" and "test and save", and the entry point indicators.

Request bodies are the YAML shape, validated by the store with `IntegrationSchema` (errors name
the dotted field, `entry_points.0.id`, `entry_points.1.skills.0`); answers are the same shape with
secrets as MASK, plus `source` (the provisioning file, or null), `read_only` and the `callback_url`
ECE must call. A Hybrid Chat integration (`type: hybrid`) runs in the connector: it is never asked
for ECE's fields (base_url, client key and secret, callback auth, an entry point's id) and its answer
shows none of them (`callback_url` null); its queues show `skills`, `priority`,
`offer_timeout_seconds`, `inactivity_timeout_seconds` (0 off, else 5 to 86400) and
`max_wait_seconds` (then the no agents message and the unavailable policy; for ECE it is only the
Wait indicator's threshold). Reads need a viewer, writes an admin.
Indicator reads show stored readings; only the refresh routes ask ECE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from marshmallow import Schema, fields

from connector.api.access import F, abort, api_blueprint, refuse_with_store_errors, requires, runtime, store_errors
from connector.api.access import documented_errors as access_documented_errors
from connector.backends import indicators
from connector.config.model import EntryPoint, Integration
from connector.config.overrides import NotFound
from connector.config.schemas import IntegrationSchema
from connector.operations.integrations import TestFailed, candidate, run_test, save_tested, shown
from connector.runtime import Runtime

KIND = "integrations"

blueprint = api_blueprint(
    "integrations",
    "/integrations",
    "ECE and Hybrid Chat integrations with their entry points, custom attributes and live indicators",
)


def documented_errors(*codes: int) -> Callable[[F], F]:
    return access_documented_errors(blueprint, *codes)


# -- schemas ----------------------------------------------------------------------------------------


class IntegrationOut(IntegrationSchema):
    """An integration as the API shows it: the YAML shape, secrets as MASK, and where it comes from."""

    source = fields.String(allow_none=True, metadata={"description": "provisioning file, or null if made in UI/API"})
    read_only = fields.Boolean(required=True)
    callback_url = fields.String(
        required=True, allow_none=True, metadata={"description": "the URL ECE must call with events; null for hybrid"}
    )


class TestQuery(Schema):
    test = fields.Boolean(
        load_default=False,
        metadata={
            "description": "run the test first and save only if it passes: ECE's token and entry points (type ece); "
            "each queue enabled, with what the router sees now (type hybrid)"
        },
    )


class FindingOut(Schema):
    check = fields.String(required=True)
    ok = fields.Boolean(required=True)
    message = fields.String(required=True)


class TestOut(Schema):
    ok = fields.Boolean(required=True)
    findings = fields.List(fields.Nested(FindingOut), required=True)


class IndicatorOut(Schema):
    name = fields.String(required=True, metadata={"description": "agent | depth | wait | status"})
    state = fields.String(required=True, metadata={"description": "green | red | unknown"})
    label = fields.String(required=True)
    detail = fields.String(required=True, metadata={"description": "the number behind the colour"})


class AvailabilityOut(Schema):
    chat_allowed = fields.Boolean(required=True)
    agents_available = fields.Boolean(required=True)
    capacity = fields.Integer(allow_none=True)
    eligibility = fields.Integer(allow_none=True)
    queue_depth = fields.Integer(allow_none=True)
    wait_seconds = fields.Integer(allow_none=True)


class ReadingOut(Schema):
    entry_point = fields.String(required=True)
    entry_point_id = fields.String(required=True)
    checked_at = fields.Float(allow_none=True, metadata={"description": "unix seconds; null: never checked"})
    checked = fields.String(required=True)
    error = fields.String(allow_none=True)
    availability = fields.Nested(AvailabilityOut, allow_none=True)
    indicators = fields.List(fields.Nested(IndicatorOut), required=True)


BODY_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": IntegrationSchema}}}}


def find(rt: Runtime, name: str) -> Integration:
    item = rt.config.integration(name)
    if item is None:
        abort(404, message=f"no integration named {name!r}")
    return item


def find_entry_point(item: Integration, name: str) -> EntryPoint:
    ep = item.entry_point(name)
    if ep is None:
        abort(404, message=f"integration {item.name!r} has no entry point named {name!r}")
    return ep


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(422, message="the body is not valid", errors={"json": {"_schema": ["send a JSON object"]}})
    return body


def _saved(rt: Runtime, body: Any, *, create: bool, test: bool) -> tuple[Integration, str | None]:
    """The saved item as now in effect, and the callback token generated for a new ECE one (or None)."""
    with store_errors():
        try:
            saved = save_tested(rt, body, create=create, test=test)
        except TestFailed as failed:
            kind = "ECE" if body.get("type") == "ece" else "Hybrid Chat"
            abort(
                422,
                message=f"the {kind} test failed: nothing was saved",
                errors={"test": {f.check: [f.message] for f in failed.findings if not f.ok}},
            )
    item = rt.config.integration(saved.stored.item.name)
    return (item if item is not None else saved.stored.item), saved.callback_token


# -- routes -----------------------------------------------------------------------------------------


@blueprint.route("")
@blueprint.response(200, IntegrationOut(many=True))
@documented_errors(401)
def list_integrations() -> list[dict[str, Any]]:
    """Every integration: provisioned ones (read-only, with their file) and those made in the UI/API."""
    rt = runtime()
    return [shown(rt, item) for item in rt.config.integrations]


@blueprint.route("", methods=["POST"])
@requires("admin")
@blueprint.arguments(TestQuery, location="query", as_kwargs=True)
@blueprint.doc(**BODY_DOC)
@blueprint.response(201, IntegrationOut)
@documented_errors(401, 403, 409, 422)
def create_integration(test: bool) -> dict[str, Any]:
    """Create an integration; with `?test=true` only after its test passes: ECE accepts its key and
    secret and its entry points, or each Hybrid Chat queue is enabled (422 with `errors.test` naming
    each failed check otherwise). An ECE integration sent without `callback_auth` (or with bearer and
    no token) gets bearer authentication with a generated token: this answer shows the token, once
    (enter it in ECE), and later ones mask it; `callback_auth: {type: none}` turns it off."""
    rt = runtime()
    item, callback_token = _saved(rt, _body(), create=True, test=test)
    answer = shown(rt, item)
    if callback_token is not None:
        answer["callback_auth"] = {"type": "bearer", "token": callback_token}  # this once; masked after
    return answer


@blueprint.route("/test", methods=["POST"])
@requires("admin")
@blueprint.doc(**BODY_DOC)
@blueprint.response(200, TestOut)
@documented_errors(401, 403, 409, 422)
def test_candidate() -> dict[str, Any]:
    """Run the checks of a candidate integration without saving it: ECE's token and entry points, or
    per Hybrid Chat queue what the router sees now (READY agents with its skills, free slots, chats
    waiting). Secrets sent as MASK take those of the stored integration of the same name."""
    rt = runtime()
    body = _body()
    with store_errors():
        try:
            found = candidate(rt, body, create=False)
        except NotFound:
            found = candidate(rt, body, create=True)
    findings = run_test(rt, found.item)
    return {"ok": all(f.ok for f in findings), "findings": findings}


@blueprint.route("/<name>")
@blueprint.response(200, IntegrationOut)
@documented_errors(401, 404)
def get_integration(name: str) -> dict[str, Any]:
    rt = runtime()
    return shown(rt, find(rt, name))


@blueprint.route("/<name>", methods=["PUT"])
@requires("admin")
@blueprint.arguments(TestQuery, location="query", as_kwargs=True)
@blueprint.doc(**BODY_DOC)
@blueprint.response(200, IntegrationOut)
@documented_errors(401, 403, 404, 409, 422)
def replace_integration(name: str, test: bool) -> dict[str, Any]:
    """Replace an integration made in the UI/API (its name cannot change: rules refer to it).
    Secrets sent as MASK or left out keep their stored values."""
    rt = runtime()
    body = dict(_body())
    body.setdefault("name", name)
    if body["name"] != name:
        refuse_with_store_errors(
            {"name": [f"the name cannot change (it is {name})"]},
            lambda: candidate(rt, {**body, "name": name}, create=False),
        )
    provisioned = rt.provisioned.integration(name)
    if provisioned is not None:
        abort(409, message=f"integration {name!r} is defined in {provisioned.source} and is read-only here")
    return shown(rt, _saved(rt, body, create=False, test=test)[0])


@blueprint.route("/<name>", methods=["DELETE"])
@requires("admin")
@blueprint.response(204)
@documented_errors(401, 403, 404, 409)
def delete_integration(name: str) -> None:
    """Delete an integration made in the UI/API; refused (409) while rules forward to it."""
    rt = runtime()
    with store_errors():
        rt.overrides.delete(KIND, name, rt.provisioned)
    rt.config_changed()


# -- indicators -------------------------------------------------------------------------------------


def _ece_only(item: Integration) -> None:
    if item.type != "ece":
        abort(409, message=f"integration {item.name!r} is type {item.type}: the indicators read ECE, it has none")


@blueprint.route("/<name>/entry-points/<entry_point>/indicators")
@blueprint.response(200, ReadingOut)
@documented_errors(401, 404)
def get_indicators(name: str, entry_point: str) -> dict[str, Any]:
    """The entry point's last reading and its four indicators (never asks ECE)."""
    rt = runtime()
    item = find(rt, name)
    ep = find_entry_point(item, entry_point)
    return indicators.as_dict(ep, indicators.read(rt.redis, item.name, ep.id))


@blueprint.route("/<name>/entry-points/<entry_point>/indicators/refresh", methods=["POST"])
@blueprint.response(200, ReadingOut)
@documented_errors(401, 403, 404, 409)
def refresh_indicators(name: str, entry_point: str) -> dict[str, Any]:
    """Ask ECE now about one entry point; a failed reading is answered 200 with `error` set."""
    rt = runtime()
    item = find(rt, name)
    ep = find_entry_point(item, entry_point)
    _ece_only(item)
    return indicators.as_dict(ep, indicators.refresh(item, ep, rt.redis))


@blueprint.route("/<name>/indicators/refresh", methods=["POST"])
@blueprint.response(200, ReadingOut(many=True))
@documented_errors(401, 403, 404, 409)
def refresh_all_indicators(name: str) -> list[dict[str, Any]]:
    """Ask ECE about every entry point of the integration, side by side with a short timeout."""
    rt = runtime()
    item = find(rt, name)
    _ece_only(item)
    readings = indicators.refresh_all(item, rt.redis)
    return [indicators.as_dict(ep, readings.get(ep.name)) for ep in item.entry_points]
