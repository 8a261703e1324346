"""API tokens over the REST API: each user issues and revokes their own (an admin sees all)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from marshmallow import Schema, fields, validate

from connector.api.access import abort, api_blueprint, api_user, documented_errors, runtime
from connector.auth.tokens import ApiTokens, TokenInfo

blueprint = api_blueprint("tokens", "/tokens", "API tokens: issue (shown once), list, revoke")


class TokenSchema(Schema):
    id = fields.String(required=True, metadata={"description": "names the token; cannot be used as one"})
    user = fields.String(required=True)
    label = fields.String(required=True)
    created_at = fields.Float(required=True)


class IssuedSchema(TokenSchema):
    token = fields.String(required=True, metadata={"description": "the token itself: shown this once"})


class IssueBody(Schema):
    label = fields.String(load_default="API token", validate=validate.Length(min=1, max=100))


def _mine() -> str | None:
    """Whose tokens the caller sees and revokes: an admin's reach is everyone's (None)."""
    me = api_user()
    return None if me.can("admin") else me.name


@blueprint.route("")
@blueprint.response(200, TokenSchema(many=True))
@documented_errors(blueprint)
def list_tokens() -> list[TokenInfo]:
    """Your tokens (an admin: every user's)."""
    return ApiTokens(runtime().redis).listing(_mine())


@blueprint.route("", methods=["POST"])
@blueprint.arguments(IssueBody)
@blueprint.response(201, IssuedSchema)
@documented_errors(blueprint, 403, 422)
def issue_token(body: dict[str, Any]) -> dict[str, Any]:
    """A new token acting as you, with your role."""
    tokens = ApiTokens(runtime().redis)
    token = tokens.issue(api_user().name, body["label"])
    issued = tokens.describe(token)
    assert issued is not None  # just issued: describe() finds it (None is for unknown tokens)
    return {**asdict(issued), "token": token}


@blueprint.route("/<token_id>", methods=["DELETE"])
@blueprint.response(204)
@documented_errors(blueprint, 403, 404)
def revoke_token(token_id: str) -> None:
    """Revoke a token of yours (an admin: anyone's)."""
    if not ApiTokens(runtime().redis).revoke(token_id, _mine()):
        abort(404, message=f"no token {token_id!r} of yours")
