"""Dead letters: items that failed permanently or ran out of retries, with the reason; an admin
requeues them (once the cause is fixed) or deletes them, each after a confirmation."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from connector.admin.access import guard, requires, runtime
from connector.operations import conversations
from connector.operations.dead_letters import conversation_of, requeue_letter
from connector.store import dead_letters, keys
from connector.store.boxes import Box

log = logging.getLogger(__name__)
blueprint = guard(Blueprint("admin_dead_letters", __name__, url_prefix="/admin/dead-letters"))

PER_PAGE = 50
BOX_NAMES = {Box.IN.value: "inbox (from the customer)", Box.OUT.value: "outbox (to the customer)"}


@blueprint.route("/")
def index() -> Any:
    asked = request.args.get("page", "1")
    page = min(int(asked), 1_000_000) if asked.isdigit() and int(asked) > 0 else 1
    redis = runtime().redis
    letters = dead_letters.listing(redis, (page - 1) * PER_PAGE, PER_PAGE + 1)
    shown = letters[:PER_PAGE]
    rows = conversations.who(redis, (letter.thread for letter in shown))
    return render_template(
        "admin/dead_letters/index.html",
        letters=[(letter, conversation_of(letter, rows)) for letter in shown],
        total=redis.llen(keys.dead_letters()),
        page=page,
        has_next=len(letters) > PER_PAGE,
        boxes=BOX_NAMES,
    )


@blueprint.route("/<letter_id>")
def show(letter_id: str) -> Any:
    redis = runtime().redis
    letter = dead_letters.get(redis, letter_id)
    if letter is None:
        abort(404, "No such dead letter: it was requeued or deleted.")
    return render_template(
        "admin/dead_letters/show.html",
        letter=letter,
        payload=json.dumps(letter.payload(), indent=2, sort_keys=True, ensure_ascii=False),
        thread=conversation_of(letter, conversations.who(redis, [letter.thread])),
        boxes=BOX_NAMES,
    )


@blueprint.route("/<letter_id>/requeue", methods=["POST"])
@requires("admin")
def requeue(letter_id: str) -> Any:
    if requeue_letter(runtime(), letter_id) is None:
        flash("That dead letter is gone: someone requeued or deleted it already.", "error")
    else:
        flash("Requeued: the item is back in its conversation's box and will be tried again.", "success")
    return redirect(url_for(".index"))


@blueprint.route("/requeue", methods=["POST"])
@requires("admin")
def requeue_selected() -> Any:
    ids = request.form.getlist("ids")
    done = sum(requeue_letter(runtime(), letter_id) is not None for letter_id in ids)
    if not ids:
        flash("Select the dead letters to requeue first.", "error")
    else:
        flash(f"Requeued {done} of {len(ids)} dead letter(s).", "success" if done == len(ids) else "error")
    return redirect(url_for(".index"))


@blueprint.route("/<letter_id>/delete", methods=["POST"])
@requires("admin")
def delete(letter_id: str) -> Any:
    if dead_letters.delete(runtime().redis, letter_id):
        log.info("dead letter deleted", extra={"dead_letter": letter_id})
        flash("Dead letter deleted.", "success")
    else:
        flash("That dead letter is gone already.", "error")
    return redirect(url_for(".index"))
