"""The agent desktop page (`GET /agent/`): one server-rendered page with small JavaScript, usable
with the keyboard alone, over the agent API (docs/hybrid.md, "The agent desktop").

The page is a shell: the agent's state, offers and chats come from the API in the browser
(`static/desktop.js`), so this module knows nothing of sessions or chats by itself. The agent API
may tell it how to see the request's agent session (`read_sessions_with`); with that, the page
carries the session's CSRF token in `<meta name="csrf-token">`, the transfer field lists the
queues, and `?embedded=1` (the Finesse gadget) leaves the login form out. Without it the script
finds out by asking `GET /agent/api/me`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, render_template, request

from connector.backends.hybrid.router import hybrid_queues

blueprint = Blueprint(
    "hybrid_desktop",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/agent/static",
)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)
"""Nothing inline and nothing from elsewhere: the page's script and styles are its own files, and
everything it shows from a customer is set as text. No frame-ancestors: Finesse embeds the page."""

NOT_READY_REASONS = ("Break", "Meal", "Meeting", "Training", "Other work")
"""What the agent may give as the reason for NOT_READY (the API takes any text)."""


@dataclass(frozen=True)
class AgentSession:
    """The request's agent session, as the agent API sees it."""

    agent_id: str
    csrf_token: str


SessionReader = Callable[[], AgentSession | None]
_session_reader: SessionReader | None = None


def read_sessions_with(reader: SessionReader | None) -> SessionReader | None:
    """The agent API hands the page the way to see a request's agent session (None: no longer);
    returns the one it replaces (a test puts it back)."""
    global _session_reader
    previous, _session_reader = _session_reader, reader
    return previous


def current_session() -> AgentSession | None:
    return _session_reader() if _session_reader is not None else None


def _queues() -> list[str]:
    """The queues an agent may transfer to: every enabled queue of every Hybrid Chat integration."""
    runtime = current_app.extensions.get("connector")
    if runtime is None:
        return []
    return sorted({entry_point.name for _integration, entry_point in hybrid_queues(runtime.config).values()})


@blueprint.get("/agent/")
def desktop() -> Response:
    session = current_session()
    page = render_template(
        "agent/desktop.html",
        embedded=request.args.get("embedded") == "1",
        session=session,
        queues=_queues() if session is not None else [],
        reasons=NOT_READY_REASONS,
    )
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
