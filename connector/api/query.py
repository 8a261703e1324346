"""Unknown query parameters are refused: 400 naming each one, in the API's error body.

A misspelt parameter (`?per_pge=5`, `?tset=true`) would otherwise be ignored, and the caller would
take the default for what they asked. Each endpoint takes the query parameters its query schemas
declare (`@blueprint.arguments(Schema, location="query")`, which flask-smorest keeps on the view as
`_apidoc`), so the check and the OpenAPI document read the same declaration; an endpoint with none
takes no parameter at all. `api_blueprint` runs the check before every view of the API.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from flask import current_app, request
from flask_smorest import abort
from marshmallow import Schema

UNKNOWN = "Unknown field."
"""marshmallow's (and so webargs') message for a field a schema does not declare."""


@cache
def allowed_query_parameters(view: Callable[..., Any]) -> frozenset[str]:
    """The names `view`'s query schemas declare (a field's `data_key` where it has one)."""
    documented = getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    names: set[str] = set()
    for parameter in documented:
        if parameter.get("in") != "query":
            continue
        schema: Schema = parameter["schema"]() if isinstance(parameter["schema"], type) else parameter["schema"]
        names.update(field.data_key or name for name, field in schema.fields.items() if not field.dump_only)
    return frozenset(names)


def refuse_unknown_query_parameters() -> None:
    """Before a view: 400 `{"errors": {"query": {name: ["Unknown field."]}}}` for each name it does not take."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None:
        return
    allowed = allowed_query_parameters(view)
    unknown = sorted(set(request.args) - allowed)
    if not unknown:
        return
    takes = f"it takes {', '.join(sorted(allowed))}" if allowed else "it takes none"
    abort(
        400,
        message=f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: {takes}",
        errors={"query": {name: [UNKNOWN] for name in unknown}},
    )
