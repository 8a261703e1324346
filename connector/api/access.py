"""Who may call the REST API: an API token (`Authorization: Bearer`) or a logged-in UI session.

A session call that changes something must carry the page's CSRF token in `X-CSRFToken` (the
UI's own JavaScript does); a token call needs none, since no browser sends it on its own.
Reads need a viewer, writes an editor, and `@requires("admin")` marks the admin-only ones.
A few endpoints (the agents API) also take the deployment-wide `CONNECTOR_API_TOKEN`, for scripts
that have no operator account: it acts there as an editor, and nowhere else.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import wraps
from typing import Any, NoReturn, ParamSpec, Protocol, TypeVar

from flask import current_app, g, request
from flask_login import current_user
from flask_smorest import Blueprint
from flask_smorest import abort as smorest_abort
from marshmallow import Schema, fields

from connector.admin.access import SAFE_METHODS, audit, csrf
from connector.api.query import refuse_unknown_query_parameters
from connector.auth.tokens import ApiTokens
from connector.auth.users import User
from connector.config.overrides import ConfigConflict, ConfigInvalid, NotFound
from connector.json_input import ArgumentsParser
from connector.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")

ARGUMENTS_PARSER = ArgumentsParser()
"""Every area's request bodies are read by it: an over-nested body is a 400, not a RecursionError."""


class Abort(Protocol):
    def __call__(self, http_status_code: int, exc: Exception | None = None, **kwargs: Any) -> NoReturn: ...


abort: Abort = smorest_abort
"""flask-smorest's `abort` (raises the HTTP error the API answers with), with the signature its source declares:
the package ships no type information (no py.typed), so mypy would not know that nothing after it runs.
The API modules import it from here."""


def runtime() -> Runtime:
    found: Runtime = current_app.extensions["connector"]  # Flask types extensions as dict[str, Any]; see create_app
    return found


def api_user() -> User:
    found: User = g.api_user  # Flask's g is untyped; _authenticate stores the caller's User there
    return found


DEPLOYMENT_TOKEN_USER = User(name="CONNECTOR_API_TOKEN", role="editor")
"""Who a call with the deployment-wide token acts as, on the endpoints that take it (and in the audit log)."""


def _deployment_token(given: str) -> bool:
    expected = runtime().settings.api_token
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def api_blueprint(
    name: str,
    url_prefix: str,
    description: str,
    *,
    read_only_posts: tuple[str, ...] = (),
    deployment_token: tuple[str, ...] = (),
) -> Blueprint:
    """A flask-smorest blueprint under /api/v1 whose every call is authenticated first.

    `read_only_posts`: endpoints (e.g. "rules.test") that take a POST body but change nothing, so
    viewers may call them; they are still authenticated, and CSRF-checked for sessions.
    `deployment_token`: endpoints that also take the deployment-wide CONNECTOR_API_TOKEN (acting as
    DEPLOYMENT_TOKEN_USER, an editor); operators' tokens and sessions work there as everywhere.
    Once the caller is known, a query parameter the endpoint does not take is a 400 (connector/api/query.py)."""
    blueprint = Blueprint(name, name, url_prefix=f"/api/v1{url_prefix}", description=description)
    blueprint.ARGUMENTS_PARSER = ARGUMENTS_PARSER

    @blueprint.before_request
    def _authenticate() -> None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header.removeprefix("Bearer ").strip()
            if request.endpoint in deployment_token and _deployment_token(given):
                g.api_user = DEPLOYMENT_TOKEN_USER
                _authorise(read_only_posts)
                return
            found = ApiTokens(runtime().redis).resolve(given)
            if found is None:
                abort(401, message="unknown or revoked API token")
            g.api_user = found
        elif current_user.is_authenticated:
            if request.method not in SAFE_METHODS:
                csrf.protect()
            g.api_user = current_user._get_current_object()
        else:
            abort(401, message="send Authorization: Bearer <API token> (issue one under Accounts)")
        _authorise(read_only_posts)

    blueprint.before_request(refuse_unknown_query_parameters)  # after _authenticate: a stranger gets 401
    return blueprint


def _authorise(read_only_posts: tuple[str, ...]) -> None:
    """Writes need an editor (or more); each is audited with its caller."""
    changes = request.method not in SAFE_METHODS and request.endpoint not in read_only_posts
    if changes and not api_user().can("editor"):
        abort(403, message="your role can read but not change anything")
    if changes:
        audit(api_user().name, "api")


def requires(role: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            if not api_user().can(role):
                abort(403, message=f"this needs the {role} role")
            return view(*args, **kwargs)

        return checked

    return decorate


ERROR_DESCRIPTIONS = {
    400: "The request cannot be understood: a query parameter the call does not take (`errors.query` names "
    "each), or a parameter missing or contradicting another",
    401: "No or an unknown API token, and no UI session",
    403: "The caller's role may not do this",
    404: "No such item",
    409: "Not possible in the current state: a provisioned (read-only) item, a taken name, an item still "
    "in use, or a feature that is off here",
    422: "The body is not valid: `errors.json` maps each dotted field to its messages",
    502: "The outside system (ECE, a provider) refused or did not answer",
}


def documented_errors(blueprint: Blueprint, *codes: int) -> Callable[[F], F]:
    """Document the error answers a view can give (400 and 401 always: an unknown query parameter, no
    caller; all carry the API's error body), so the OpenAPI document lists every status a caller may meet."""

    def decorate(view: F) -> F:
        for code in dict.fromkeys((400, 401, *codes)):
            view = blueprint.alt_response(code, response="DEFAULT_ERROR", description=ERROR_DESCRIPTIONS[code])(view)
        return view

    return decorate


@contextmanager
def store_errors() -> Iterator[None]:
    """The config store's refusals as API errors: 422 naming each field, 409, 404."""
    try:
        yield
    except ConfigInvalid as exc:
        abort(422, message="the item is not valid", errors={"json": exc.errors})
    except ConfigConflict as exc:
        abort(409, message=str(exc))
    except NotFound as exc:
        abort(404, message=str(exc).strip("'\""))


def refuse_with_store_errors(errors: Mapping[str, list[str]], check: Callable[[], object]) -> NoReturn:
    """422 naming `errors` (what the view found, e.g. a name that may not change) together with every
    problem the config store finds in the item: `check` is its `prepared` call, which writes nothing.
    One answer lists every error, not one more after each fix."""
    found = {field: list(messages) for field, messages in errors.items()}
    try:
        check()
    except ConfigInvalid as exc:
        for field, messages in exc.errors.items():
            found.setdefault(field, []).extend(messages)
    except ConfigConflict as exc:
        found.setdefault("_schema", []).append(str(exc))
    except NotFound:
        pass  # the item the body would replace is not there: the view's errors are the answer
    abort(422, message="the body is not valid", errors={"json": found})


class PageSchema(Schema):
    """The paging fields every list answer carries; a listing adds its `items` and counts."""

    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    has_next = fields.Boolean(required=True)
