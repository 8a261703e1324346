"""The flows page: every flow (provisioned ones read-only, with their file), a flow's steps as a
numbered list, and create / edit / delete of flows made in the UI.

The steps are edited as YAML (connector/operations/flows.py): the step kinds grow, and a form per kind
would have to follow each one. The reference beside the editor lists the kinds and their fields from
the schemas; the store validates on save and every error is shown beside its field at once.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from connector.admin.access import flash_store_errors, guard, requires, runtime
from connector.config.overrides import ConfigConflict, ConfigInvalid, NotFound, masked, validate
from connector.operations import flows

blueprint = guard(Blueprint("admin_flows", __name__, url_prefix="/admin/flows"))
KIND = flows.KIND


@blueprint.route("/")
def index() -> str:
    return render_template("admin/flows/index.html", rows=flows.listing(runtime().config))


@blueprint.route("/<name>")
def show(name: str) -> str:
    found = flows.row(runtime().config, name)
    if found is None:
        abort(404, f"There is no flow {name}.")
    return render_template("admin/flows/show.html", row=found, summary=flows.step_summary)


def _form(values: dict[str, str], errors: dict[str, list[str]], *, creating: bool, status: int = 200) -> Any:
    page = render_template(
        "admin/flows/form.html",
        values=values,
        errors=step_errors(errors),
        creating=creating,
        kinds=flows.step_kinds(),
        more=flows.more_settings(),
        on_fail_choices=flows.on_fail_choices(),
        preview=None if errors else _valid_steps(values),
        summary=flows.step_summary,
    )
    return page, status


def _valid_steps(values: dict[str, str]) -> list[dict[str, Any]] | None:
    """The form's steps as written, when the whole flow validates (the numbered list shows only then)."""
    raw, unreadable = flows.raw_of(values)
    if unreadable:
        return None
    try:
        validate(KIND, raw)
    except ConfigInvalid:
        return None
    steps: list[dict[str, Any]] = raw["steps"]
    return steps


def step_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The store's errors by the form's fields: `steps.1.pattern` goes beside the steps text, as
    `step 2: pattern: ...`; a block's (`survey.question`) beside "More settings"."""
    shown: dict[str, list[str]] = {}
    for field, messages in errors.items():
        head, _, rest = field.partition(".")
        if head == "steps" and rest:
            index, _, own = rest.partition(".")
            where = f"step {int(index) + 1}" if index.isdigit() else f"steps {index}"
            shown.setdefault("steps", []).extend(f"{where}: {own or 'the step'}: {m}" for m in messages)
        elif head in flows.FORM_FIELDS or head == "_schema" or head == "more":
            shown.setdefault(field if head != "more" else "more", []).extend(messages)
        else:
            shown.setdefault("more", []).extend(f"{field}: {m}" for m in messages)
    return shown


def _save(form: dict[str, str], *, creating: bool) -> Any:
    """Write the form's flow: back to the form with every error beside its field, or to the flow.
    Text that is not YAML is named alone for its field (the store would only say it is empty), beside
    the store's errors of the other fields."""
    rt = runtime()
    raw, unreadable = flows.raw_of(form)
    found: dict[str, list[str]] = {}
    try:
        if unreadable:
            rt.overrides.prepared(KIND, raw, rt.provisioned, create=creating)
        else:
            rt.overrides.save(KIND, raw, rt.provisioned, create=creating)
    except ConfigInvalid as exc:
        found = {f: m for f, m in exc.errors.items() if not _hidden_by(f, unreadable)}
    except (ConfigConflict, NotFound) as exc:
        found = {"_schema": [str(exc).strip("'\"")]}
    for field, messages in unreadable.items():
        found.setdefault(field, []).extend(messages)
    if found:
        flash("The flow was not saved: see the errors beside the fields.", "error")
        return _form(form, found, creating=creating, status=422)
    rt.config_changed()
    flash(f"Flow {raw['name']} {'created' if creating else 'saved'}.", "success")
    return redirect(url_for(".show", name=raw["name"]))


def _hidden_by(field: str, unreadable: dict[str, list[str]]) -> bool:
    """Whether the store's error on `field` only follows from a text that did not parse."""
    head = field.partition(".")[0]
    if head == "steps":
        return "steps" in unreadable
    return "more" in unreadable and head not in flows.FORM_FIELDS and head != "_schema"


@blueprint.route("/new", methods=["GET", "POST"])
@requires("editor")  # the form too: a viewer is not shown one they cannot submit
def create() -> Any:
    if request.method == "GET":
        return _form(flows.form_of({}), {}, creating=True)
    return _save(request.form.to_dict(), creating=True)


@blueprint.route("/<name>/edit", methods=["GET", "POST"])
@requires("editor")
def edit(name: str) -> Any:
    rt = runtime()
    provisioned = rt.provisioned.flow(name)
    if provisioned is not None:
        flash(f"Flow {name} is defined in {provisioned.source} and is read-only here: change it in that file.", "error")
        return redirect(url_for(".show", name=name))
    if request.method == "GET":
        try:
            return _form(flows.form_of(masked(KIND, rt.overrides.raw(KIND, name))), {}, creating=False)
        except NotFound:
            flash(f"There is no flow {name}: it may have been deleted.", "error")
            return redirect(url_for(".index"))
    return _save({**request.form.to_dict(), "name": name}, creating=False)


@blueprint.route("/<name>/delete", methods=["POST"])
def delete(name: str) -> Any:
    rt = runtime()
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        rt.overrides.delete(KIND, name, rt.provisioned)
    if errors:
        return redirect(url_for(".show", name=name) if rt.config.flow(name) else url_for(".index"))
    rt.config_changed()
    flash(f"Flow {name} deleted.", "success")
    return redirect(url_for(".index"))
