"""A query parameter a call does not take is a 400 naming it, on every route of the API: a typo must not
silently give the caller the default of what they asked for."""

from __future__ import annotations

import re

import pytest


def _api_routes(app):
    """(method, path with sample arguments) of every route of the REST API (not its documents)."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint.startswith(
            ("api-docs.", "api_reference.", "api_root")
        ):
            continue
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, path


def test_every_route_refuses_an_unknown_parameter_and_names_it(app, api_client):
    admin = api_client("admin")
    checked = 0
    for method, path in _api_routes(app):
        answer = admin.open(f"{path}?per_pge=5&zz=1", method=method, json={})
        assert answer.status_code == 400, f"{method} {path} answered {answer.status_code}"
        body = answer.json
        assert body["code"] == 400 and body["status"] == "Bad Request", "the API's error body"
        assert body["errors"]["query"] == {"per_pge": ["Unknown field."], "zz": ["Unknown field."]}
        assert "per_pge, zz" in body["message"], body["message"]
        checked += 1
    assert checked >= 40, "every route of the API was tried"


def test_the_message_says_what_the_call_takes(api_client):
    admin = api_client("admin")
    listing = admin.get("/api/v1/dead-letters?per_pge=5").json
    assert listing["message"] == "unknown query parameter per_pge: it takes page, per_page"
    assert admin.get("/api/v1/rules?sort=name").json["message"] == "unknown query parameter sort: it takes none"


def test_known_parameters_still_work(api_client):
    admin = api_client("admin")
    assert admin.get("/api/v1/dead-letters?page=1&per_page=5").status_code == 200
    assert admin.get("/api/v1/templates?integration=TestRouter&entry_point=Support").status_code == 200
    assert admin.get("/api/v1/config/export?kind=assets").status_code == 200


def test_a_misspelt_test_flag_saves_nothing(api_client, runtime):
    """`?tset=true` would otherwise save an integration untested."""
    body = {"name": "Typo", "type": "hybrid", "entry_points": [{"name": "Care"}]}
    answer = api_client("admin").post("/api/v1/integrations?tset=true", json=body)
    assert answer.status_code == 400 and answer.json["errors"]["query"] == {"tset": ["Unknown field."]}
    assert runtime.config.integration("Typo") is None


@pytest.mark.parametrize("path", ["/api/v1/rules?x=1", "/api/v1/me?x=1"])
def test_a_caller_without_a_token_hears_401_first(client, path):
    assert client.get(path).status_code == 401


def test_every_operation_documents_the_400(client):
    spec = client.get("/api/v1/openapi.json").json
    lacking = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method in ("get", "put", "post", "delete", "patch")
        and "400" not in operation["responses"]
        and "401" in operation["responses"]
    ]
    assert not lacking, f"operations that document 401 but not 400: {lacking}"
