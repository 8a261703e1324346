"""Who am I: the caller's user name and role (a cheap way for scripts to check a token)."""

from __future__ import annotations

from marshmallow import Schema, fields

from connector.api.access import api_blueprint, api_user

blueprint = api_blueprint("accounts", "/me", "The calling user")


class MeSchema(Schema):
    name = fields.String(required=True)
    role = fields.String(required=True)


@blueprint.route("")
@blueprint.response(200, MeSchema)
def me() -> dict[str, str]:
    """The user the token or session acts as."""
    found = api_user()
    return {"name": found.name, "role": found.role}
