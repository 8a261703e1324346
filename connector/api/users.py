"""Operator accounts over the REST API (admin only), as on the Accounts page."""

from __future__ import annotations

from typing import Any, NoReturn

from marshmallow import Schema, fields, validate

from connector.api.access import abort, api_blueprint, api_user, documented_errors, requires, runtime
from connector.auth.users import ROLES, AccountError, Users

blueprint = api_blueprint("users", "/users", "Operator accounts and their roles (admin only)")


class UserSchema(Schema):
    name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class UserBody(Schema):
    # One of ROLES, checked by Users.save with the name and the password, so one 422 names every problem.
    role = fields.String(required=True, metadata={"enum": list(ROLES)})
    password = fields.String(
        load_default=None, metadata={"description": "required for a new user; omit to keep the password"}
    )


def _account_error(exc: AccountError) -> NoReturn:
    """422 naming every bad input (a conflict found beside them under "_schema"); 409 for a conflict alone."""
    if exc.field is None:
        abort(409, message=str(exc))
    abort(422, message="the account change is not valid", errors={"json": exc.errors})


@blueprint.route("")
@requires("admin")
@blueprint.response(200, UserSchema(many=True))
@documented_errors(blueprint, 403)
def list_users() -> list[dict[str, str]]:
    """Every operator account with its role."""
    return [{"name": u.name, "role": u.role} for u in Users(runtime().redis).listing()]


@blueprint.route("/<name>", methods=["PUT"])
@requires("admin")
@blueprint.arguments(UserBody)
@blueprint.response(200, UserSchema)
@documented_errors(blueprint, 403, 409, 422)
def save_user(body: dict[str, Any], name: str) -> dict[str, str]:
    """Create a user, or change one's role or password."""
    try:
        saved = Users(runtime().redis).save(name, body["role"], body.get("password"))
    except AccountError as exc:
        _account_error(exc)
    return {"name": saved.name, "role": saved.role}


@blueprint.route("/<name>", methods=["DELETE"])
@requires("admin")
@blueprint.response(204)
@documented_errors(blueprint, 403, 404, 409)
def delete_user(name: str) -> None:
    """Delete a user (not yourself, nor the last admin); their API tokens stop working."""
    if name == api_user().name:
        abort(409, message="you cannot delete your own account")
    try:
        deleted = Users(runtime().redis).delete(name)
    except AccountError as exc:
        _account_error(exc)
    if not deleted:
        abort(404, message=f"no user {name!r}")
