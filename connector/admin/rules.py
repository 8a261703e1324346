"""The rules page: every rule in evaluation order (provisioned ones read-only but movable), up / down
and drag-and-drop reordering, create / edit / delete of UI rules, and the "which rule would this
message match?" tester.

The tester is a GET form: it changes nothing, so viewers use it under the same guard as every page.
Reordering without JavaScript posts one move at a time; rules.js drags and saves the whole order
through `PUT /api/v1/rules/order`. Both end in `ConfigOverrides.set_rule_order`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from connector.admin.access import flash_store_errors, guard, requires, runtime
from connector.channels import channel_class
from connector.config import model
from connector.config.overrides import ConfigInvalid, NotFound
from connector.config.schemas import CHANNELS, LANGUAGE_PATTERN, RULE_EVENTS
from connector.operations import rules

blueprint = guard(Blueprint("admin_rules", __name__, url_prefix="/admin/rules"))


def _choices(config: model.Config) -> dict[str, Any]:
    """What the form's selects offer: assets by channel, entry points by integration."""
    return {
        "channels": CHANNELS,
        "events": RULE_EVENTS,
        "assets": {c: sorted(a.name for a in config.assets if a.channel == c) for c in CHANNELS},
        "integrations": {i.name: [ep.name for ep in i.entry_points] for i in config.integrations},
        "flows": [f.name for f in config.flows],
    }


def _tester(config: model.Config, args: MultiDict[str, str]) -> tuple[Any, dict[str, list[str]]]:
    """The tester's answer for the query string, or the fields it could not use."""
    if "channel" not in args:
        return None, {}
    day_text = args.get("date", "").strip()
    try:
        day = date.fromisoformat(day_text) if day_text else datetime.now(UTC).date()
    except ValueError:
        return None, {"date": ["use a date like 2026-05-01"]}
    try:
        language = args.get("language", "").strip().lower() or None
        if language is not None and not LANGUAGE_PATTERN.match(language):
            return None, {"language": ["a language code like es"]}
        channel, asset, text = args.get("channel", ""), args.get("asset", ""), args.get("text", "")
        answer = rules.which_rule(config, channel, asset, text, day, language)
    except ConfigInvalid as exc:
        return None, exc.errors
    return answer, {}


@blueprint.route("/")
def index() -> str:
    config = runtime().config
    answer, tester_errors = _tester(config, request.args)
    return render_template(
        "admin/rules/index.html",
        rows=rules.listing(config),
        answer=answer,
        tester_errors=tester_errors,
        probe=request.args,
        **_choices(config),
    )


@blueprint.route("/<name>/move", methods=["POST"])
def move(name: str) -> Any:
    """One step up or down (the keyboard / no-JS way); provisioned rules move too."""
    offset = {"up": -1, "down": 1, "top": -(10**6), "bottom": 10**6}.get(request.form.get("direction", ""), 0)
    rt = runtime()
    with flash_store_errors():
        order = rules.moved(rt.config, name, offset)
        rt.overrides.set_rule_order(order, rt.config)
        rt.config_changed()
        flash(f"Rule {name} is now number {order.index(name) + 1}.", "success")
    return redirect(url_for(".index", _anchor=f"rule-{name}"))


# -- create / edit / delete -------------------------------------------------------------------------


def _raw_of(form: MultiDict[str, str]) -> dict[str, Any]:
    """The form as the YAML shape; empty optional fields are left out (null in YAML)."""
    raw: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "channel": form.get("channel", ""),
        "event": form.get("event", ""),
        "asset": form.get("asset", ""),
        "action": {"forward_to": form.get("forward_to", ""), "entry_point": form.get("entry_point", "")},
        "status": form.get("status", "active"),
    }
    if flow := form.get("flow", "").strip():
        raw["action"]["flow"] = flow
    for optional in ("keyword", "language", "start", "end"):
        value = form.get(optional, "").strip()
        if value:
            raw[optional] = value
    return raw


def _form(raw: dict[str, Any], errors: dict[str, list[str]], *, creating: bool, status: int = 200) -> Any:
    config = runtime().config
    page = render_template("admin/rules/form.html", rule=raw, errors=errors, creating=creating, **_choices(config))
    return page, status


@blueprint.route("/new", methods=["GET", "POST"])
@requires("editor")  # the form too: a viewer is not shown one they cannot submit
def create() -> Any:
    if request.method == "GET":
        channel = request.args.get("channel", "sms")
        cls = channel_class(channel)
        event = cls.message_event if cls else ""
        return _form({"channel": channel, "event": event, "status": "active", "action": {}}, {}, creating=True)
    raw = _raw_of(request.form)
    done = f"Rule {raw.get('name')} created; it is evaluated last of the rules (move it where it belongs)."
    return _save(raw, creating=True, done=done)


def _save(raw: dict[str, Any], *, creating: bool, done: str) -> Any:
    """Write the form's rule: back to the form with the errors beside their fields, or to the list."""
    errors: dict[str, list[str]] = {}
    rt = runtime()
    with flash_store_errors(errors):
        rt.overrides.save("rules", raw, rt.provisioned, create=creating)
    if errors:
        return _form(raw, errors, creating=creating, status=422)
    rt.config_changed()
    flash(done, "success")
    return redirect(url_for(".index", _anchor=f"rule-{raw['name']}"))


@blueprint.route("/<name>/edit", methods=["GET", "POST"])
@requires("editor")
def edit(name: str) -> Any:
    rt = runtime()
    provisioned = next((r for r in rt.provisioned.rules if r.name == name), None)
    if provisioned is not None:
        flash(f"Rule {name} is defined in {provisioned.source} and is read-only here: change it in that file.", "error")
        return redirect(url_for(".index", _anchor=f"rule-{name}"))
    if request.method == "GET":
        try:
            return _form(rt.overrides.raw("rules", name), {}, creating=False)
        except NotFound:
            flash(f"There is no rule {name}: it may have been deleted.", "error")
            return redirect(url_for(".index"))
    return _save({**_raw_of(request.form), "name": name}, creating=False, done=f"Rule {name} saved.")


@blueprint.route("/<name>/delete", methods=["POST"])
def delete(name: str) -> Any:
    rt = runtime()
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        rt.overrides.delete("rules", name, rt.provisioned)
    if not errors:
        rt.config_changed()
        flash(f"Rule {name} deleted.", "success")
    return redirect(url_for(".index"))
