"""Agents in the operator UI: each agent's voice and chat states as media blending knows them, the
last agent sync and its outcome, and "Sync now" (editors and admins; a plain form, no JavaScript).
Each agent's Hybrid Chat settings (skills, most chats) with an edit form, and the local agents of a
deployment without Finesse ("Add a local agent": login, name, password, skills, most chats).

The page reads the registry only (connector/operations/agents.py); it never calls Finesse. A sync is
asked of the listener, which runs it within a second and records its outcome for the next page.
Hybrid Chat settings are `hybrid_agents` items, saved through the config store: provisioned ones are
read-only with their file; a password is stored as its hash only, never shown ("set" / "not set"),
and an empty password field keeps it. Editors and admins change them (the guard refuses viewers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from connector.admin.access import flash_store_errors, guard, requires, runtime, user
from connector.admin.integrations import skills_from_text
from connector.config.overrides import NotFound
from connector.operations import agents
from connector.operations.finesse import NotConfigured

blueprint = guard(Blueprint("admin_agents", __name__, url_prefix="/admin/agents"))


def _matches(row: agents.AgentRow, query: str) -> bool:
    """The search box: login, name, team or Finesse id contains the text (any case)."""
    needle = query.casefold()
    return any(needle in (value or "").casefold() for value in (row.id, row.login_name, row.name, row.team))


@blueprint.route("/")
def index() -> Any:
    rt = runtime()
    finesse = rt.config.finesse
    rows = agents.listing(rt)
    query = request.args.get("q", "").strip()
    shown = [row for row in rows if _matches(row, query)] if query else rows
    config = rt.config
    hybrid = agents.hybrid_agents(config)
    synced = {(row.login_name or "").casefold() for row in rows}
    return render_template(
        "admin/agents/index.html",
        agents=shown,
        total=len(rows),
        query=query,
        finesse=finesse,
        sync=agents.sync_status(rt.redis, finesse),
        settings={row.id: agents.hybrid_settings(config, row.login_name) for row in shown if row.login_name},
        local_agents=[h for h in hybrid if h.local],
        unsynced=[h for h in hybrid if not h.local and h.login.casefold() not in synced],
        can_edit=user().can("editor"),
    )


@blueprint.route("/sync", methods=["POST"])
def sync() -> Any:
    """Editors and admins (the guard refuses viewers and a missing CSRF token)."""
    try:
        agents.request_sync(runtime())
    except NotConfigured as exc:
        flash(f"No sync: {exc}.", "error")
    else:
        flash(
            "Agent sync requested: the listener runs it within a second. Reload this page to see its outcome.",
            "success",
        )
    return redirect(url_for(".index"))


# -- Hybrid Chat settings and local agents ------------------------------------------------------------


def agent_from_form(
    form: Mapping[str, str], base: Mapping[str, Any], *, login: str | None, local: bool
) -> dict[str, Any]:
    """The raw `hybrid_agents` item: the stored one's other fields kept (a Finesse agent's form shows
    only skills and most chats); an empty password is left out, so the stored hash is kept."""
    raw: dict[str, Any] = {k: v for k, v in base.items() if k in ("name",)}
    raw["login"] = login if login is not None else form.get("login", "").strip()
    if local:
        name = form.get("name", "").strip()
        if name:
            raw["name"] = name
        else:
            raw.pop("name", None)
        if form.get("password"):
            raw["password"] = form["password"]
    raw["skills"] = skills_from_text(form.get("skills", ""))
    max_chats = form.get("max_chats", "").strip()
    if max_chats:
        raw["max_chats"] = int(max_chats) if max_chats.isdigit() else max_chats
    return raw


def _form_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    skills = raw.get("skills") or []
    return {
        "login": raw.get("login", ""),
        "name": raw.get("name") or "",
        "skills": ", ".join(str(s) for s in skills) if isinstance(skills, list | tuple) else str(skills),
        "max_chats": raw.get("max_chats") or "",
    }


def _field_errors(errors: Mapping[str, list[str]], skills: list[str]) -> dict[str, list[str]]:
    """The store's errors by form field: a skill's ("skills.1") on the skills field, naming the skill."""
    shown: dict[str, list[str]] = {}
    for field, messages in errors.items():
        if field.startswith("skills.") and field.removeprefix("skills.").isdigit():
            position = int(field.removeprefix("skills."))
            skill = skills[position] if position < len(skills) else field
            shown.setdefault("skills", []).extend(f"{skill}: {m}" for m in messages)
        elif field in ("login", "name", "password", "password_hash", "skills", "max_chats"):
            shown.setdefault("password" if field == "password_hash" else field, []).extend(messages)
        else:
            shown.setdefault("_schema", []).extend(messages)
    return shown


def _render_form(
    values: dict[str, Any], row: agents.HybridAgentRow | None, *, local: bool, errors: dict[str, list[str]]
) -> Any:
    page = render_template(
        "admin/agents/hybrid_form.html",
        values=values,
        row=row,
        local=local,
        create=row is None or not row.configured,
        new_local=local and row is None,
        default_max_chats=agents.default_max_chats(runtime().config),
        errors=errors,
    )
    return page, 422 if errors else 200


def _save(raw: dict[str, Any], row: agents.HybridAgentRow | None, *, local: bool, create: bool | None) -> Any:
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        saved = agents.save_hybrid_agent(runtime(), raw, create=create, local=local)
    if errors:
        return _render_form(_form_values(raw), row, local=local, errors=_field_errors(errors, list(raw["skills"])))
    what = "Local agent" if saved.local else "Hybrid Chat settings of"
    flash(f"{what} {saved.login} saved.", "success")
    return redirect(url_for(".index", _anchor="local-agents" if saved.local else f"hybrid-{saved.login}"))


def _stored(login: str) -> dict[str, Any]:
    try:
        return runtime().overrides.raw_agent(login)
    except NotFound:
        return {}


@blueprint.route("/local/new", methods=["GET", "POST"])
@requires("editor")  # the form too: a viewer is not shown one they cannot submit
def new_local() -> Any:
    """Add a local agent (a deployment without Finesse): login, name, password, skills, most chats."""
    if request.method == "POST":
        raw = agent_from_form(request.form, {}, login=None, local=True)
        return _save(raw, None, local=True, create=True)
    return _render_form(_form_values({}), None, local=True, errors={})


@blueprint.route("/hybrid/<login>", methods=["GET", "POST"])
@requires("editor")
def edit_hybrid(login: str) -> Any:
    """An agent's Hybrid Chat settings: a Finesse agent's skills and most chats, or a local agent's
    name, password (empty keeps it), skills and most chats. Provisioned ones are read-only (409)."""
    row = agents.hybrid_settings(runtime().config, login)
    if row.read_only:
        if request.method == "POST":
            abort(409, f"The settings of {row.login} are defined in {row.source} and are read-only here.")
        flash(f"The settings of {row.login} are defined in {row.source}: change that file.", "error")
        return redirect(url_for(".index"))
    if request.method == "POST":
        raw = agent_from_form(request.form, _stored(login), login=row.login, local=row.local)
        return _save(raw, row, local=row.local, create=None)
    return _render_form(_form_values({**_stored(login), "login": row.login}), row, local=row.local, errors={})


@blueprint.route("/hybrid/<login>/delete", methods=["POST"])
def delete_hybrid(login: str) -> Any:
    """Remove settings made here: a Finesse agent goes back to the defaults, a local agent is removed."""
    row = agents.hybrid_settings(runtime().config, login)
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        agents.delete_hybrid_agent(runtime(), login)
    if not errors:
        flash(
            f"Local agent {row.login} removed: they can no longer log in."
            if row.local
            else f"Hybrid Chat settings of {row.login} removed: the defaults apply.",
            "success",
        )
    return redirect(url_for(".index", _anchor="local-agents" if row.local else None))
