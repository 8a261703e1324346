"""Post-chat survey results (store/surveys.py): one per conversation that was asked, newest first,
filtered by date, entry point, agent, channel and score."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate

from connector.api.access import PageSchema, api_blueprint, runtime
from connector.store import surveys

blueprint = api_blueprint("surveys", "/surveys", "Post-chat surveys: customers' scores and comments")


class SurveyArgs(Schema):
    since = fields.AwareDateTime(
        load_default=None, metadata={"description": "answered (or ended) at or after, ISO 8601 with its offset"}
    )
    until = fields.AwareDateTime(load_default=None, metadata={"description": "answered (or ended) at or before"})
    entry_point = fields.String(load_default=None)
    integration = fields.String(load_default=None)
    agent = fields.String(load_default=None, metadata={"description": "the agent's name or id"})
    channel = fields.String(load_default=None)
    score = fields.Integer(load_default=None, validate=validate.Range(min=1, max=10))
    status = fields.String(
        load_default=None, validate=validate.OneOf(("asked", "answered", "timed_out", "invalid", "left"))
    )
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class SurveyResultSchema(Schema):
    conversation = fields.String(required=True, metadata={"description": "the conversation (thread id-sequence)"})
    thread = fields.String(required=True)
    flow = fields.String(required=True)
    integration = fields.String(allow_none=True)
    entry_point = fields.String(allow_none=True)
    channel = fields.String(required=True)
    asset = fields.String(required=True)
    agent = fields.String(allow_none=True)
    agent_id = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "asked | answered | timed_out | invalid | left"})
    score = fields.Integer(allow_none=True)
    points = fields.Integer(required=True, metadata={"description": "the scale's top score"})
    answer = fields.String(allow_none=True, metadata={"description": "with choices: the one picked"})
    comment = fields.String(allow_none=True)
    asked_at = fields.Float(required=True)
    answered_at = fields.Float(allow_none=True)
    ended_at = fields.Float(allow_none=True)


class SurveyPageSchema(PageSchema):
    items = fields.List(fields.Nested(SurveyResultSchema), required=True)
    total = fields.Integer(required=True, metadata={"description": "results matching the filters"})
    average = fields.Float(allow_none=True, metadata={"description": "mean score of the matching answers"})


@blueprint.route("")
@blueprint.arguments(SurveyArgs, location="query")
@blueprint.response(200, SurveyPageSchema)
def list_surveys(args: dict[str, Any]) -> dict[str, Any]:
    """Survey results, newest first. The date range reads the time index; the other filters are
    applied to the records in that range."""
    found = [
        r for r in surveys.between(runtime().redis, _stamp(args["since"]), _stamp(args["until"])) if _fits(r, args)
    ]
    page, per_page = args["page"], args["per_page"]
    shown = found[(page - 1) * per_page : page * per_page]
    scores = [r.score for r in found if r.score is not None]
    return {
        "items": [asdict(r) for r in shown],
        "page": page,
        "per_page": per_page,
        "has_next": len(found) > page * per_page,
        "total": len(found),
        "average": sum(scores) / len(scores) if scores else None,
    }


def _stamp(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _fits(record: surveys.SurveyRecord, args: dict[str, Any]) -> bool:
    for name in ("entry_point", "integration", "channel", "score", "status"):
        if args[name] is not None and getattr(record, name) != args[name]:
            return False
    return args["agent"] is None or args["agent"] in (record.agent, record.agent_id)
