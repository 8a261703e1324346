"""Provisioned items (read-only, with their file), export as YAML, import with a diff, and the
reload of the provisioned files.

Import is two posts carrying the same YAML: the first shows what would change and writes nothing;
"Apply" validates the text again and writes it through the config store (admin only).

"Reload the provisioned files" (admin only) loads `entrypoints/*.yaml` in this process: a problem is
shown (file, item, field) and changes nothing; good files start a new generation that every process
applies within a second (connector/config/reload.py). The page shows what each process did.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from connector.admin.access import guard, requires, runtime, user
from connector.config.loader import ConfigError, ConfigProblem
from connector.config.overrides import KINDS, NotFound, item_key
from connector.config.reload import ReloadStore
from connector.operations import import_export

log = logging.getLogger(__name__)
blueprint = guard(Blueprint("admin_transfer", __name__, url_prefix="/admin/transfer"))

MAX_IMPORT_BYTES = 1_000_000


@blueprint.route("/")
def index() -> Any:
    return _index()


def _index(reload_problems: list[ConfigProblem] | None = None) -> str:
    rt = runtime()
    config = rt.config
    items = {kind: [(item_key(kind, i), i) for i in getattr(config, kind)] for kind in KINDS}
    return render_template(
        "admin/transfer/index.html",
        items=items,
        default_rule=config.default_rule,
        finesse=config.finesse,
        reload=ReloadStore(rt.redis).status(),
        reload_problems=reload_problems or [],
    )


@blueprint.route("/reload", methods=["POST"])
@requires("admin")
def reload() -> Any:
    """Reload the provisioned files in every process; a file with a problem changes nothing."""
    try:
        generation = runtime().reload_config(requested_by=user().name, via="ui")
    except ConfigError as exc:
        flash(f"Nothing was reloaded: the provisioned files have {len(exc.problems)} problem(s) (below).", "error")
        return _index(exc.problems), 422
    flash(
        f"Reloaded the provisioned files: generation {generation}. This page already uses them; "
        "every other process applies them within a second (below).",
        "success",
    )
    return redirect(url_for(".index"))


@blueprint.route("/export")
def export() -> Any:
    kind = request.args.get("kind") or None
    name = request.args.get("name") or None
    try:
        exported = import_export.export(runtime().config, kind, name)
    except ValueError as exc:
        abort(400, str(exc))
    except NotFound as exc:
        abort(404, str(exc).strip("'\""))
    disposition = "inline" if request.args.get("view") else "attachment"
    return Response(
        exported.text,
        mimetype="text/plain" if disposition == "inline" else "application/yaml",
        headers={"Content-Disposition": f'{disposition}; filename="{exported.filename}"'},
    )


def _submitted_text() -> str | None:
    """The YAML of the form: an uploaded file wins over the text area."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data: bytes = upload.read(MAX_IMPORT_BYTES + 1)  # FileStorage passes read() to its stream, untyped
    else:
        data = request.form.get("yaml", "").encode()
    if len(data) > MAX_IMPORT_BYTES:
        flash(f"The file is over {MAX_IMPORT_BYTES // 1000} kB: split it into smaller files.", "error")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        flash("The file is not UTF-8 text: save it as UTF-8 and try again.", "error")
        return None


def digest(text: str) -> str:
    """Ties "Apply" to the text the operator checked: an edit after the check needs a new check."""
    return hashlib.sha256(text.encode()).hexdigest()


def _plan(text: str) -> import_export.Plan:
    rt = runtime()
    return import_export.plan(text, rt.config, rt.provisioned, rt.overrides)


def _preview(planned: import_export.Plan, text: str) -> str:
    """What the import would do: its problems, and a table that agrees with them (an item is "blocked",
    never "added", while a problem stops the whole file)."""
    return render_template(
        "admin/transfer/preview.html", plan=planned, counts=import_export.counts, text=text, digest=digest(text)
    )


@blueprint.route("/import", methods=["POST"])
@requires("admin")
def preview() -> Any:
    text = _submitted_text()
    if text is None:
        return redirect(url_for(".index"))
    return _preview(_plan(text), text)


@blueprint.route("/import/apply", methods=["POST"])
@requires("admin")
def apply() -> Any:
    text = _submitted_text()
    if text is None:
        return redirect(url_for(".index"))
    rt = runtime()
    planned = _plan(text)
    if request.form.get("checked") != digest(text):
        flash("The YAML changed since it was checked: look at the changes below, then apply.", "error")
        return _preview(planned, text), 409
    if not planned.ok:
        flash("Nothing was imported: the file has problems (below).", "error")
        return _preview(planned, text), 422
    try:
        written = import_export.apply(planned, rt.overrides, rt.provisioned)
    except import_export.ImportBlocked as exc:
        rt.config_changed()
        done = ", ".join(f"{_singular(c.kind)} {c.key}" for c in exc.written) or "nothing"
        flash(f"The import stopped: {exc}. Written before it stopped: {done}.", "error")
        return redirect(url_for(".index"))
    rt.config_changed()
    log.info("configuration imported", extra={"written": len(written)})
    flash(import_export.applied_summary(planned, len(written)), "success")
    return redirect(url_for(".index"))


def _singular(kind: str) -> str:
    """ "rules" → "rule"; a singleton section ("finesse") is its own name."""
    return kind[:-1] if kind in ("integrations", "assets", "rules") else kind
