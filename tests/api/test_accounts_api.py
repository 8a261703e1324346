"""Accounts and API tokens over the REST API: admins manage users, everyone their own tokens."""

from __future__ import annotations

from connector.auth.tokens import ApiTokens
from connector.auth.users import Users


def test_an_admin_creates_changes_and_deletes_a_user(api_client, runtime):
    admin = api_client("admin")
    created = admin.put("/api/v1/users/carol", json={"role": "editor", "password": "carol-password"})
    assert created.status_code == 200 and created.json == {"name": "carol", "role": "editor"}
    assert Users(runtime.redis).authenticate("carol", "carol-password") is not None
    assert admin.put("/api/v1/users/carol", json={"role": "viewer"}).json["role"] == "viewer", "password kept"
    assert {"name": "carol", "role": "viewer"} in admin.get("/api/v1/users").json
    assert admin.delete("/api/v1/users/carol").status_code == 204
    assert Users(runtime.redis).get("carol") is None
    assert admin.delete("/api/v1/users/carol").status_code == 404


def test_account_errors_name_the_field_or_the_conflict(api_client):
    admin = api_client("admin", name="root")
    short = admin.put("/api/v1/users/dave", json={"role": "viewer", "password": "short"})
    assert short.status_code == 422 and "password" in short.json["errors"]["json"]
    no_password = admin.put("/api/v1/users/dave", json={"role": "viewer"})
    assert no_password.status_code == 422 and "password" in no_password.json["errors"]["json"]
    bad_role = admin.put("/api/v1/users/dave", json={"role": "owner", "password": "long-password"})
    assert bad_role.status_code == 422 and "role" in bad_role.json["errors"]["json"]
    assert admin.delete("/api/v1/users/root").status_code == 409, "not yourself"
    assert admin.put("/api/v1/users/root", json={"role": "viewer"}).status_code == 409, "the last admin stays"


def test_only_admins_manage_users(api_client, runtime):
    editor = api_client("editor")
    assert editor.get("/api/v1/users").status_code == 403
    assert editor.put("/api/v1/users/eve", json={"role": "admin", "password": "long-password"}).status_code == 403
    assert Users(runtime.redis).get("eve") is None


def test_tokens_are_issued_once_listed_without_the_secret_and_revoked(api_client, app):
    editor = api_client("editor")
    issued = editor.post("/api/v1/tokens", json={"label": "wallboard"})
    assert issued.status_code == 201 and issued.json["token"].startswith("cct_")
    assert issued.json["user"] == "api-editor" and issued.json["label"] == "wallboard"
    listed = editor.get("/api/v1/tokens").json
    assert sorted(t["label"] for t in listed) == ["tests", "wallboard"]
    assert all("token" not in t for t in listed)
    fresh = app.test_client()
    headers = {"Authorization": f"Bearer {issued.json['token']}"}
    assert fresh.get("/api/v1/me", headers=headers).json["name"] == "api-editor"
    assert editor.delete(f"/api/v1/tokens/{issued.json['id']}").status_code == 204
    assert fresh.get("/api/v1/me", headers=headers).status_code == 401


def test_a_user_sees_and_revokes_only_their_own_tokens(api_client, runtime):
    tokens = ApiTokens(runtime.redis)
    other_id = tokens.describe(tokens.issue("someone-else", "theirs")).id
    editor = api_client("editor")
    assert other_id not in {t["id"] for t in editor.get("/api/v1/tokens").json}
    assert editor.delete(f"/api/v1/tokens/{other_id}").status_code == 404
    admin = api_client("admin")
    assert other_id in {t["id"] for t in admin.get("/api/v1/tokens").json}
    assert admin.delete(f"/api/v1/tokens/{other_id}").status_code == 204
    assert other_id not in {t.id for t in tokens.listing()}


def test_a_viewer_reads_own_tokens_but_issues_none(api_client):
    viewer = api_client("viewer")
    assert viewer.get("/api/v1/tokens").status_code == 200
    assert viewer.post("/api/v1/tokens", json={"label": "x"}).status_code == 403


def test_every_problem_of_an_account_change_is_in_one_answer(api_client, client):
    admin = api_client("admin")
    answer = admin.put("/api/v1/users/no spaces", json={"role": "owner", "password": "short"})
    assert answer.status_code == 422
    assert set(answer.json["errors"]["json"]) == {"name", "role", "password"}
    schema = client.get("/api/v1/openapi.json").json["components"]["schemas"]["UserBody"]
    assert schema["properties"]["role"]["enum"] == ["viewer", "editor", "admin"], "the roles stay documented"
