"""Operator accounts (admins manage them) and API tokens (each user issues and revokes their own)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from connector.admin.access import guard, requires, runtime, user
from connector.auth.tokens import ApiTokens
from connector.auth.users import ROLES, AccountError, Users, password_problem

blueprint = guard(Blueprint("admin_accounts", __name__, url_prefix="/admin/accounts"))


@blueprint.route("/")
def index() -> Any:
    redis = runtime().redis
    me = user()
    users = Users(redis).listing() if me.can("admin") else [me]
    tokens = ApiTokens(redis).listing(None if me.can("admin") else me.name)
    return render_template("admin/accounts.html", users=users, tokens=tokens, roles=ROLES, new_token=None)


@blueprint.route("/users", methods=["POST"])
@requires("admin")
def save_user() -> Any:
    form = request.form
    try:
        Users(runtime().redis).save(form.get("name", "").strip(), form.get("role", ""), form.get("password") or None)
        flash(f"User {form.get('name')} saved.", "success")
    except AccountError as exc:
        for message in exc.messages:  # every problem of the form at once
            flash(message, "error")
    return redirect(url_for(".index"))


@blueprint.route("/users/<name>/delete", methods=["POST"])
@requires("admin")
def delete_user(name: str) -> Any:
    if name == user().name:
        flash("You cannot delete your own account.", "error")
        return redirect(url_for(".index"))
    try:
        if not Users(runtime().redis).delete(name):
            abort(404, f"No user {name}.")
        flash(f"User {name} deleted.", "success")
    except AccountError as exc:
        flash(str(exc), "error")
    return redirect(url_for(".index"))


@blueprint.route("/password", methods=["POST"])
def change_password() -> Any:
    me = user()
    users = Users(runtime().redis)
    new_password = request.form.get("password", "")
    problems = (
        [] if users.authenticate(me.name, request.form.get("current", "")) else ["The current password is wrong."]
    )
    if weak := password_problem(new_password):
        problems.append(f"The new password is refused: {weak}.")
    for problem in problems:  # both at once, not one per attempt
        flash(problem, "error")
    if problems:
        return redirect(url_for(".index"))
    try:
        users.save(me.name, me.role, new_password)
        flash("Password changed.", "success")
    except AccountError as exc:
        for message in exc.messages:
            flash(message, "error")
    return redirect(url_for(".index"))


@blueprint.route("/tokens", methods=["POST"])
def issue_token() -> Any:
    redis = runtime().redis
    me = user()
    label = request.form.get("label", "").strip() or "API token"
    token = ApiTokens(redis).issue(me.name, label)
    users = Users(redis).listing() if me.can("admin") else [me]
    tokens = ApiTokens(redis).listing(None if me.can("admin") else me.name)
    flash("Copy the token now: it is not shown again.", "success")
    return render_template("admin/accounts.html", users=users, tokens=tokens, roles=ROLES, new_token=token)


@blueprint.route("/tokens/<token_id>/revoke", methods=["POST"])
def revoke_token(token_id: str) -> Any:
    me = user()
    if ApiTokens(runtime().redis).revoke(token_id, None if me.can("admin") else me.name):
        flash("Token revoked.", "success")
    else:
        flash("No such token of yours.", "error")
    return redirect(url_for(".index"))
