"""The agent desktop page (`GET /agent/`): one server-rendered page with small JavaScript, usable
with the keyboard alone, over the agent API (docs/hybrid.md)."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("hybrid_desktop", __name__)
