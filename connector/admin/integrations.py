"""Integrations in the operator UI: list, "test and save", entry points with their live indicators,
and the custom attribute mappings.

Provisioned integrations are shown read-only with their file; those made here are edited as their
raw YAML mapping through the config store, so the YAML, the API and this page validate alike.
A Hybrid Chat integration (`type: hybrid`) runs in the connector: its forms never ask for ECE's fields
(base URL, client key and secret, callback auth, an entry point's id), and its queues have skills, a
priority, an offer timeout and a max wait (then the unavailable policy).
Entry point and attribute edits keep every other field of the stored item (the message overrides
of the template editor included). An entry point's business hours (`hours:`) are edited as YAML in its
form and shown readable, with "open now" or when it opens next, on its own page (business_hours.py).
Pages render the stored indicator readings only; refreshing asks ECE through the API (integrations.js),
or through the plain form routes here without JavaScript. An open page gets every new reading
(anyone's refresh) from its live stream (admin/live.py), and the age of each reading ticks in the
browser.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from connector.admin import business_hours
from connector.admin.access import flash_store_errors, guard, requires, runtime, user
from connector.backends import Finding, indicators
from connector.config import raw as raw_shape
from connector.config.model import DEFAULT_MAX_IN_FLIGHT, Integration
from connector.config.overrides import MASK, NotFound, masked
from connector.operations.integrations import TestFailed, callback_url, save_tested, test_summary

KIND = "integrations"
TYPES = ("ece", "hybrid")
STALE_SECONDS = 60.0
"""Readings older than this are refreshed by the page's script when it opens."""

blueprint = guard(Blueprint("admin_integrations", __name__, url_prefix="/admin/integrations"))


# -- reading ----------------------------------------------------------------------------------------


def _integration(name: str) -> Integration:
    item = runtime().config.integration(name)
    if item is None:
        abort(404, f"No integration named {name}.")
    return item


def _stored_raw(name: str) -> dict[str, Any]:
    """The raw item of a UI integration (404 for a provisioned or unknown one)."""
    try:
        return runtime().overrides.raw(KIND, name)
    except NotFound:
        abort(404, f"Integration {name} was not made in the UI: it cannot be changed here.")
    raise AssertionError("unreachable")


def _writable(item: Integration) -> bool:
    return item.source is None and user().can("admin")


@blueprint.route("/")
def index() -> Any:
    config = runtime().config
    return render_template("admin/integrations/index.html", integrations=config.integrations)


@blueprint.route("/<name>")
def show(name: str) -> Any:
    item = _integration(name)
    rows = [{"name": a.name, "value": a.value} for a in item.custom_attributes]
    return _render_show(item, rows, {}, 200)


def _render_show(
    item: Integration,
    attribute_rows: list[dict[str, str]],
    attribute_errors: dict[int, Any],
    status: int,
    *,
    new_callback_token: str | None = None,
) -> Any:
    """The integration page; entry point rows carry their stored readings (one MGET, no ECE call)."""
    rt = runtime()
    now = time.time()
    readings = indicators.read_all(rt.redis, item.name, [ep.id for ep in item.entry_points])
    rows = {ep.name: indicators.as_dict(ep, readings.get(ep.id), now) for ep in item.entry_points}
    stale = any(r["checked_at"] is None or now - r["checked_at"] > STALE_SECONDS for r in rows.values())
    can_refresh = item.type == "ece" and user().can("editor")
    page = render_template(
        "admin/integrations/show.html",
        item=item,
        shown=masked(KIND, raw_shape.of(KIND, item)),
        rows=rows,
        writable=_writable(item),
        can_refresh=can_refresh,
        auto_refresh=stale and can_refresh and status == 200,
        now=now,
        callback_url=callback_url(rt, item.name),
        new_callback_token=new_callback_token,
        attribute_rows=attribute_rows,
        attribute_errors=attribute_errors,
    )
    return page, status


# -- integration settings ---------------------------------------------------------------------------


def settings_from_form(form: Mapping[str, str], base: Mapping[str, Any] | None) -> dict[str, Any]:
    """The raw item from the settings form; entry points, attributes and api_paths come from `base`
    (the stored item) since this form does not show them. An empty secret keeps the stored one."""
    raw: dict[str, Any] = {
        k: v for k, v in (base or {}).items() if k in ("entry_points", "custom_attributes", "api_paths")
    }
    raw["name"] = form.get("name", "").strip()
    raw["type"] = form.get("type", "ece")
    if raw["type"] == "hybrid":
        return raw  # runs in the connector: none of ECE's fields, whatever the form carried
    raw["base_url"] = form.get("base_url", "").strip()
    for optional in ("version", "client_key", "client_secret", "ca_bundle"):
        value = form.get(optional, "").strip()
        if value:
            raw[optional] = value
    raw["verify_tls"] = form.get("verify_tls") == "on"
    raw["max_in_flight"] = _number(form.get("max_in_flight", str(DEFAULT_MAX_IN_FLIGHT)))
    auth_type = form.get("callback_auth_type", "none")
    auth: dict[str, Any] = {"type": auth_type}
    token = form.get("callback_token", "").strip()
    if auth_type == "bearer" and (token or base is not None):
        auth["token"] = token or MASK  # empty: an edit keeps the stored token, a new item gets one made
    elif auth_type == "basic":
        auth["username"] = form.get("callback_username", "").strip()
        auth["password"] = form.get("callback_password", "") or MASK
    raw["callback_auth"] = auth
    return raw


def _form_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What the settings form shows: the raw item with secrets blanked (never sent to the browser)."""
    auth = raw.get("callback_auth") or {}
    return {
        "name": raw.get("name", ""),
        "type": raw.get("type", "ece"),
        "version": raw.get("version") or "",
        "base_url": raw.get("base_url", ""),
        "client_key": raw.get("client_key") or "",
        "verify_tls": raw.get("verify_tls", True) not in (False, "false", "False"),
        "ca_bundle": raw.get("ca_bundle") or "",
        "max_in_flight": raw.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT),
        "callback_auth_type": auth.get("type", "none"),
        "callback_username": auth.get("username") or "",
        "has": {
            "client_secret": bool(raw.get("client_secret")),
            "callback_token": bool(auth.get("token")),
            "callback_password": bool(auth.get("password")),
        },
    }


def _render_form(values: dict[str, Any], *, create: bool, errors: dict[str, list[str]], findings: list[Finding]) -> Any:
    status = 422 if errors or findings else 200
    return (
        render_template(
            "admin/integrations/form.html",
            values=values,
            create=create,
            errors=errors,
            findings=findings,
            callback_url=callback_url(runtime(), values.get("name") or "<name>"),
        ),
        status,
    )


def _submit(base: dict[str, Any] | None, *, create: bool) -> Any:
    raw = settings_from_form(request.form, base)
    test = request.form.get("action", "test") == "test"
    errors: dict[str, list[str]] = {}
    values = {**_form_values(raw), "has": _form_values(base or {})["has"]}  # what is stored, not what was typed
    try:
        with flash_store_errors(errors):
            saved = save_tested(runtime(), raw, create=create, test=test)
    except TestFailed as failed:
        what = "the ECE test" if raw.get("type") == "ece" else "the Hybrid Chat test (each queue must be enabled)"
        flash(f"Nothing was saved: {what} failed. Fix what it says below and try again.", "error")
        return _render_form(values, create=create, errors={}, findings=failed.findings)
    if errors:
        return _render_form(values, create=create, errors=errors, findings=[])
    item = saved.stored.item
    how = "tested and saved" if test and saved.findings else "saved"
    flash(" ".join(filter(None, [f"Integration {item.name} {how}.", test_summary(item, saved.findings)])), "success")
    if saved.callback_token is not None:  # shown this once, in this answer: never in a redirect or the session
        rows = [{"name": a.name, "value": a.value} for a in item.custom_attributes]
        return _render_show(_integration(item.name), rows, {}, 200, new_callback_token=saved.callback_token)
    return redirect(url_for(".show", name=item.name))


@blueprint.route("/new", methods=["GET", "POST"])
@requires("admin")
def create() -> Any:
    if request.method == "POST":
        return _submit(None, create=True)
    kind = request.args.get("type", "ece")
    # ECE's callbacks are authenticated from the start: bearer, with a token made at saving.
    values = _form_values(
        {"verify_tls": True, "type": kind if kind in TYPES else "ece", "callback_auth": {"type": "bearer"}}
    )
    return _render_form(values, create=True, errors={}, findings=[])


@blueprint.route("/<name>/edit", methods=["GET", "POST"])
@requires("admin")
def edit(name: str) -> Any:
    base = _stored_raw(name)
    if request.method == "POST":
        form = request.form.to_dict()
        if form.get("name", name) != name:
            flash("The name of an integration cannot change (rules refer to it).", "error")
        return _submit(base, create=False) if form.get("name", name) == name else redirect(url_for(".edit", name=name))
    return _render_form(_form_values(base), create=False, errors={}, findings=[])


@blueprint.route("/<name>/delete", methods=["POST"])
@requires("admin")
def delete(name: str) -> Any:
    rt = runtime()
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        rt.overrides.delete(KIND, name, rt.provisioned)
    if errors:
        return redirect(url_for(".show", name=name))
    rt.config_changed()
    flash(f"Integration {name} deleted.", "success")
    return redirect(url_for(".index"))


# -- entry points -----------------------------------------------------------------------------------


def _number(value: str) -> Any:
    """An integer when it is one; otherwise the text, for the schema to name the field."""
    text = value.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def skills_from_text(text: str) -> list[str]:
    """ "english, billing" or one per line → ["english", "billing"] (the schema checks each one)."""
    return [s for s in re.split(r"[\s,;]+", text.strip()) if s]


HYBRID_ONLY = ("skills", "priority", "offer_timeout_seconds", "inactivity_timeout_seconds")
"""A Hybrid Chat queue's own fields, kept as stored when an ECE entry point is edited."""

FORM_FIELDS = (
    "name",
    "enabled",
    "max_wait_seconds",
    "unavailable",
    "default_locale",
    "flow",
    "queue_status_after_seconds",
    "queue_status_interval_seconds",
    business_hours.FIELD,
)
"""The entry point fields the form shows for both types (with `id` for ECE, HYBRID_ONLY for Hybrid
Chat); every other stored field (`messages`, ...) is kept as stored."""


def _flow_names() -> list[str]:
    """What the entry point's flow select offers (the Flows page makes them)."""
    return [f.name for f in runtime().config.flows]


def entry_point_from_form(
    form: Mapping[str, str],
    base: Mapping[str, Any] | None,
    integration_type: str = "ece",
    unreadable: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The raw entry point. An ECE entry point has ECE's id; a Hybrid Chat queue has skills, a
    priority, an offer timeout and an inactivity timeout instead (its id, which defaults to its name,
    is kept as stored). Every field the form does not show is kept as stored: the message overrides
    (the template editor's), fields of the other type, and any field added later, so saving the form
    never drops what it cannot display. The `hours` calendar is the form's YAML text (empty: none); a
    text that cannot be read leaves it out and says why in `unreadable`."""
    hybrid = integration_type == "hybrid"
    shown = {*FORM_FIELDS, *(HYBRID_ONLY if hybrid else ["id"])}
    raw: dict[str, Any] = {k: v for k, v in (base or {}).items() if k not in shown}
    raw["name"] = form.get("name", "").strip()
    if hybrid:
        raw["skills"] = skills_from_text(form.get("skills", ""))
        raw["priority"] = _number(form.get("priority", "1"))
        raw["offer_timeout_seconds"] = _number(form.get("offer_timeout_seconds", "30"))
        raw["inactivity_timeout_seconds"] = _number(form.get("inactivity_timeout_seconds", "900"))
    else:
        raw["id"] = form.get("id", "").strip()
    raw["enabled"] = form.get("enabled") == "on"
    raw["max_wait_seconds"] = _number(form.get("max_wait_seconds", "120"))
    raw["unavailable"] = {
        "action": form.get("unavailable_action", "discard"),
        "after_seconds": _number(form.get("unavailable_after_seconds", "300")),
    }
    raw["default_locale"] = form.get("default_locale", "en").strip()
    if flow := form.get("flow", "").strip():
        raw["flow"] = flow
    for name in ("queue_status_after_seconds", "queue_status_interval_seconds"):
        if value := form.get(name, "").strip():
            raw[name] = _number(value)
    calendar = business_hours.calendar_from_text(
        form.get(business_hours.FIELD, ""), unreadable if unreadable is not None else {}
    )
    if calendar is not None:
        raw[business_hours.FIELD] = calendar
    return raw


def _entry_point_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    unavailable = raw.get("unavailable") or {}
    skills = raw.get("skills") or []
    return {
        "name": raw.get("name", ""),
        "id": raw.get("id", ""),
        "skills": ", ".join(str(s) for s in skills) if isinstance(skills, list) else str(skills),
        "priority": raw.get("priority", 1),
        "offer_timeout_seconds": raw.get("offer_timeout_seconds", 30),
        "inactivity_timeout_seconds": raw.get("inactivity_timeout_seconds", 900),
        "enabled": raw.get("enabled", True) not in (False, "false", "False"),
        "max_wait_seconds": raw.get("max_wait_seconds", 120),
        "unavailable_action": unavailable.get("action", "discard"),
        "unavailable_after_seconds": unavailable.get("after_seconds", 300),
        "default_locale": raw.get("default_locale", "en"),
        "flow": raw.get("flow") or "",
        "queue_status_after_seconds": raw.get("queue_status_after_seconds") or "",
        "queue_status_interval_seconds": raw.get("queue_status_interval_seconds") or "",
        "hours": business_hours.calendar_text(raw.get(business_hours.FIELD)),
    }


def _entry_point_errors(errors: Mapping[str, list[str]], index: int, skills: list[str]) -> dict[str, list[str]]:
    """The store's errors of entry point `index` by its own field names ("id", "unavailable.action");
    a skill's error ("skills.1") goes to the skills field, naming the skill; a calendar's ("hours.weekly.tue")
    to the calendar's text, naming where in it; anything else under "_schema"."""
    prefix = f"entry_points.{index}."
    mine: dict[str, list[str]] = {}
    for field, messages in errors.items():
        own = field.removeprefix(prefix) if field.startswith(prefix) else None
        if own is not None and own.partition(".")[0] == business_hours.FIELD:
            where = own.partition(".")[2]
            mine.setdefault(business_hours.FIELD, []).extend(f"{where}: {m}" if where else m for m in messages)
            continue
        if own is not None and own.startswith("skills.") and own.removeprefix("skills.").isdigit():
            position = int(own.removeprefix("skills."))
            skill = skills[position] if position < len(skills) else own
            mine.setdefault("skills", []).extend(f"{skill}: {m}" for m in messages)
            continue
        key = own.replace(".", "_") if own is not None else "_schema"
        mine.setdefault(key, []).extend(messages)
    return mine


def _save_entry_point(name: str, original: str | None) -> Any:
    rt = runtime()
    base = _stored_raw(name)
    entry_points = list(base.get("entry_points") or [])
    index = next((i for i, ep in enumerate(entry_points) if ep.get("name") == original), None)
    if original is not None and index is None:
        abort(404, f"Integration {name} has no entry point {original}.")
    item = _integration(name)
    unreadable: dict[str, list[str]] = {}
    new = entry_point_from_form(request.form, entry_points[index] if index is not None else None, item.type, unreadable)
    if index is None:
        index = len(entry_points)
        entry_points.append(new)
    else:
        entry_points[index] = new
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        # A calendar text that is not YAML is named alone; the other fields are still checked, unwritten.
        write = rt.overrides.prepared if unreadable else rt.overrides.save
        write(KIND, {**base, "entry_points": entry_points}, rt.provisioned, create=False)
    if errors or unreadable:
        shown = _entry_point_errors(errors, index, list(new.get("skills") or []))
        for field, messages in unreadable.items():
            shown.setdefault(field, []).extend(messages)
        if unreadable and not errors:
            flash("Nothing was saved: the business hours are not valid YAML (see beside them).", "error")
        values = {**_entry_point_values(new), "hours": request.form.get(business_hours.FIELD, "")}
        return (
            render_template(
                "admin/integrations/entry_point.html",
                item=item,
                original=original,
                values=values,
                errors=shown,
                flows=_flow_names(),
            ),
            422,
        )
    rt.config_changed()
    flash(f"Entry point {new['name']} saved.", "success")
    return redirect(url_for(".show", name=name, _anchor="entry-points"))


@blueprint.route("/<name>/entry-points/new", methods=["GET", "POST"])
@requires("admin")
def new_entry_point(name: str) -> Any:
    _stored_raw(name)
    if request.method == "POST":
        return _save_entry_point(name, None)
    values = _entry_point_values({})
    return render_template(
        "admin/integrations/entry_point.html",
        item=_integration(name),
        original=None,
        values=values,
        errors={},
        flows=_flow_names(),
    )


@blueprint.route("/<name>/entry-points/<entry_point>")
def show_entry_point(name: str, entry_point: str) -> Any:
    """An entry point's settings and its business hours as a week, with "open now" or when it opens
    next (anyone who may read the integration; the Edit link only where the form may be used)."""
    item = _integration(name)
    found = item.entry_point(entry_point)
    if found is None:
        abort(404, f"Integration {name} has no entry point {entry_point}.")
    hours = business_hours.view(found.hours, datetime.now(UTC)) if found.hours is not None else None
    return render_template(
        "admin/integrations/entry_point_show.html", item=item, ep=found, hours=hours, writable=_writable(item)
    )


@blueprint.route("/<name>/entry-points/<entry_point>/edit", methods=["GET", "POST"])
@requires("admin")
def edit_entry_point(name: str, entry_point: str) -> Any:
    base = _stored_raw(name)
    if request.method == "POST":
        return _save_entry_point(name, entry_point)
    found = next((ep for ep in base.get("entry_points") or [] if ep.get("name") == entry_point), None)
    if found is None:
        abort(404, f"Integration {name} has no entry point {entry_point}.")
    return render_template(
        "admin/integrations/entry_point.html",
        item=_integration(name),
        original=entry_point,
        values=_entry_point_values(found),
        errors={},
        flows=_flow_names(),
    )


@blueprint.route("/<name>/entry-points/<entry_point>/delete", methods=["POST"])
@requires("admin")
def delete_entry_point(name: str, entry_point: str) -> Any:
    rt = runtime()
    base = _stored_raw(name)
    kept = [ep for ep in base.get("entry_points") or [] if ep.get("name") != entry_point]
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        rt.overrides.save(KIND, {**base, "entry_points": kept}, rt.provisioned, create=False)
    if not errors:
        rt.config_changed()
        flash(f"Entry point {entry_point} removed.", "success")
    return redirect(url_for(".show", name=name, _anchor="entry-points"))


# -- custom attributes ------------------------------------------------------------------------------


def attributes_from_form(form: Any) -> list[dict[str, str]]:
    """The posted rows in page order, without the empty ones (emptying a row removes it); the page
    is re-rendered from this list, so an error "custom_attributes.1.name" lands on row 1 shown."""
    names, values = form.getlist("attr_name"), form.getlist("attr_value")
    return [
        {"name": n.strip(), "value": v.strip()} for n, v in zip(names, values, strict=False) if n.strip() or v.strip()
    ]


@blueprint.route("/<name>/attributes", methods=["POST"])
@requires("admin")
def save_attributes(name: str) -> Any:
    rt = runtime()
    base = _stored_raw(name)
    rows = attributes_from_form(request.form)
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        rt.overrides.save(KIND, {**base, "custom_attributes": rows}, rt.provisioned, create=False)
    if not errors:
        rt.config_changed()
        flash(f"Custom attributes of {name} saved.", "success")
        return redirect(url_for(".show", name=name, _anchor="custom-attributes"))
    by_row: dict[int, dict[str, list[str]]] = {}
    for field, messages in errors.items():
        parts = field.split(".")
        if len(parts) == 3 and parts[0] == "custom_attributes" and parts[1].isdigit() and int(parts[1]) < len(rows):
            by_row.setdefault(int(parts[1]), {}).setdefault(parts[2], []).extend(messages)
    return _render_show(_integration(name), rows, by_row, 422)


# -- indicator refresh without JavaScript -----------------------------------------------------------


@blueprint.route("/<name>/indicators/refresh", methods=["POST"])
def refresh_all(name: str) -> Any:
    item = _integration(name)
    if item.type != "ece":
        flash(f"Integration {name} is type {item.type}: it has no ECE to ask.", "error")
    else:
        readings = indicators.refresh_all(item, runtime().redis)
        failed = [n for n, r in readings.items() if r.error]
        flash(
            f"Indicators refreshed; no reading for {', '.join(failed)} (see the tooltips)."
            if failed
            else "Indicators refreshed.",
            "error" if failed else "success",
        )
    return redirect(url_for(".show", name=name, _anchor="entry-points"))


@blueprint.route("/<name>/entry-points/<entry_point>/indicators/refresh", methods=["POST"])
def refresh_one(name: str, entry_point: str) -> Any:
    item = _integration(name)
    ep = item.entry_point(entry_point)
    if ep is None:
        abort(404, f"Integration {name} has no entry point {entry_point}.")
    if item.type != "ece":
        flash(f"Integration {name} is type {item.type}: it has no ECE to ask.", "error")
    else:
        reading = indicators.refresh(item, ep, runtime().redis)
        if reading.error:
            flash(f"No reading for {entry_point}: {reading.error}", "error")
        else:
            flash(f"Indicators of {entry_point} refreshed.", "success")
    return redirect(url_for(".show", name=name, _anchor="entry-points"))
