"""Agents in the operator UI: each agent's voice and chat states as media blending knows them, the
last agent sync and its outcome, and "Sync now" (editors and admins; a plain form, no JavaScript).

The page reads the registry only (connector/operations/agents.py); it never calls Finesse. A sync is
asked of the listener, which runs it within a second and records its outcome for the next page.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from connector.admin.access import guard, runtime
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
    return render_template(
        "admin/agents/index.html",
        agents=shown,
        total=len(rows),
        query=query,
        finesse=finesse,
        sync=agents.sync_status(rt.redis, finesse),
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
