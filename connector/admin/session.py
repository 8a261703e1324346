"""Login, logout and the overview page with its dashboard; this blueprint also serves the UI's
templates and static files."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from connector import dashboard
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
    """The overview: what is configured, and the figures of now (connector/dashboard.py), which the
    page's script re-reads every DASHBOARD_SECONDS."""
    rt = runtime()
    config = rt.config
    board = dashboard.read(rt)
    counts = {
        "integrations": len(config.integrations),
        "entry_points": sum(len(i.entry_points) for i in config.integrations),
        "assets": len(config.assets),
        "rules": len(config.rules),
        "conversations": rt.redis.zcard(keys.threads_by_activity()),
    }
    return render_template("admin/home.html", counts=counts, board=board, chart=_chart(board), every=DASHBOARD_SECONDS)


DASHBOARD_SECONDS = 10
"""How often an open overview re-reads its figures: a periodic read rather than a stream, because the
figures change every minute whatever happens (a stream would fire at each poll anyway), and a page
between reads holds no web thread, which the agents' streams need."""


def _chart(board: dashboard.Dashboard) -> dict[str, Any]:
    """The charts' data (dashboard.js, uPlot's columns): x in unix seconds, one series per channel."""
    return {
        "x": [minute * 60 for minute in board.minutes],
        "channels": [row.channel for row in board.traffic],
        "in": [row.inbound for row in board.traffic],
        "out": [row.outbound for row in board.traffic],
    }


@blueprint.app_template_filter("minute")
def format_minute(minute: int) -> str:
    """A minute (unix seconds // 60) → "21:30 UTC"."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(minute * 60, UTC).strftime("%H:%M UTC")


@blueprint.app_template_filter("duration")
def format_duration(seconds: float | None) -> str:
    """Seconds → "45 s", "3 min 20 s", "2 h 5 min" (a wait an operator reads at a glance)."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


@blueprint.app_template_filter("datetime")
def format_datetime(value: float | str | None) -> str:
    """Unix seconds → "2026-11-22 21:30:05 UTC" (operators compare times with logs, which are UTC)."""
    from datetime import UTC, datetime

    if value in (None, ""):
        return "—"
    return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
