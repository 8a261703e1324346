"""The agent API of Hybrid Chat (`/agent/...`): the desktop, the Finesse gadget and outside tools.

It is a thin HTTP layer over `desk.py`; see docs/hybrid.md for its contract."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("hybrid_agent", __name__)
