"""Writes of config-store items whose name is their identity (rules, flows): the body check, create,
replace and delete, so the endpoints of each kind refuse and answer alike.

A name cannot change through PUT (rules and entry points refer to items by name); a provisioned item
is read-only (409 naming its file); every store refusal is the API's (`store_errors`).
"""

from __future__ import annotations

from typing import Any, Protocol

from flask import request

from connector.api.access import abort, refuse_with_store_errors, runtime, store_errors


class Provisioned(Protocol):
    """A provisioned item: only where it was defined matters here."""

    @property
    def source(self) -> str | None: ...


def json_object(what: str) -> dict[str, Any]:
    """The request body, which must be a JSON object; `what` ("rule") names the item in the 422."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(422, message=f"send the {what} as a JSON object", errors={"json": {"_schema": ["send a JSON object"]}})
    return body


def create(kind: str, body: dict[str, Any]) -> str:
    """Store a new item of `kind` (the store's word: "rules") and reload the configuration; its name."""
    rt = runtime()
    with store_errors():
        stored = rt.overrides.save(kind, body, rt.provisioned, create=True)
    rt.config_changed()
    name: str = stored.item.name  # every kind stored here has a name
    return name


def replace(kind: str, what: str, name: str, body: dict[str, Any], provisioned: Provisioned | None) -> None:
    """Replace item `name` made in the UI or API with `body` (its name left out means unchanged).
    A body naming another item is a 422 listing the store's other findings too; `provisioned`, the
    provisioned item of that name if any, makes it a 409 naming its file."""
    rt = runtime()
    if body.setdefault("name", name) != name:
        refuse_with_store_errors(
            {"name": [f"must stay {name!r}"]},
            lambda: rt.overrides.prepared(kind, {**body, "name": name}, rt.provisioned, create=False),
        )
    if provisioned is not None:
        abort(409, message=f"{what} {name!r} is defined in {provisioned.source} and is read-only here")
    with store_errors():
        rt.overrides.save(kind, body, rt.provisioned, create=False)
    rt.config_changed()


def delete(kind: str, name: str) -> None:
    """Delete item `name` made in the UI or API (the store refuses provisioned and still-used ones)."""
    rt = runtime()
    with store_errors():
        rt.overrides.delete(kind, name, rt.provisioned)
    rt.config_changed()
