"""The REST API at /api/v1 (flask-smorest), OpenAPI at /api/v1/openapi.json, its reference page
(Swagger UI, served locally) at /api/v1/docs/ (connector/api/docs.py).

One module per area (AREAS), each a blueprint from `access.api_blueprint`. Requests and answers
use the same marshmallow schemas as the YAML files where an item is concerned; errors are JSON
`{"code", "status", "message", "errors": {"json": {"field": [...]}}}` naming the field.

Views are annotated with what they really return (a dict, a list, dataclasses); `@blueprint.response`
serialises it through the view's schema.
"""

from __future__ import annotations

from importlib import import_module

from flask import Flask
from flask_smorest import Api

from connector.api import flow_steps
from connector.api.docs import init_docs

AREAS = (
    "integrations",
    "assets",
    "rules",
    "flows",
    "templates",
    "conversations",
    "dead_letters",
    "transfer",
    "config",
    "agents",
    "hybrid_agents",
    "finesse",
    "accounts",
    "users",
    "tokens",
    "surveys",
)


API_TITLE = "Channel connector"


def init_api(app: Flask) -> Api:
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "security": [{"bearer": []}],
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        },
    )
    api = Api(app)
    for area in AREAS:
        api.register_blueprint(import_module(f"connector.api.{area}").blueprint)
    flow_steps.document(api.spec)  # the step kinds' components, which the flows' request bodies name
    app.extensions["connector_api"] = api
    init_docs(app, API_TITLE)
    return api
