"""The message template editor: a matrix of the ten system messages by locale at one scope
(deployment-wide or one entry point), and a page per cell to edit, preview, save, reset and, in the
sandbox, send as a test.

Everything here goes through `connector.operations.templates.TemplateEditor`, as the API does, so the
page and the API cannot disagree. Without JavaScript, "Preview" is a submit of the same form;
templates_editor.js previews while typing through `POST /api/v1/templates/preview`.

Saving stays on the cell's page, and the asset last used for "Send as test" is remembered in the
operator's session, so trying a change on the sandbox customer page is one click after saving it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from connector.admin.access import flash_store_errors, guard, runtime
from connector.config.overrides import ConfigConflict, ConfigInvalid, NotFound
from connector.config.schemas import MESSAGE_TYPES
from connector.operations.templates import (
    Scope,
    SendTestFailed,
    SendTestUnavailable,
    TemplateEditor,
    TemplateError,
)

blueprint = guard(Blueprint("admin_templates", __name__, url_prefix="/admin/templates"))

SEND_ASSET = "templates.send_asset"
"""Session key: the asset ("channel/name") the operator last sent a test through, chosen again next time."""


def _scope() -> Scope:
    """The scope is always in the query string (forms post back to their page's URL)."""
    return Scope.of(request.args.get("integration"), request.args.get("entry_point"))


class ScopeQuery(TypedDict, total=False):
    """The query string naming an entry point's scope (empty for deployment-wide)."""

    integration: str
    entry_point: str


def _scope_args(scope: Scope) -> ScopeQuery:
    return {} if scope.deployment else {"integration": scope.integration or "", "entry_point": scope.entry_point or ""}


@blueprint.route("/")
def index() -> Any:
    if "scope" in request.args:  # the scope picker: "integration|entry point", or "" for deployment-wide
        integration, _, entry_point = request.args["scope"].partition("|")
        query: ScopeQuery = {"integration": integration, "entry_point": entry_point} if integration else {}
        return redirect(url_for(".index", **query))
    if "locale" in request.args and "type" in request.args:  # "another locale"
        return redirect(url_for(".edit", locale=request.args["locale"].strip(), message_type=request.args["type"]))
    editor = TemplateEditor(runtime())
    try:
        scope = _scope()
        matrix = editor.matrix(scope)
    except (ConfigInvalid, NotFound) as exc:
        flash(f"{_message(exc)}: showing the deployment-wide templates instead.", "error")
        scope, matrix = Scope(), editor.matrix(Scope())
    return render_template(
        "admin/templates_editor/index.html",
        scope=scope,
        scope_args=_scope_args(scope),
        matrix=matrix,
        locales=editor.locales(),
        entry_points=editor.entry_points(),
        types=MESSAGE_TYPES,
    )


def _cell_page(
    editor: TemplateEditor,
    scope: Scope,
    message_type: str,
    locale: str,
    *,
    text: str | None = None,
    error: TemplateError | None = None,
    errors: dict[str, list[str]] | None = None,
    sent: Any = None,
    status: int = 200,
) -> Any:
    cell = editor.cell(scope, message_type, locale)
    shown = cell.text if text is None else text
    preview = None
    if error is None:
        try:
            preview = editor.preview(message_type, locale, shown, scope)
        except TemplateError as exc:
            error = exc
    lines = shown.splitlines()
    error_line = lines[error.line - 1] if error and error.line and 0 < error.line <= len(lines) else None
    context = editor.sample(message_type, locale, scope).as_dict()
    settings = runtime().settings
    config = runtime().config
    page = render_template(
        "admin/templates_editor/edit.html",
        cell=cell,
        scope=scope,
        scope_args=_scope_args(scope),
        text=shown,
        preview=preview,
        error=error,
        error_line=error_line,
        errors=errors or {},
        variables=context,
        sandbox=settings.sandbox,
        assets=[f"{a.channel}/{a.name}" for a in config.assets],
        send_asset=session.get(SEND_ASSET),
        sent=sent,
    )
    return page, status


def _message(exc: Exception) -> str:
    if isinstance(exc, ConfigInvalid):
        return "; ".join(f"{field}: {' '.join(texts)}" for field, texts in exc.errors.items())
    return str(exc).strip("'\"")


@blueprint.route("/<locale>/<message_type>", methods=["GET", "POST"])
def edit(locale: str, message_type: str) -> Any:
    """GET shows the cell; POST previews (action=preview) or saves (action=save) the text sent."""
    editor = TemplateEditor(runtime())
    try:
        scope = _scope()
        editor.cell(scope, message_type, locale)
    except (ConfigInvalid, NotFound) as exc:
        flash(f"{_message(exc)}.", "error")
        return redirect(url_for(".index"))
    if request.method == "GET":
        return _cell_page(editor, scope, message_type, locale)
    text = request.form.get("text", "").replace("\r\n", "\n")
    if request.form.get("action") == "preview":
        return _cell_page(editor, scope, message_type, locale, text=text)
    errors: dict[str, list[str]] = {}
    try:
        with flash_store_errors(errors):
            editor.save(scope, message_type, locale, text, all_locales=request.form.get("all_locales") == "1")
    except TemplateError as exc:
        flash(f"Not saved: the template has an error on line {exc.line}." if exc.line else "Not saved.", "error")
        return _cell_page(editor, scope, message_type, locale, text=text, error=exc, status=422)
    if errors:
        return _cell_page(editor, scope, message_type, locale, text=text, errors=errors, status=422)
    state = "off (empty)" if not text.strip() else "saved"
    flash(f"{message_type} ({locale}, {scope.label}) {state}; it is in effect now.", "success")
    return redirect(url_for(".edit", locale=locale, message_type=message_type, **_scope_args(scope)))


@blueprint.route("/<locale>/<message_type>/reset", methods=["POST"])
def reset(locale: str, message_type: str) -> Any:
    editor = TemplateEditor(runtime())
    scope = Scope()
    with flash_store_errors():
        scope = _scope()
        cell, removed = editor.reset(scope, message_type, locale)
        if removed is None:
            flash(f"{message_type} ({locale}) has no override at this scope: nothing to reset.", "info")
        else:
            back = f"{cell.label}: {cell.detail}" if cell.detail else cell.label
            flash(f"{message_type} ({locale}) is back to the {back}.", "success")
    return redirect(url_for(".edit", locale=locale, message_type=message_type, **_scope_args(scope)))


@blueprint.route("/<locale>/<message_type>/send-test", methods=["POST"])
def send_test(locale: str, message_type: str) -> Any:
    editor = TemplateEditor(runtime())
    session[SEND_ASSET] = request.form.get("asset", "")
    try:
        scope = _scope()
        sent = editor.send_test(
            scope, message_type, locale, request.form.get("asset", ""), request.form.get("customer") or None
        )
    except (ConfigInvalid, ConfigConflict, NotFound, SendTestUnavailable, SendTestFailed, TemplateError) as exc:
        flash(f"Not sent: {_message(exc)}", "error")
        # the query string as it came, typed as url_for's **values (Any): as a MultiDict[str, str], mypy
        # would also match its values against url_for's own keywords (_external: bool | None, ...)
        query: Mapping[str, Any] = request.args
        return redirect(url_for(".edit", locale=locale, message_type=message_type, **query))
    return _cell_page(editor, scope, message_type, locale, sent=sent)
