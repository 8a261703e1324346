"""Conversations: the recent list with search, filters and pages, and one conversation's timeline and
pending work.

Pages read Redis only (connector/operations/conversations.py); message text is shown to operators
here, as their job needs, and never logged.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from connector.admin.access import guard, runtime
from connector.config.schemas import CHANNELS
from connector.operations import conversations as view

blueprint = guard(Blueprint("admin_conversations", __name__, url_prefix="/admin/conversations"))

MAX_PAGE = 1_000_000


def entry_point_choices() -> list[str]:
    """`integration/entry point` of every configured entry point, for the filter's options."""
    return [f"{i.name}/{ep.name}" for i in runtime().config.integrations for ep in i.entry_points]


def page_asked(value: str, problems: list[str]) -> int:
    """The page number of the query string; anything else is page 1, and the operator is told."""
    if value.isdigit() and int(value) >= 1:
        return min(int(value), MAX_PAGE)
    if value:
        problems.append(f"Page {value[:20]!r} is not a page number: showing page 1.")
    return 1


@blueprint.route("/")
def index() -> Any:
    filters, problems = view.parse_filters(request.args, CHANNELS)
    asked = page_asked(request.args.get("page", ""), problems)
    found = view.listing(runtime().redis, filters, page=asked, clamp=True)
    if found.page < asked:
        problems.append(f"There is no page {asked}: showing the last page, {found.page}.")
    return render_template(
        "admin/conversations/index.html",
        listing=found,
        filters=filters,
        query=filters.query(),
        problems=problems,
        channels=CHANNELS,
        states=view.STATES,
        entry_points=entry_point_choices(),
    )


@blueprint.route("/<thread_id>")
def show(thread_id: str) -> Any:
    found = view.detail(runtime().redis, thread_id)
    if found is None:
        abort(404, f"No conversation {thread_id}: it may have expired; go back to the list.")
    return render_template("admin/conversations/show.html", detail=found, steps=view.steps(found.timeline))
