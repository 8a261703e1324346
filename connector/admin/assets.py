"""Channel assets in the operator UI: the five channel types, their webhook URLs and Meta verify token.

The form of a channel is built from that channel's schema (`ASSET_SCHEMAS`), so a field added to
the YAML shape appears here without a template change. A channel is chosen first (a plain GET
form: works without JavaScript and by keyboard), then its fields are shown. Secrets are never sent
to the browser: an empty secret field keeps the stored value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from marshmallow import fields as ma_fields
from marshmallow import missing

from connector.admin.access import flash_store_errors, guard, requires, runtime, user
from connector.channels import CHANNELS as CHANNEL_CLASSES
from connector.config.model import Asset
from connector.config.overrides import SECRET_FIELDS, NotFound
from connector.config.schemas import ASSET_SCHEMAS, CHANNELS
from connector.operations.assets import shown, status_url, webhook_url

KIND = "assets"
COMMON = ("name", "channel", "default_locale")
CHANNEL_LABELS = {name: cls.title for name, cls in CHANNEL_CLASSES.items()}

blueprint = guard(Blueprint("admin_assets", __name__, url_prefix="/admin/assets"))


@dataclass(frozen=True)
class FormField:
    """One input of a channel's form, derived from the schema field of the same name."""

    name: str
    kind: str  # text | secret | bool | int | list
    required: bool
    default: Any

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize().replace("Api ", "API ").replace(" id", " ID")


def form_fields(channel: str) -> list[FormField]:
    """The channel's own fields (besides name, channel and locale), in schema order."""
    schema = ASSET_SCHEMAS[channel]
    found = []
    for name, field in schema._declared_fields.items():
        if name in COMMON:
            continue
        if name in SECRET_FIELDS[KIND]:
            kind = "secret"
        elif isinstance(field, ma_fields.Boolean):
            kind = "bool"
        elif isinstance(field, ma_fields.Integer):
            kind = "int"
        elif isinstance(field, ma_fields.List):
            kind = "list"
        else:
            kind = "text"
        default = field.load_default if field.load_default is not missing and not callable(field.load_default) else None
        found.append(FormField(name, kind, field.required, default))
    return found


def asset_from_form(channel: str, form: Any) -> dict[str, Any]:
    """The raw asset from the form: empty inputs are left out (defaults apply, secrets are kept)."""
    raw: dict[str, Any] = {"name": form.get("name", "").strip(), "channel": channel}
    locale = form.get("default_locale", "").strip()
    if locale:
        raw["default_locale"] = locale
    for field in form_fields(channel):
        value = form.get(field.name, "")
        if field.kind == "bool":
            raw[field.name] = value == "on"
        elif field.kind == "list":
            items = [line.strip() for line in value.splitlines() if line.strip()]
            if items:
                raw[field.name] = items
        elif field.kind == "int":
            if value.strip():
                raw[field.name] = int(value) if value.strip().isdigit() else value.strip()
        elif value.strip():
            raw[field.name] = value if field.kind == "secret" else value.strip()
    return raw


def _values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What the form shows: secrets blanked (`has` says which are stored), lists one per line."""
    values: dict[str, Any] = {"has": {}}
    for key, value in raw.items():
        if key in SECRET_FIELDS[KIND]:
            values["has"][key] = bool(value)
        elif isinstance(value, list | tuple):
            values[key] = "\n".join(str(v) for v in value)
        else:
            values[key] = value
    return values


def _channel(channel: str) -> str:
    if channel not in ASSET_SCHEMAS:
        abort(404, f"No channel {channel}: use one of {', '.join(CHANNELS)}.")
    return channel


def _asset(channel: str, name: str) -> Asset:
    asset = runtime().config.asset(channel, name)
    if asset is None:
        abort(404, f"No {channel} asset named {name}.")
    return asset


def _stored_raw(channel: str, name: str) -> dict[str, Any]:
    try:
        return runtime().overrides.raw(KIND, f"{channel}/{name}")
    except NotFound:
        abort(404, f"The {channel} asset {name} was not made in the UI: it cannot be changed here.")
    raise AssertionError("unreachable")


# -- pages ------------------------------------------------------------------------------------------


@blueprint.route("/")
def index() -> Any:
    rt = runtime()
    rows = [(asset, webhook_url(rt, asset)) for asset in rt.config.assets]
    return render_template("admin/assets/index.html", rows=rows, labels=CHANNEL_LABELS)


def _render_form(channel: str, values: dict[str, Any], *, create: bool, errors: Mapping[str, list[str]]) -> Any:
    return (
        render_template(
            "admin/assets/form.html",
            channel=channel,
            label=CHANNEL_LABELS[channel],
            fields=form_fields(channel),
            values=values,
            create=create,
            errors=errors,
        ),
        422 if errors else 200,
    )


@blueprint.route("/new", methods=["GET", "POST"])
@requires("admin")
def create() -> Any:
    channel = request.values.get("channel", "")
    if not channel:
        return render_template("admin/assets/choose.html", channels=CHANNELS, labels=CHANNEL_LABELS)
    channel = _channel(channel)
    if request.method == "GET":
        return _render_form(channel, {"has": {}}, create=True, errors={})
    rt = runtime()
    raw = asset_from_form(channel, request.form)
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        rt.overrides.save(KIND, raw, rt.provisioned, create=True)
    if errors:
        return _render_form(channel, _values(raw), create=True, errors=errors)
    rt.config_changed()
    flash(f"Asset {raw['name']} saved: paste its webhook URL into the provider's console.", "success")
    return redirect(url_for(".show", channel=channel, name=raw["name"]))


@blueprint.route("/<channel>/<name>")
def show(channel: str, name: str) -> Any:
    rt = runtime()
    asset = _asset(_channel(channel), name)
    return render_template(
        "admin/assets/show.html",
        asset=asset,
        shown=shown(rt, asset),
        label=CHANNEL_LABELS[asset.channel],
        status_url=status_url(rt, asset),
        writable=asset.source is None and user().can("admin"),
    )


@blueprint.route("/<channel>/<name>/edit", methods=["GET", "POST"])
@requires("admin")
def edit(channel: str, name: str) -> Any:
    channel = _channel(channel)
    base = _stored_raw(channel, name)
    if request.method == "GET":
        return _render_form(channel, _values(base), create=False, errors={})
    rt = runtime()
    raw = {**asset_from_form(channel, request.form), "name": name}
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        rt.overrides.save(KIND, raw, rt.provisioned, create=False)
    if errors:
        values = _values(raw)
        values["has"] = _values(base)["has"]
        return _render_form(channel, values, create=False, errors=errors)
    rt.config_changed()
    flash(f"Asset {name} saved.", "success")
    return redirect(url_for(".show", channel=channel, name=name))


@blueprint.route("/<channel>/<name>/delete", methods=["POST"])
@requires("admin")
def delete(channel: str, name: str) -> Any:
    rt = runtime()
    errors: dict[str, list[str]] = {}
    with flash_store_errors(errors):
        rt.overrides.delete(KIND, f"{channel}/{name}", rt.provisioned)
    if errors:
        return redirect(url_for(".show", channel=channel, name=name))
    rt.config_changed()
    flash(f"Asset {name} deleted.", "success")
    return redirect(url_for(".index"))
