"""The API's reference page: Swagger UI over /api/v1/openapi.json at /api/v1/docs/, and /api/v1/ itself
(the address `make run` prints) leading there.

Swagger UI's files come from the installed `flask-swagger-ui` package (pinned in requirements.txt; it
ships Swagger UI's dist folder with its licence), never from a CDN: the page works offline.

Who may read it: anyone who may read /api/v1/openapi.json, which flask-smorest serves without a login,
since the contract of the API is not a secret. The page only shows that document; every call it makes
("Try it out") goes to the API, which asks for an API token (the Authorize button) or a UI session as
always.
"""

from __future__ import annotations

from flask import Blueprint, Flask, redirect, url_for
from flask_swagger_ui import get_swaggerui_blueprint
from werkzeug.wrappers import Response

PREFIX = "/api/v1"
DOCS_PATH = f"{PREFIX}/docs"
SPEC_URL = f"{PREFIX}/openapi.json"
"""Where flask-smorest serves the OpenAPI document (OPENAPI_URL_PREFIX + OPENAPI_JSON_PATH)."""

root = Blueprint("api_root", __name__)


@root.get(f"{PREFIX}/")
def index() -> Response:
    """/api/v1/ is the API's address, not an operation: it shows the reference."""
    return redirect(url_for("api_reference.show"))


def init_docs(app: Flask, title: str) -> None:
    reference = get_swaggerui_blueprint(
        DOCS_PATH,
        SPEC_URL,
        # No validator badge: Swagger UI would fetch it from validator.swagger.io, and the page works offline.
        config={"app_name": f"{title} API", "validatorUrl": None},
        blueprint_name="api_reference",
    )
    app.register_blueprint(reference)
    app.register_blueprint(root)
