"""The operator session cookie is for people: the endpoints that providers and ECE call never open it.

A webhook or a callback authenticates by its signature or its integration's credentials alone, so
a session cookie sent with one (by mistake or by an attacker) is neither read nor answered with a
new cookie. Not opening it also spares every webhook the cookie's parsing and signing check, which
is a noticeable part of an acknowledgement's cost.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

MACHINE_PREFIXES = ("/webhooks/", "/ece/")
"""Paths called by providers and contact centers (docs/architecture.md, "HTTP surface"), never by a browser."""


class OperatorOnlySessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with a null session on the machine endpoints."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(MACHINE_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)
