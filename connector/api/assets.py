"""Channel assets over the REST API: CRUD, with the webhook URLs to paste into the provider's console.

Request bodies are the YAML shape of the asset's channel (`connector/config/schemas.py`:
`ASSET_SCHEMAS`); answers are that shape with secrets as MASK, plus `source`, `read_only`,
`webhook_url`, and `status_url` where the provider sends delivery receipts to a URL of their own
(Twilio). Assets are keyed `<channel>/<name>`. Reads need a viewer, writes an admin.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from flask import request
from marshmallow import Schema, fields

from connector.api.access import F, abort, api_blueprint, refuse_with_store_errors, requires, runtime, store_errors
from connector.api.access import documented_errors as access_documented_errors
from connector.config.model import Asset
from connector.config.overrides import SECRET_FIELDS
from connector.config.schemas import ASSET_SCHEMAS, AssetBase
from connector.operations.assets import shown
from connector.runtime import Runtime

KIND = "assets"

blueprint = api_blueprint("assets", "/assets", "Channel accounts: SMS numbers, pages, phone numbers, businesses, apps")


def documented_errors(*codes: int) -> Callable[[F], F]:
    return access_documented_errors(blueprint, *codes)


# -- schemas ----------------------------------------------------------------------------------------


def _union_fields() -> dict[str, fields.Field[Any]]:
    """Every field of every channel's schema, none required (each channel has its own), so one
    answer schema describes all five shapes and stays in step with the YAML schemas."""
    union: dict[str, fields.Field[Any]] = {}
    schemas: tuple[type[AssetBase], ...] = (AssetBase, *ASSET_SCHEMAS.values())
    for schema in schemas:
        for name, field in schema._declared_fields.items():
            if name not in union:
                shown = copy.copy(field)
                shown.required = name in ("name", "channel")
                if name in SECRET_FIELDS[KIND]:
                    shown.validators = []  # shown as MASK, whatever their rules when written
                union[name] = shown
    return union


AssetOut = Schema.from_dict(
    {
        **_union_fields(),
        "source": fields.String(allow_none=True, metadata={"description": "provisioning file, or null"}),
        "read_only": fields.Boolean(required=True),
        "webhook_url": fields.String(required=True, metadata={"description": "paste into the provider's console"}),
        "status_url": fields.String(
            allow_none=True, metadata={"description": "delivery receipts URL, where the provider has a separate one"}
        ),
    },
    name="AssetOut",
)

BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "The asset in the YAML shape of its channel",
        "content": {"application/json": {"schema": {"oneOf": list(ASSET_SCHEMAS.values())}}},
    }
}


def find(rt: Runtime, channel: str, name: str) -> Asset:
    asset = rt.config.asset(channel, name)
    if asset is None:
        abort(404, message=f"no {channel} asset named {name!r}")
    return asset


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(422, message="the body is not valid", errors={"json": {"_schema": ["send a JSON object"]}})
    return body


def _after_write(rt: Runtime, channel: str, name: str, fallback: Asset) -> dict[str, Any]:
    rt.config_changed()
    return shown(rt, rt.config.asset(channel, name) or fallback)


# -- routes -----------------------------------------------------------------------------------------


@blueprint.route("")
@blueprint.response(200, AssetOut(many=True))
@documented_errors(401)
def list_assets() -> list[dict[str, Any]]:
    """Every asset: provisioned ones (read-only, with their file) and those made in the UI/API."""
    rt = runtime()
    return [shown(rt, asset) for asset in rt.config.assets]


@blueprint.route("", methods=["POST"])
@requires("admin")
@blueprint.doc(**BODY_DOC)
@blueprint.response(201, AssetOut)
@documented_errors(401, 403, 409, 422)
def create_asset() -> dict[str, Any]:
    rt = runtime()
    with store_errors():
        stored = rt.overrides.save(KIND, _body(), rt.provisioned, create=True)
    return _after_write(rt, stored.item.channel, stored.item.name, stored.item)


@blueprint.route("/<channel>/<name>")
@blueprint.response(200, AssetOut)
@documented_errors(401, 404)
def get_asset(channel: str, name: str) -> dict[str, Any]:
    rt = runtime()
    return shown(rt, find(rt, channel, name))


@blueprint.route("/<channel>/<name>", methods=["PUT"])
@requires("admin")
@blueprint.doc(**BODY_DOC)
@blueprint.response(200, AssetOut)
@documented_errors(401, 403, 404, 409, 422)
def replace_asset(channel: str, name: str) -> dict[str, Any]:
    """Replace an asset made in the UI/API; its channel and name cannot change (rules refer to them).
    Secrets sent as MASK or left out keep their stored values."""
    rt = runtime()
    body = dict(_body())
    body.setdefault("name", name)
    body.setdefault("channel", channel)
    moved = {k: [f"cannot change (it is {v})"] for k, v in (("channel", channel), ("name", name)) if body[k] != v}
    if moved:
        kept = {**body, "channel": channel, "name": name}
        refuse_with_store_errors(moved, lambda: rt.overrides.prepared(KIND, kept, rt.provisioned, create=False))
    provisioned = rt.provisioned.asset(channel, name)
    if provisioned is not None:
        abort(409, message=f"{channel} asset {name!r} is defined in {provisioned.source} and is read-only here")
    with store_errors():
        stored = rt.overrides.save(KIND, body, rt.provisioned, create=False)
    return _after_write(rt, channel, name, stored.item)


@blueprint.route("/<channel>/<name>", methods=["DELETE"])
@requires("admin")
@blueprint.response(204)
@documented_errors(401, 403, 404, 409)
def delete_asset(channel: str, name: str) -> None:
    """Delete an asset made in the UI/API; refused (409) while rules use it."""
    rt = runtime()
    with store_errors():
        rt.overrides.delete(KIND, f"{channel}/{name}", rt.provisioned)
    rt.config_changed()
