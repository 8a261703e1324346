"""Unrouted messages: customer messages that matched no rule (and no default rule), newest first,
with why each rule passed them over, so an operator can add or fix the rule. The overview counts
them and links here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from connector.admin.access import guard, runtime
from connector.operations import conversations
from connector.store import unrouted

blueprint = guard(Blueprint("admin_unrouted", __name__, url_prefix="/admin/unrouted"))

PER_PAGE = 50


@blueprint.route("/")
def index() -> Any:
    asked = request.args.get("page", "1")
    page = min(int(asked), unrouted.LIMIT) if asked.isdigit() and int(asked) > 0 else 1
    redis = runtime().redis
    found = unrouted.listing(redis, (page - 1) * PER_PAGE, PER_PAGE + 1)
    shown = found[:PER_PAGE]
    who = conversations.who(redis, {str(entry.get("thread", "")) for entry in shown if entry.get("thread")})
    return render_template(
        "admin/unrouted/index.html",
        entries=shown,
        who=who,
        total=unrouted.total(redis),
        limit=unrouted.LIMIT,
        page=page,
        has_next=len(found) > PER_PAGE,
    )
