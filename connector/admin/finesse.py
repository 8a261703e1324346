"""The media-blending section (`finesse:`) in the operator UI: what is in effect, each node's
SystemInfo on demand, and (admins, when no provisioning file defines the section) the form with
"Test", "Test and save" and "Save without testing".

A provisioned section shows read-only with its file, as provisioned integrations do. One made here is
stored in Redis beside the files through connector/operations/finesse.py, validated by the same
`FinesseSchema` as the YAML, so errors name the same fields; the admin password is never sent to the
browser (an empty field keeps it). Rendering never calls Finesse: only "Check nodes" and the tests do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError, fields, missing, validate

from connector.admin.access import flash_store_errors, guard, requires, runtime
from connector.config.overrides import MASK
from connector.config.schemas import FinesseSchema
from connector.operations import finesse

blueprint = guard(Blueprint("admin_finesse", __name__, url_prefix="/admin/finesse"))

FIELDS: tuple[tuple[str, str, str], ...] = (
    ("publisher", "Publisher node", "Base URL of the primary node, with its port: https://finesse1.example.com:8445."),
    ("subscriber", "Subscriber node", "Base URL of the secondary node; empty for a single node."),
    ("deployment", "Deployment", "UCCE or UCCX."),
    ("admin_user", "Admin user", "A Finesse administrator: agent sync reads every agent with it."),
    ("admin_password", "Admin password", ""),
    ("not_ready_reason", "NOT_READY reason label", "Label of the NOT_READY reason code set while an agent chats."),
    ("max_chats", "Most chats per agent", "At this many chats the agent's chat state is BUSY."),
    ("chat_enabled", "Chat-enabled agents", "all, none, team:<name>[,<name>…] or role:<role>."),
    ("chat_mrd_id", "ECE chat MRD id", "The Finesse media routing domain of ECE chat, or give its name below."),
    ("chat_mrd_name", "ECE chat MRD name", "Looked up in an agent's media list at start when no id is given."),
    ("ece_agent_field", "ECE agent field", "Which field of ECE's agent names the Finesse agent: name or id."),
    ("ece_agents", "ECE agents to Finesse logins", "Where they differ: ece-name=finesse-login, another=login2."),
    ("media_list_path", "Media list path", "Only if your Finesse serves the agent's media list elsewhere."),
    ("events", "Voice events", "xmpp: notifications for agents logged in to the connector; poll: REST polling."),
    ("xmpp_port", "XMPP port", "Empty: Finesse's port for the TLS mode."),
    ("xmpp_tls", "XMPP TLS", ""),
    ("sync_interval_seconds", "Agent sync every (seconds)", ""),
    ("liveness_interval_seconds", "Node check every (seconds)", "How often the listener reads each node's SystemInfo."),
    ("verify_tls", "Verify Finesse's TLS certificates", "Turn off only in a lab; prefer a CA bundle."),
    ("ca_bundle", "CA bundle", "Path on the connector host of the CA of a private Finesse cluster."),
)
"""The form's fields, labels and hints in page order; a field the schema has and this list lacks still
shows, under its own name."""


def _schema_fields() -> dict[str, fields.Field[Any]]:
    found: dict[str, fields.Field[Any]] = FinesseSchema().fields
    return found


def form_fields() -> list[dict[str, Any]]:
    """What the form renders per field: its kind (select, checkbox, password, number, text) and choices,
    read from FinesseSchema so the form follows the schema."""
    schema = _schema_fields()
    known = {name: (label, hint) for name, label, hint in FIELDS}
    names = [name for name, _, _ in FIELDS if name in schema] + [n for n in schema if n not in known]
    shown = []
    for name in names:
        field = schema[name]
        label, hint = known.get(name, (name, ""))
        choices = _choices(field)
        if name == "admin_password":
            kind = "password"
        elif isinstance(field, fields.Boolean):
            kind = "checkbox"
        elif choices:
            kind = "select"
        elif isinstance(field, fields.Number):
            kind = "number"
        else:
            kind = "text"
        shown.append({"name": name, "label": label, "hint": hint, "kind": kind, "choices": choices})
    return shown


def _choices(field: fields.Field[Any]) -> list[str]:
    modes = getattr(field, "MODES", None)
    if isinstance(modes, Mapping):
        return list(dict.fromkeys(str(v) for v in modes.values()))
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            return [str(c) for c in validator.choices]
    return []


def _defaults() -> dict[str, Any]:
    return {
        name: field.load_default
        for name, field in _schema_fields().items()
        if field.load_default is not missing and not callable(field.load_default)
    }


def _typed(text: str, field: fields.Field[Any]) -> Any:
    """A number where the field takes one and the text is one; the text otherwise, for the schema to
    name the field."""
    try:
        if isinstance(field, fields.Integer):
            return int(text)
        if isinstance(field, fields.Number):
            return float(text)
    except ValueError:
        return text
    return text


def section_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The raw section from the form; empty optional fields are left out, and so is an empty password
    (the stored one is kept)."""
    schema = _schema_fields()
    raw: dict[str, Any] = {}
    for name, field in schema.items():
        if isinstance(field, fields.Boolean) and not _choices(field):
            raw[name] = form.get(name) == "on"
            continue
        text = form.get(name, "")
        text = text if name == "admin_password" else text.strip()
        if text:
            raw[name] = _typed(text, field)
    return raw


def _form_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What the form shows: defaults, then `raw`, never the password (only whether one is stored)."""
    schema = _schema_fields()
    values = {**_defaults(), **raw}
    shown: dict[str, Any] = {}
    for name, value in values.items():
        field = schema.get(name)
        if name == "admin_password" or field is None:
            continue
        if _choices(field) and value is not None:
            try:  # the canonical choice (a file's `false` is the select's `plain`)
                value = field.deserialize(value)
            except ValidationError:
                value = str(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, Mapping):  # a mapping field (ece_agents): the text the form takes back
            value = ", ".join(f"{key}={item}" for key, item in value.items())
        shown[name] = "" if value is None else value
    shown["has_password"] = bool(raw.get("admin_password"))
    return shown


# -- pages ------------------------------------------------------------------------------------------


def _render_index(result: finesse.NodeTest | None, status: int = 200) -> Any:
    rt = runtime()
    item = rt.config.finesse
    return (
        render_template(
            "admin/finesse/index.html",
            item=item,
            shown=finesse.shown(item) if item is not None else None,
            fields=form_fields(),
            editable=finesse.editable(rt),
            made_here=rt.overrides.singleton(finesse.SECTION) is not None and finesse.editable(rt),
            result=result,
            restart_note=finesse.RESTART_NOTE,
        ),
        status,
    )


@blueprint.route("/")
def index() -> Any:
    return _render_index(None)


@blueprint.route("/check", methods=["POST"])
def check() -> Any:
    """Ask each node of the section in effect (editors and admins; the guard refuses viewers)."""
    try:
        config = finesse.current(runtime())
    except finesse.NotConfigured as exc:
        flash(f"Nothing to check: {exc}.", "error")
        return redirect(url_for(".index"))
    return _render_index(finesse.check_nodes(config))


def _render_form(values: dict[str, Any], *, errors: dict[str, list[str]], result: finesse.NodeTest | None) -> Any:
    status = 422 if errors or (result is not None and not result.ok and request.form.get("action") != "test") else 200
    return (
        render_template(
            "admin/finesse/form.html",
            values=values,
            fields=form_fields(),
            create=runtime().overrides.singleton(finesse.SECTION) is None,
            errors=errors,
            result=result,
            mask=MASK,
            restart_note=finesse.RESTART_NOTE,
        ),
        status,
    )


def _provisioned_refusal() -> None:
    provisioned = runtime().provisioned.finesse
    if provisioned is not None:
        abort(409, f"The finesse: section is defined in {provisioned.source} and is read-only here: change that file.")


@blueprint.route("/edit", methods=["GET", "POST"])
@requires("admin")
def edit() -> Any:
    _provisioned_refusal()
    rt = runtime()
    stored = rt.overrides.singleton(finesse.SECTION) or {}
    if request.method == "GET":
        return _render_form(_form_values(stored), errors={}, result=None)
    raw = section_from_form(request.form)
    values = {**_form_values(raw), "has_password": bool(stored.get("admin_password"))}  # stored, not typed
    action = request.form.get("action", "test_save")
    errors: dict[str, list[str]] = {}
    if action == "test":
        with flash_store_errors(errors):
            found = finesse.candidate(rt, raw)
        if errors:
            return _render_form(values, errors=errors, result=None)
        result = finesse.check_nodes(found.item)
        flash("Tested; nothing was saved." if result.ok else "Tested: a node is not in service (below).", "info")
        return _render_form(values, errors={}, result=result)
    try:
        with flash_store_errors(errors):
            finesse.save(rt, raw, test=action != "save")
    except finesse.TestFailed as failed:
        flash("Nothing was saved: a Finesse node is not in service. Fix what it says below and try again.", "error")
        return _render_form(values, errors={}, result=failed.result)
    if errors:
        return _render_form(values, errors=errors, result=None)
    how = "saved without testing" if action == "save" else "tested and saved"
    flash(f"Finesse section {how}. {finesse.RESTART_NOTE}", "success")
    return redirect(url_for(".index"))


@blueprint.route("/delete", methods=["POST"])
@requires("admin")
def delete() -> Any:
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        finesse.delete(runtime())
    if not errors:
        flash(f"Finesse section deleted: media blending is off. {finesse.RESTART_NOTE}", "success")
    return redirect(url_for(".index"))
