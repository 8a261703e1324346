"""Conversations: the recent list with filters, and one conversation's timeline and pending work.

Pages read Redis only (connector/operations/conversations.py); message text is shown to operators
here, as their job needs, and never logged.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from connector.admin.access import guard, runtime
from connector.config.schemas import CHANNELS
from connector.conversations import State
from connector.operations import conversations as view

blueprint = guard(Blueprint("admin_conversations", __name__, url_prefix="/admin/conversations"))

STATES = (view.ACTIVE, *(s.value for s in State))
MAX_PAGE = 1_000_000


def filters_from(args: Any) -> view.Filters:
    """The filters of a query string; values outside the known sets are ignored, not errors."""
    channel = args.get("channel", "")
    state = args.get("state", "")
    return view.Filters(
        channel=channel if channel in CHANNELS else "",
        entry_point=args.get("entry_point", "").strip()[:200],
        state=state if state in STATES else "",
        agent=args.get("agent", "").strip()[:200],
    )


def entry_point_choices() -> list[str]:
    """`integration/entry point` of every configured entry point, for the filter's options."""
    return [f"{i.name}/{ep.name}" for i in runtime().config.integrations for ep in i.entry_points]


@blueprint.route("/")
def index() -> Any:
    filters = filters_from(request.args)
    page = request.args.get("page", "1")
    number = min(int(page), MAX_PAGE) if page.isdigit() else 1
    found = view.listing(runtime().redis, filters, page=number)
    query = {k: v for k, v in vars(filters).items() if v}
    return render_template(
        "admin/conversations/index.html",
        listing=found,
        filters=filters,
        query=query,
        channels=CHANNELS,
        states=STATES,
        entry_points=entry_point_choices(),
    )


@blueprint.route("/<thread_id>")
def show(thread_id: str) -> Any:
    found = view.detail(runtime().redis, thread_id)
    if found is None:
        abort(404, f"No conversation {thread_id}: it may have expired; go back to the list.")
    return render_template("admin/conversations/show.html", detail=found, steps=view.steps(found.timeline))
