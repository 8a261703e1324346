"""The operator web UI at /admin: server-rendered Jinja2 pages with small local JavaScript.

One blueprint per area (the modules listed in AREAS); `access.guard` gives each the same login,
role and CSRF rules. Templates live in `templates/admin/`, static files in `static/` (no CDN).
"""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, send_from_directory

from connector.admin import access
from connector.auth.users import Users
from connector.runtime import Runtime

AREAS = (
    "session",
    "integrations",
    "assets",
    "rules",
    "flows",
    "templates_editor",
    "conversations",
    "agents",
    "finesse",
    "dead_letters",
    "transfer",
    "accounts",
    "unrouted",
    "live",
)
"""Modules of connector/admin with a `blueprint`; `session` (login, home, static) comes first."""


STATIC = Path(__file__).parent / "static"
FAVICON = "favicon.svg"
"""The UI's icon: base.html links it; /favicon.ico answers with it too, for the pages that link none
(the agent desktop, the API reference) and the browsers that ask there anyway."""


def favicon() -> Response:
    return send_from_directory(STATIC, FAVICON, mimetype="image/svg+xml", max_age=86400)


def secure_cookies(public_base_url: str) -> bool:
    """Cookies are Secure unless the connector is reached over plain http (a lab or the sandbox)."""
    return urlsplit(public_base_url).scheme != "http"


def init_admin(app: Flask, runtime: Runtime) -> None:
    secure = secure_cookies(runtime.settings.public_base_url)
    app.config.update(
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by access.guard on the UI and by the API for sessions
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    access.csrf.init_app(app)
    access.login_manager.init_app(app)
    if runtime.settings.admin_password:
        Users(runtime.redis).bootstrap_admin(runtime.settings.admin_password)
    for area in AREAS:
        app.register_blueprint(import_module(f"connector.admin.{area}").blueprint)
    app.add_url_rule("/favicon.ico", "favicon", favicon)
