"""Login, logout and the overview page; this blueprint also serves the UI's templates and static files."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from connector.admin.access import guard, runtime
from connector.auth.users import LockedOut, Users
from connector.store import keys

blueprint = guard(
    Blueprint(
        "admin",
        __name__,
        url_prefix="/admin",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    ),
    public=("admin.login",),
)


class LoginForm(FlaskForm):  # type: ignore[misc]  # flask-wtf ships no types: FlaskForm is Any
    name = StringField("User name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("admin.home")


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():  # Flask-WTF checks the CSRF token here
        try:
            # DataRequired: once the form validates, both fields hold a non-empty string
            name, password = cast(str, form.name.data), cast(str, form.password.data)
            found = Users(runtime().redis).authenticate(name, password)
        except LockedOut:
            flash("Too many failed logins for this account: try again in 15 minutes.", "error")
            return render_template("admin/login.html", form=form), 429
        if found is not None:
            login_user(found)
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong user name or password.", "error")
        return render_template("admin/login.html", form=form), 401
    return render_template("admin/login.html", form=form)


@blueprint.route("/logout", methods=["POST"])
def logout() -> Any:
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("admin.login"))


@blueprint.route("/")
def home() -> Any:
    redis = runtime().redis
    config = runtime().config
    counts = {
        "integrations": len(config.integrations),
        "entry_points": sum(len(i.entry_points) for i in config.integrations),
        "assets": len(config.assets),
        "rules": len(config.rules),
        "conversations": redis.zcard(keys.threads_by_activity()),
        "dead_letters": redis.llen(keys.dead_letters()),
        "unrouted": redis.llen(keys.unrouted()),
    }
    return render_template("admin/home.html", counts=counts)


@blueprint.app_template_filter("datetime")
def format_datetime(value: float | str | None) -> str:
    """Unix seconds → "2026-11-22 21:30:05 UTC" (operators compare times with logs, which are UTC)."""
    from datetime import UTC, datetime

    if value in (None, ""):
        return "—"
    return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
