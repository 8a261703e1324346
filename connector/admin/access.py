"""Who may see and change what in the operator UI: login, roles and CSRF, in one place.

Every UI blueprint calls `guard(blueprint)`: all its pages need a login, every unsafe request
(POST, PUT, PATCH, DELETE) needs a valid CSRF token and at least the editor role, and views that
change integrations, assets, dead letters or accounts add `@requires("admin")`. A viewer can
therefore change nothing, whatever a view forgets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from connector.auth.users import User, Users
from connector.config.overrides import ConfigConflict, ConfigInvalid, NotFound
from connector.runtime import Runtime

audit_log = logging.getLogger("connector.audit")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "admin.login"
login_manager.login_message = "Please log in to continue."
login_manager.session_protection = "strong"

P = ParamSpec("P")
R = TypeVar("R")


@login_manager.user_loader
def _load_user(name: str) -> User | None:
    return Users(runtime().redis).get(name)


def runtime() -> Runtime:
    found: Runtime = current_app.extensions["connector"]  # Flask types extensions as dict[str, Any]; see create_app
    return found


def user() -> User:
    found: User = current_user._get_current_object()  # flask-login is untyped; its user loader returns a User
    return found


def guard(blueprint: Blueprint, *, public: tuple[str, ...] = ()) -> Blueprint:
    """Login, CSRF and "viewers only read" for every view of `blueprint` but the `public` ones."""

    @blueprint.before_request
    def _check() -> Any:
        if request.endpoint in public or request.endpoint == f"{blueprint.name}.static":
            return None
        if not current_user.is_authenticated:
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        if request.method not in SAFE_METHODS:
            csrf.protect()
            if not user().can("editor"):
                abort(403, "Your role can view but not change anything.")
            audit(user().name, "ui")
        return None

    return blueprint


def audit(name: str, via: str) -> None:
    """One log line per change an operator asks for (who, what, where; never the body)."""
    audit_log.info(
        "operator change",
        extra={
            "operator": name,
            "via": via,
            "method": request.method,
            "endpoint": request.endpoint,
            "path": request.path,
        },
    )


def requires(role: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The view needs at least `role` (the guard already demands a login)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            if not user().can(role):
                abort(403, f"This needs the {role} role.")
            return view(*args, **kwargs)

        return checked

    return decorate


@contextmanager
def flash_store_errors(errors: dict[str, list[str]] | None = None) -> Iterator[None]:
    """Turn the config store's refusals into flashed messages (and `errors` for inline display);
    the view checks `errors` (or the flashes) to decide whether to re-render the form."""
    try:
        yield
    except ConfigInvalid as exc:
        if errors is not None:
            errors.update(exc.errors)
        for field, messages in exc.errors.items():
            flash(f"{field}: {' '.join(messages)}" if field != "_schema" else " ".join(messages), "error")
    except (ConfigConflict, NotFound) as exc:
        if errors is not None:
            errors.setdefault("_schema", []).append(str(exc).strip("'\""))
        flash(str(exc).strip("'\""), "error")
