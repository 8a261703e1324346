"""Placeholder until this area is built (issue 5)."""

from __future__ import annotations

from connector.api.access import api_blueprint

blueprint = api_blueprint("integrations", "/integrations", "integrations")
