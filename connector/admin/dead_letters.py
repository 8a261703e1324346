"""Placeholder until this area is built (issue 5)."""

from __future__ import annotations

from flask import Blueprint

from connector.admin.access import guard

blueprint = guard(Blueprint("admin_dead_letters", __name__, url_prefix="/admin/dead-letters"))


@blueprint.route("/")
def index() -> str:
    return "not built yet"
