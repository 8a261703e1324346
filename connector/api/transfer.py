"""Configuration as provisioning YAML: export (secrets as `${ENV}` references, never in clear) and
import (a dry run shows the diff; applying re-validates and writes through the config store)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from connector.api.access import abort, api_blueprint, requires, runtime
from connector.config.overrides import NotFound
from connector.operations import import_export

blueprint = api_blueprint("transfer", "/config", "Export and import the configuration as YAML")

MAX_IMPORT_CHARS = 1_000_000


class ExportArgs(Schema):
    kind = fields.String(validate=validate.OneOf(import_export.EXPORT_KINDS))
    name = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "one item of `kind` (assets: channel/name); needs kind"},
    )


class ExportSchema(Schema):
    yaml = fields.String(required=True, metadata={"description": "a provisioning file (entrypoints/*.yaml)"})
    filename = fields.String(required=True)
    variables = fields.List(
        fields.String(), required=True, metadata={"description": "environment variables the secrets refer to"}
    )
    items = fields.Integer(required=True)


class ImportArgs(Schema):
    dry_run = fields.Boolean(load_default=True, metadata={"description": "true: only show what would change"})


class ImportBody(Schema):
    yaml = fields.String(required=True, validate=validate.Length(min=1, max=MAX_IMPORT_CHARS))


class ChangeSchema(Schema):
    kind = fields.String(required=True)
    key = fields.String(required=True)
    action = fields.String(
        required=True,
        metadata={
            "description": "add | change | unchanged | refused: what applying would do; while `problems` is "
            "not empty nothing is applied (see `summary`)"
        },
    )
    fields_ = fields.List(fields.String(), required=True, data_key="fields")
    reason = fields.String(allow_none=True)


class ProblemSchema(Schema):
    item = fields.String(required=True)
    field = fields.String(allow_none=True)
    message = fields.String(required=True)
    text = fields.String(required=True, metadata={"description": "as check-config prints it"})


class ImportResultSchema(Schema):
    ok = fields.Boolean(required=True, metadata={"description": "no problems: the file can be applied"})
    applied = fields.Boolean(required=True)
    changes = fields.List(fields.Nested(ChangeSchema), required=True)
    problems = fields.List(fields.Nested(ProblemSchema), required=True)
    written = fields.Integer(required=True)
    summary = fields.String(
        required=True,
        metadata={"description": "the outcome in words, as the import page says it (never 'added' while blocked)"},
    )


@blueprint.route("/export")
@blueprint.arguments(ExportArgs, location="query")
@blueprint.response(200, ExportSchema)
@blueprint.alt_response(404, response="NOT_FOUND")
@blueprint.alt_response(400, response="BAD_REQUEST")
def export_config(args: dict[str, Any]) -> dict[str, Any]:
    """Everything, every item of a kind, or one item, as YAML loadable by `check-config`."""
    try:
        exported = import_export.export(runtime().config, args.get("kind"), args.get("name"))
    except ValueError as exc:
        abort(400, message=str(exc), errors={"query": {"name": [str(exc)]}})
    except NotFound as exc:
        abort(404, message=str(exc).strip("'\""))
    return {
        "yaml": exported.text,
        "filename": exported.filename,
        "variables": exported.variables,
        "items": exported.items,
    }


def _result(planned: import_export.Plan, written: int, applied: bool) -> dict[str, Any]:
    return {
        "ok": planned.ok,
        "applied": applied,
        "changes": [
            {"kind": c.kind, "key": c.key, "action": c.action, "fields_": list(c.fields), "reason": c.reason}
            for c in planned.changes
        ],
        "problems": [
            {"item": p.item, "field": p.field, "message": p.message, "text": str(p)} for p in planned.problems
        ],
        "written": written,
        "summary": import_export.applied_summary(planned, written) if applied else import_export.summary(planned),
    }


@blueprint.route("/import", methods=["POST"])
@requires("admin")
@blueprint.arguments(ImportArgs, location="query")
@blueprint.arguments(ImportBody)
@blueprint.response(200, ImportResultSchema)
@blueprint.alt_response(403, response="FORBIDDEN")
@blueprint.alt_response(409, response="CONFLICT")
def import_config(args: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Validate a provisioning file and show the diff (dry_run=true, the default), or apply it
    (dry_run=false: re-validated, nothing written when any item has a problem)."""
    rt = runtime()
    planned = import_export.plan(body["yaml"], rt.config, rt.provisioned, rt.overrides)
    if args["dry_run"]:
        return _result(planned, 0, applied=False)
    if not planned.ok:
        abort(
            422,
            message="nothing was imported: fix the problems named and send the file again",
            errors={"json": {"yaml": [str(p) for p in planned.problems]}},
        )
    try:
        written = import_export.apply(planned, rt.overrides, rt.provisioned)
    except import_export.ImportBlocked as exc:
        rt.config_changed()
        done = ", ".join(f"{c.kind[:-1]} {c.key}" for c in exc.written) or "nothing"
        abort(409, message=f"the import stopped: {exc}; written before it stopped: {done}")
    rt.config_changed()
    return _result(planned, len(written), applied=True)
