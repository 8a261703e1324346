"""The agent API of Hybrid Chat (`/agent/...`): the desktop, the Finesse gadget and outside tools.

It is a thin HTTP layer over `desk.py`; see docs/hybrid.md for its contract."""

from __future__ import annotations

from flask import Blueprint

from connector.backends.hybrid.desktop import blueprint as desktop

blueprint = Blueprint("hybrid_agent", __name__)
blueprint.register_blueprint(desktop)
