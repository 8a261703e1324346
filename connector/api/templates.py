"""System message templates over the API: the matrix (type by locale, at a scope), one cell, save and
reset of overrides, preview against the sample context, and "send as test" in the sandbox.

The scope is the query string: none for deployment-wide, or `?integration=X&entry_point=Y` for one
entry point. A template error is a 422 whose `errors.json.text` starts with its line
("line 2: unexpected '}'"), so a client can point at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from marshmallow import Schema, fields, validate

from connector.api.access import abort, api_blueprint, documented_errors, runtime, store_errors
from connector.config.overrides import ConfigInvalid
from connector.config.schemas import MESSAGE_TYPES
from connector.operations.templates import (
    ORIGINS,
    Cell,
    Scope,
    SendTestFailed,
    SendTestUnavailable,
    TemplateEditor,
    TemplateError,
)

blueprint = api_blueprint(
    "templates", "/templates", "System message templates: deployment-wide and per entry point overrides"
)

MAX_TEXT = 20_000
"""Longest template source accepted (the rendered message is capped much lower anyway)."""


def errors(*codes: int) -> Callable[[Any], Any]:
    return documented_errors(blueprint, 403, *codes)


@contextmanager
def editor_errors() -> Iterator[None]:
    """The editor's refusals as API errors (the store's through `store_errors`)."""
    with store_errors():
        try:
            yield
        except TemplateError as exc:
            abort(422, message="the template is not valid", errors={"json": {"text": [str(exc)]}})
        except SendTestUnavailable as exc:
            abort(409, message=str(exc))
        except SendTestFailed as exc:
            abort(502, message=str(exc))


# -- schemas ----------------------------------------------------------------------------------------


class ScopeArgs(Schema):
    integration = fields.String(load_default=None, metadata={"description": "with entry_point: that entry point"})
    entry_point = fields.String(load_default=None)


class TextBody(Schema):
    text = fields.String(
        required=True, validate=validate.Length(max=MAX_TEXT), metadata={"description": "empty: the message is off"}
    )
    all_locales = fields.Boolean(
        load_default=False, metadata={"description": "entry points: one text for every locale (the type key)"}
    )


class PreviewBody(Schema):
    type = fields.String(required=True, validate=validate.OneOf(MESSAGE_TYPES))
    locale = fields.String(required=True, validate=validate.Length(min=2, max=16))
    text = fields.String(required=True, validate=validate.Length(max=MAX_TEXT))
    integration = fields.String(load_default=None)
    entry_point = fields.String(load_default=None)


class SendTestBody(Schema):
    type = fields.String(required=True, validate=validate.OneOf(MESSAGE_TYPES))
    locale = fields.String(required=True, validate=validate.Length(min=2, max=16))
    asset = fields.String(required=True, metadata={"description": "channel/name, like sms/support-sms"})
    customer = fields.String(load_default=None, metadata={"description": "default: the sandbox's example customer"})
    integration = fields.String(load_default=None)
    entry_point = fields.String(load_default=None)


class CellOut(Schema):
    type = fields.String(required=True)
    locale = fields.String(required=True)
    integration = fields.String(allow_none=True)
    entry_point = fields.String(allow_none=True)
    text = fields.String(required=True, metadata={"description": "the template in effect"})
    off = fields.Boolean(required=True, metadata={"description": "empty template: the message is not sent"})
    origin = fields.String(required=True, validate=validate.OneOf(list(ORIGINS)))
    origin_label = fields.String(required=True)
    where = fields.String(required=True)
    override = fields.String(allow_none=True, metadata={"description": "this scope's override: locale, all locales"})
    inherited = fields.String(required=True, metadata={"description": "the text a reset brings back"})
    inherited_where = fields.String(required=True)
    read_only = fields.String(allow_none=True, metadata={"description": "file of a provisioned entry point"})


class ResetOut(CellOut):
    removed = fields.String(allow_none=True, metadata={"description": "the override removed; null: there was none"})


class MatrixOut(Schema):
    integration = fields.String(allow_none=True)
    entry_point = fields.String(allow_none=True)
    types = fields.List(fields.String(), required=True)
    locales = fields.List(fields.String(), required=True)
    cells = fields.List(fields.Nested(CellOut), required=True)


class PreviewOut(Schema):
    text = fields.String(required=True)
    off = fields.Boolean(required=True)


class SentOut(Schema):
    asset = fields.String(required=True)
    customer = fields.String(required=True)
    text = fields.String(required=True)
    parts = fields.Integer(required=True)
    look_at = fields.String(allow_none=True, metadata={"description": "the sandbox customer page showing it"})


def cell_out(cell: Cell) -> dict[str, Any]:
    return {
        "type": cell.message_type,
        "locale": cell.locale,
        "integration": cell.scope.integration,
        "entry_point": cell.scope.entry_point,
        "text": cell.text,
        "off": cell.off,
        "origin": cell.origin,
        "origin_label": ORIGINS[cell.origin],
        "where": cell.where,
        "override": cell.override,
        "inherited": cell.inherited,
        "inherited_where": cell.inherited_where,
        "read_only": cell.read_only,
    }


# -- endpoints --------------------------------------------------------------------------------------


@blueprint.route("")
@blueprint.arguments(ScopeArgs, location="query")
@blueprint.response(200, MatrixOut)
@errors(404, 422)
def matrix(args: dict[str, Any]) -> dict[str, Any]:
    """Every message type in every locale at the scope, with where the text in effect comes from."""
    editor = TemplateEditor(runtime())
    with editor_errors():
        scope = Scope.of(args["integration"], args["entry_point"])
        cells = editor.matrix(scope)
    return {
        "integration": scope.integration,
        "entry_point": scope.entry_point,
        "types": list(MESSAGE_TYPES),
        "locales": editor.locales(),
        "cells": [cell_out(c) for row in cells.values() for c in row.values()],
    }


@blueprint.route("/<locale>/<message_type>")
@blueprint.arguments(ScopeArgs, location="query")
@blueprint.response(200, CellOut)
@errors(404, 422)
def get_cell(args: dict[str, Any], locale: str, message_type: str) -> dict[str, Any]:
    with editor_errors():
        scope = Scope.of(args["integration"], args["entry_point"])
        return cell_out(TemplateEditor(runtime()).cell(scope, message_type, locale))


@blueprint.route("/<locale>/<message_type>", methods=["PUT"])
@blueprint.arguments(ScopeArgs, location="query")
@blueprint.arguments(TextBody)
@blueprint.response(200, CellOut)
@errors(404, 409, 422)
def save_cell(args: dict[str, Any], body: dict[str, Any], locale: str, message_type: str) -> dict[str, Any]:
    """Save an override (validated first; an empty text turns the message off)."""
    editor = TemplateEditor(runtime())
    with editor_errors():
        scope = Scope.of(args["integration"], args["entry_point"])
        try:
            cell = editor.save(scope, message_type, locale, body["text"], all_locales=body["all_locales"])
        except ConfigInvalid as exc:  # the text's own problem in the same answer
            raise ConfigInvalid({**exc.errors, **editor.text_errors(body["text"])}) from None
    return cell_out(cell)


@blueprint.route("/<locale>/<message_type>", methods=["DELETE"])
@blueprint.arguments(ScopeArgs, location="query")
@blueprint.response(200, ResetOut)
@errors(404, 409, 422)
def reset_cell(args: dict[str, Any], locale: str, message_type: str) -> dict[str, Any]:
    """Reset to default: remove this scope's override (an entry point's locale one first)."""
    with editor_errors():
        scope = Scope.of(args["integration"], args["entry_point"])
        cell, removed = TemplateEditor(runtime()).reset(scope, message_type, locale)
    return {**cell_out(cell), "removed": removed}


@blueprint.route("/preview", methods=["POST"])
@blueprint.arguments(PreviewBody)
@blueprint.response(200, PreviewOut)
@errors(404, 422)
def preview(body: dict[str, Any]) -> dict[str, Any]:
    """Render a template text with the type's sample context, as the relay would."""
    with editor_errors():
        scope = Scope.of(body["integration"], body["entry_point"])
        text = TemplateEditor(runtime()).preview(body["type"], body["locale"], body["text"], scope)
    return {"text": text, "off": not text}


@blueprint.route("/send-test", methods=["POST"])
@blueprint.arguments(SendTestBody)
@blueprint.response(200, SentOut)
@errors(404, 409, 422, 502)
def send_test(body: dict[str, Any]) -> dict[str, Any]:
    """Send the text in effect, rendered with the sample context, to a sandbox test customer (sandbox only)."""
    with editor_errors():
        scope = Scope.of(body["integration"], body["entry_point"])
        sent = TemplateEditor(runtime()).send_test(scope, body["type"], body["locale"], body["asset"], body["customer"])
    return {
        "asset": sent.asset,
        "customer": sent.customer,
        "text": sent.text,
        "parts": sent.parts,
        "look_at": sent.look_at,
    }
