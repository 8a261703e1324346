"""Placeholder until this area is built (issue 5)."""

from __future__ import annotations

from flask import Blueprint

from connector.admin.access import guard

blueprint = guard(Blueprint("admin_rules", __name__, url_prefix="/admin/rules"))


@blueprint.route("/")
def index() -> str:
    return "not built yet"
