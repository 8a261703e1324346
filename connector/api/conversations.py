"""Conversations: the recent list with filters, and one conversation with its timeline and what is
pending now. Read-only; answers come from Redis alone (connector/operations/conversations.py)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from connector.api.access import PageSchema, abort, api_blueprint, runtime
from connector.config.schemas import CHANNELS
from connector.operations import conversations as view

blueprint = api_blueprint("conversations", "/conversations", "Conversations: list, timeline and pending items")


class ListArgs(Schema):
    """The list's query string: the same names and meanings as the operator UI's list
    (connector/operations/conversations.py, `Filters`)."""

    q = fields.String(
        validate=validate.Length(max=view.TEXT_FILTER_LIMIT),
        metadata={"description": "part of the customer's id, name or first message text, in any case"},
    )
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    entry_point = fields.String(
        validate=validate.Length(max=view.TEXT_FILTER_LIMIT),
        metadata={"description": "entry point name, or integration/name"},
    )
    state = fields.String(
        validate=validate.OneOf(view.STATES), metadata={"description": "a state, or active (not closed)"}
    )
    agent = fields.String(
        validate=validate.Length(max=view.TEXT_FILTER_LIMIT), metadata={"description": "part of the agent's name or id"}
    )
    from_ = fields.Date(
        data_key="from", metadata={"description": "first day (YYYY-MM-DD, UTC, included) of the last activity"}
    )
    to = fields.Date(metadata={"description": "last day (YYYY-MM-DD, UTC, included) of the last activity"})
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=1_000_000),
        metadata={"description": "beyond the last page: no items (`pages` says how many there are)"},
    )
    per_page = fields.Integer(load_default=view.PER_PAGE, validate=validate.Range(min=1, max=200))

    @validates_schema
    def _dates_in_order(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError("must not be after `to`", field_name="from")


class SummarySchema(Schema):
    id = fields.String(required=True)
    last_activity = fields.Float(required=True)
    channel = fields.String(required=True)
    asset = fields.String(required=True)
    customer = fields.String(required=True)
    customer_name = fields.String(allow_none=True)
    first_text = fields.String(
        allow_none=True, metadata={"description": "the conversation's first message text, as kept for search"}
    )
    state = fields.String(required=True)
    integration = fields.String(allow_none=True)
    entry_point = fields.String(allow_none=True)
    rule = fields.String(allow_none=True)
    agent = fields.String(allow_none=True)
    agent_id = fields.String(allow_none=True)


class ListingSchema(PageSchema):
    items = fields.List(fields.Nested(SummarySchema), required=True)
    matched = fields.Integer(
        required=True, metadata={"description": "conversations matching the filters (among `scanned` if truncated)"}
    )
    pages = fields.Integer(required=True, metadata={"description": "pages of `matched` conversations, at least 1"})
    total = fields.Integer(required=True, metadata={"description": "conversations known, whatever the filters"})
    scanned = fields.Integer(required=True)
    truncated = fields.Boolean(
        required=True,
        metadata={"description": "the search stopped at the most recent ones: older ones may match too"},
    )


class ConversationSchema(Schema):
    id = fields.String(required=True)
    channel = fields.String(required=True)
    asset = fields.String(required=True)
    customer = fields.String(required=True)
    customer_name = fields.String(allow_none=True)
    first_text = fields.String(allow_none=True, metadata={"description": "the conversation's first message text"})
    details = fields.Dict(required=True)
    state = fields.String(required=True)
    sequence = fields.Integer(required=True)
    conversation_id = fields.String(required=True)
    rule = fields.String(allow_none=True)
    integration = fields.String(allow_none=True)
    entry_point = fields.String(allow_none=True)
    remote_id = fields.String(allow_none=True, metadata={"description": "the ECE conversation id"})
    agent_id = fields.String(allow_none=True)
    agent_name = fields.String(allow_none=True)
    started_at = fields.Float(allow_none=True)
    last_inbound_at = fields.Float(allow_none=True)
    queued_at = fields.Float(allow_none=True)
    unavailable_until = fields.Float(allow_none=True)
    last_activity = fields.Float(allow_none=True)


class RetrySchema(Schema):
    attempts = fields.Integer(required=True)
    first_failure_at = fields.Float(allow_none=True)
    until = fields.Float(allow_none=True)


class BoxSchema(Schema):
    length = fields.Integer(required=True)
    items = fields.List(fields.Raw(), required=True, metadata={"description": f"the first {view.PENDING_SHOWN}"})
    retry = fields.Nested(RetrySchema, allow_none=True)


class PendingSchema(Schema):
    inbox = fields.Nested(BoxSchema, required=True)
    outbox = fields.Nested(BoxSchema, required=True)
    lease_ms = fields.Integer(allow_none=True, metadata={"description": "set while a worker holds the thread"})
    wake_queued = fields.Boolean(required=True)
    stuck_reason = fields.String(allow_none=True)


class DetailSchema(Schema):
    conversation = fields.Nested(ConversationSchema, required=True)
    timeline = fields.List(fields.Dict(), required=True, metadata={"description": "oldest first"})
    pending = fields.Nested(PendingSchema, required=True)


@blueprint.route("")
@blueprint.arguments(ListArgs, location="query")
@blueprint.response(200, ListingSchema)
def list_conversations(args: dict[str, Any]) -> dict[str, Any]:
    """Conversations, newest activity first: searched by customer id, name or first message text,
    filtered by state, entry point, agent, channel and days of last activity; `matched` and `pages`
    count what the filters select."""
    filters = view.Filters(
        channel=args.get("channel", ""),
        entry_point=args.get("entry_point", "").strip(),
        state=args.get("state", ""),
        agent=args.get("agent", "").strip(),
        search=args.get("q", "").strip(),
        since=args.get("from_"),
        until=args.get("to"),
    )
    found = view.listing(runtime().redis, filters, page=args["page"], per_page=args["per_page"])
    return {
        **vars(found),
        "pages": found.pages,
        "has_next": found.has_next,
        "items": [{**vars(row), "state": row.state.value} for row in found.items],
    }


@blueprint.route("/<thread_id>")
@blueprint.response(200, DetailSchema)
@blueprint.alt_response(404, response="NOT_FOUND")
def get_conversation(thread_id: str) -> dict[str, Any]:
    """One conversation: who, routing, state, agent, its whole timeline and what is pending now."""
    found = view.detail(runtime().redis, thread_id)
    if found is None:
        abort(404, message=f"no conversation {thread_id}")
    thread = found.thread
    pending = found.pending
    return {
        "conversation": {
            **vars(thread),
            "state": thread.state.value,
            "conversation_id": thread.conversation_id,
            "customer_name": thread.customer_name,
            "last_activity": found.last_activity,
        },
        "timeline": found.timeline,
        "pending": {
            "inbox": vars(pending.inbox),
            "outbox": vars(pending.outbox),
            "lease_ms": pending.lease_ms,
            "wake_queued": pending.wake_queued,
            "stuck_reason": pending.stuck_reason,
        },
    }
