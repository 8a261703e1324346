"""Reloading the provisioned files (`entrypoints/*.yaml`) in every process, and its status
(connector/config/reload.py; docs/architecture.md, "Configuration concepts").

`POST /config/reload` (admin) loads the files in the web process that answers: a problem gives 422
naming file, item and field for each, as `check-config` prints them, and changes nothing; good files
start a new generation that every process (web, workers, listener) applies at its next check,
within a second. `GET /config/reload` shows the generation, who asked and what each process did.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from connector.api.access import abort, api_blueprint, api_user, documented_errors, requires, runtime
from connector.config.loader import ConfigError
from connector.config.reload import ReloadStatus, ReloadStore, problems_by_file

blueprint = api_blueprint("config_reload", "/config", "Reload the provisioned files in every process")


class ProcessStatusSchema(Schema):
    name = fields.String(required=True, metadata={"description": "role:host:pid"})
    role = fields.String(required=True, metadata={"description": "web | worker | listener"})
    pid = fields.Integer(required=True)
    host = fields.String(required=True)
    generation = fields.Integer(required=True, metadata={"description": "the generation it last acted on"})
    ok = fields.Boolean(
        required=True, metadata={"description": "false: it could not load those files and runs the previous ones"}
    )
    current = fields.Boolean(
        required=True,
        metadata={"description": "it acted on the current generation (false: it applies it at its next check)"},
    )
    error = fields.String(
        allow_none=True, metadata={"description": "every problem it met, one a line, naming file, item and field"}
    )
    at = fields.Float(required=True, metadata={"description": "unix time it acted"})


class ReloadStatusSchema(Schema):
    generation = fields.Integer(
        required=True, metadata={"description": "bumped by each reload; 0: never reloaded, the files read at start"}
    )
    requested_by = fields.String(allow_none=True, metadata={"description": "the operator, or SIGHUP"})
    via = fields.String(allow_none=True, metadata={"description": "api | ui | signal"})
    requested_at = fields.Float(allow_none=True, metadata={"description": "unix time of the last reload"})
    processes = fields.List(
        fields.Nested(ProcessStatusSchema),
        required=True,
        metadata={"description": "the processes that read their configuration since the last reload"},
    )


def status_out(status: ReloadStatus) -> dict[str, Any]:
    return {
        "generation": status.generation,
        "requested_by": status.requested_by,
        "via": status.via,
        "requested_at": status.requested_at,
        "processes": [{**p.__dict__, "current": p.generation == status.generation} for p in status.processes],
    }


@blueprint.route("/reload")
@blueprint.response(200, ReloadStatusSchema)
@documented_errors(blueprint)
def reload_status() -> dict[str, Any]:
    """The generation of the provisioned files, the last reload and what each process did with it."""
    return status_out(ReloadStore(runtime().redis).status())


@blueprint.route("/reload", methods=["POST"])
@requires("admin")
@blueprint.response(200, ReloadStatusSchema)
@documented_errors(blueprint, 403, 422)
def reload_files() -> dict[str, Any]:
    """Reload the provisioned files in every process: loaded here first (422 naming file, item and
    field of each problem, and nothing changes anywhere), then applied by every process within a
    second. The answer is the status right after: this process has applied it; the others follow."""
    rt = runtime()
    try:
        rt.reload_config(requested_by=api_user().name, via="api")
    except ConfigError as exc:
        abort(
            422,
            message=f"nothing was reloaded: the provisioned files have {len(exc.problems)} problem(s)",
            errors={"files": problems_by_file(exc.problems)},
        )
    return status_out(ReloadStore(rt.redis).status())
