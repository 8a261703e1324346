"""Dead letters: list, inspect, requeue (the item goes back to its conversation's box) and delete.
Requeue and delete need the admin role, as in the UI."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from connector.api.access import PageSchema, abort, api_blueprint, requires, runtime
from connector.operations import conversations
from connector.operations.dead_letters import conversation_of, requeue_letter
from connector.store import dead_letters, keys

blueprint = api_blueprint("dead_letters", "/dead-letters", "Dead letters: failed items to requeue or delete")


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class ConversationRefSchema(Schema):
    channel = fields.String(required=True)
    asset = fields.String(required=True)
    customer = fields.String(required=True)
    state = fields.String(required=True, metadata={"description": "empty when the thread was never written"})


class DeadLetterSchema(Schema):
    id = fields.String(required=True)
    thread = fields.String(required=True, metadata={"description": "the conversation (thread) id"})
    box = fields.String(required=True, metadata={"description": "in: from the customer; out: to the customer"})
    reason = fields.String(required=True)
    at = fields.Float(required=True)
    attempts = fields.Integer(required=True)
    payload = fields.Raw(required=True, metadata={"description": "the item, parsed when it is JSON"})
    conversation = fields.Nested(ConversationRefSchema, allow_none=True)


class DeadLetterPageSchema(PageSchema):
    items = fields.List(fields.Nested(DeadLetterSchema), required=True)
    total = fields.Integer(required=True)


class RequeuedSchema(Schema):
    id = fields.String(required=True)
    thread = fields.String(required=True)
    box = fields.String(required=True)
    requeued = fields.Boolean(required=True)


def _dump(letter: dead_letters.DeadLetter, threads: dict[str, conversations.Summary]) -> dict[str, Any]:
    return {
        "id": letter.id,
        "thread": letter.thread,
        "box": letter.box,
        "reason": letter.reason,
        "at": letter.at,
        "attempts": letter.attempts,
        "payload": letter.payload(),
        "conversation": conversation_of(letter, threads),
    }


@blueprint.route("")
@blueprint.arguments(PageArgs, location="query")
@blueprint.response(200, DeadLetterPageSchema)
def list_dead_letters(args: dict[str, Any]) -> dict[str, Any]:
    """Dead letters, newest first."""
    redis = runtime().redis
    page, per_page = args["page"], args["per_page"]
    letters = dead_letters.listing(redis, (page - 1) * per_page, per_page + 1)
    shown = letters[:per_page]
    threads = conversations.who(redis, (letter.thread for letter in shown))
    return {
        "items": [_dump(letter, threads) for letter in shown],
        "page": page,
        "per_page": per_page,
        "has_next": len(letters) > per_page,
        "total": redis.llen(keys.dead_letters()),
    }


def _letter(letter_id: str) -> dead_letters.DeadLetter:
    letter = dead_letters.get(runtime().redis, letter_id)
    if letter is None:
        abort(404, message=f"no dead letter {letter_id}: it was requeued or deleted")
    return letter


@blueprint.route("/<letter_id>")
@blueprint.response(200, DeadLetterSchema)
@blueprint.alt_response(404, response="NOT_FOUND")
def get_dead_letter(letter_id: str) -> dict[str, Any]:
    """One dead letter with its payload."""
    letter = _letter(letter_id)
    return _dump(letter, conversations.who(runtime().redis, [letter.thread]))


@blueprint.route("/<letter_id>", methods=["DELETE"])
@requires("admin")
@blueprint.response(204)
@blueprint.alt_response(403, response="FORBIDDEN")
@blueprint.alt_response(404, response="NOT_FOUND")
def delete_dead_letter(letter_id: str) -> None:
    """Delete a dead letter for good (admin)."""
    if not dead_letters.delete(runtime().redis, letter_id):
        abort(404, message=f"no dead letter {letter_id}: it was requeued or deleted")


@blueprint.route("/<letter_id>/requeue", methods=["POST"])
@requires("admin")
@blueprint.response(200, RequeuedSchema)
@blueprint.alt_response(403, response="FORBIDDEN")
@blueprint.alt_response(404, response="NOT_FOUND")
def requeue_dead_letter(letter_id: str) -> dict[str, Any]:
    """Put the item back at the end of its conversation's box and wake a worker (admin). Fix the
    cause the reason names first, or it fails again."""
    letter = requeue_letter(runtime(), letter_id)
    if letter is None:
        abort(404, message=f"no dead letter {letter_id}: it was requeued or deleted")
    return {"id": letter.id, "thread": letter.thread, "box": letter.box, "requeued": True}
