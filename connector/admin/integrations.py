"""Placeholder until this area is built (issue 5)."""

from __future__ import annotations

from flask import Blueprint

from connector.admin.access import guard

blueprint = guard(Blueprint("admin_integrations", __name__, url_prefix="/admin/integrations"))


@blueprint.route("/")
def index() -> str:
    return "not built yet"
