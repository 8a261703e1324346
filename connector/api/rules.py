"""Rules over the API: list in evaluation order, create / read / replace / delete UI rules, store the
order, and the "which rule would this message match?" tester.

Request bodies of rules are the YAML shape, validated by `RuleSchema` through the config store, so
a 422 names the field exactly as check-config would (`action.entry_point`). Provisioned rules are
read-only (409 naming their file) but take part in the order, which is the operator's.
Two paths are fixed words: a rule named `order` cannot be replaced through `PUT /rules/order`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields, validate

from connector.api import named
from connector.api.access import (
    abort,
    api_blueprint,
    documented_errors,
    runtime,
    store_errors,
)
from connector.config.schemas import CHANNELS, LANGUAGE_CODE, RuleSchema
from connector.operations import rules

blueprint = api_blueprint(
    "rules",
    "/rules",
    "Rules: which integration and entry point a customer message is forwarded to, first match wins",
    read_only_posts=("rules.test",),  # the tester changes nothing: viewers may use it
)


def errors(*codes: int) -> Callable[[Any], Any]:
    return documented_errors(blueprint, 403, *codes)


RULE_BODY = {"required": True, "content": {"application/json": {"schema": RuleSchema}}}


# -- answers ----------------------------------------------------------------------------------------


class RuleActionOut(Schema):
    forward_to = fields.String(required=True)
    entry_point = fields.String(required=True)
    flow = fields.String(allow_none=True, metadata={"description": "the flow it runs first (`/flows`), or null"})


class RuleOut(Schema):
    position = fields.Integer(required=True, metadata={"description": "1-based place in evaluation order"})
    name = fields.String(required=True)
    channel = fields.String(allow_none=True)
    event = fields.String(allow_none=True)
    asset = fields.String(allow_none=True)
    keyword = fields.String(allow_none=True)
    language = fields.String(allow_none=True, metadata={"description": "ISO 639-1: the customer's language"})
    action = fields.Nested(RuleActionOut, required=True)
    start = fields.String(allow_none=True, metadata={"description": "YYYY-MM-DD"})
    end = fields.String(allow_none=True, metadata={"description": "YYYY-MM-DD"})
    status = fields.String(allow_none=True)
    source = fields.String(allow_none=True, metadata={"description": "the provisioning file; null for API/UI rules"})
    default = fields.Boolean(required=True, metadata={"description": "the default rule, always last"})
    editable = fields.Boolean(required=True)


class OrderSchema(Schema):
    order = fields.List(
        fields.String(), required=True, metadata={"description": "every rule name once, default rule excluded"}
    )


class ProbeSchema(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    asset = fields.String(required=True, validate=validate.Length(min=1, max=64))
    text = fields.String(load_default="", validate=validate.Length(max=5000))
    date = fields.Date(load_default=None, metadata={"description": "the day to test for (default today, UTC)"})
    language = fields.String(
        load_default=None,
        validate=LANGUAGE_CODE,
        metadata={"description": "the customer's language for rules with `language:` (default: detected in text)"},
    )


class VerdictOut(Schema):
    position = fields.Integer(required=True)
    rule = fields.String(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["matched", "missed", "not reached", "default"]))
    reason = fields.String(allow_none=True)


class TesterOut(Schema):
    rule = fields.String(allow_none=True, metadata={"description": "the winning rule; null when none routes it"})
    forward_to = fields.String(allow_none=True)
    entry_point = fields.String(allow_none=True)
    by_default = fields.Boolean(required=True)
    event = fields.String(required=True)
    date = fields.String(required=True)
    summary = fields.String(required=True)
    rules = fields.List(fields.Nested(VerdictOut), required=True)
    language = fields.String(allow_none=True, metadata={"description": "the language rules were tested against"})
    language_source = fields.String(
        allow_none=True, metadata={"description": "given, detected, or null when no rule tests the language"}
    )


def _row_out(row: rules.RuleRow) -> dict[str, Any]:
    return {
        **row.fields,
        "position": row.position,
        "source": row.source,
        "default": row.is_default,
        "editable": row.editable,
    }


def _row(name: str) -> dict[str, Any]:
    row = next((r for r in rules.listing(runtime().config) if r.name == name), None)
    if row is None:
        abort(404, message=f"no rule named {name!r}")
    return _row_out(row)


# -- endpoints --------------------------------------------------------------------------------------


@blueprint.route("")
@blueprint.response(200, RuleOut(many=True))
@errors()
def list_rules() -> list[dict[str, Any]]:
    """Every rule in evaluation order (first match wins), the default rule last."""
    return [_row_out(row) for row in rules.listing(runtime().config)]


@blueprint.route("", methods=["POST"])
@blueprint.doc(requestBody=RULE_BODY)
@blueprint.response(201, RuleOut)
@errors(409, 422)
def create_rule() -> dict[str, Any]:
    """Create a rule (the YAML shape); it is evaluated after the rules already ordered."""
    return _row(named.create("rules", named.json_object("rule")))


@blueprint.route("/<name>")
@blueprint.response(200, RuleOut)
@errors(404)
def get_rule(name: str) -> dict[str, Any]:
    return _row(name)


@blueprint.route("/<name>", methods=["PUT"])
@blueprint.doc(requestBody=RULE_BODY)
@blueprint.response(200, RuleOut)
@errors(404, 409, 422)
def replace_rule(name: str) -> dict[str, Any]:
    """Replace a rule made in the UI or API; the name is its identity and cannot change."""
    provisioned = next((r for r in runtime().provisioned.rules if r.name == name), None)
    named.replace("rules", "rule", name, named.json_object("rule"), provisioned)
    return _row(name)


@blueprint.route("/<name>", methods=["DELETE"])
@blueprint.response(204)
@errors(404, 409)
def delete_rule(name: str) -> None:
    named.delete("rules", name)


@blueprint.route("/order", methods=["PUT"])
@blueprint.arguments(OrderSchema)
@blueprint.response(200, RuleOut(many=True))
@errors(422)
def set_order(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Store the evaluation order: every rule once (provisioned ones too), the default rule left out."""
    rt = runtime()
    with store_errors():
        rt.overrides.set_rule_order(body["order"], rt.config)
    rt.config_changed()
    return [_row_out(row) for row in rules.listing(rt.config)]


@blueprint.route("/test", methods=["POST"])
@blueprint.arguments(ProbeSchema)
@blueprint.response(200, TesterOut)
@errors(422)
def test(probe: dict[str, Any]) -> dict[str, Any]:
    """Which rule would a customer message match, and why each earlier rule did not (viewers too)."""
    day = probe["date"] or datetime.now(UTC).date()
    with store_errors():
        answer = rules.which_rule(
            runtime().config, probe["channel"], probe["asset"], probe["text"], day, probe["language"]
        )
    return tester_out(answer)


def tester_out(answer: rules.TesterAnswer) -> dict[str, Any]:
    return {
        "rule": answer.rule,
        "forward_to": answer.forward_to,
        "entry_point": answer.entry_point,
        "by_default": answer.by_default,
        "event": answer.event,
        "date": answer.day.isoformat(),
        "summary": answer.summary,
        "language": answer.language,
        "language_source": answer.language_source,
        "rules": [
            {"position": v.position, "rule": v.rule, "outcome": v.outcome, "reason": v.reason} for v in answer.verdicts
        ],
    }
