"""Operator accounts, roles and API tokens, shared by the web UI (`connector/admin`) and the API."""
