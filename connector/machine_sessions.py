"""The operator session cookie is for people at the operator UI: the endpoints that providers and ECE
call, and the agents' own `/agent/` paths, never open it.

A webhook or a callback authenticates by its signature or its integration's credentials alone, so
a session cookie sent with one (by mistake or by an attacker) is neither read nor answered with a
new cookie. Not opening it also spares every webhook the cookie's parsing and signing check, which
is a noticeable part of an acknowledgement's cost. An agent (who may be an operator too, in the same
browser) has a session of their own (connector/backends/hybrid/sessions.py): the operator's is
neither read there nor written.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

MACHINE_PREFIXES = ("/webhooks/", "/ece/")
"""Paths called by providers and contact centers (docs/architecture.md, "HTTP surface"), never by a browser."""
AGENT_PREFIXES = ("/agent/",)
"""The Hybrid Chat agent API and desktop (docs/hybrid.md): their own session, never the operator's."""
NO_OPERATOR_SESSION = MACHINE_PREFIXES + AGENT_PREFIXES


class OperatorOnlySessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with a null session on the machine and agent endpoints."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(NO_OPERATOR_SESSION):
            return self.make_null_session(app)
        return super().open_session(app, request)
