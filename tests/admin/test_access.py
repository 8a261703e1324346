"""Login, roles, CSRF and API tokens: the rules every operator page and endpoint stands on."""

from __future__ import annotations

import re

import pytest

from connector import create_app
from connector.auth.tokens import ApiTokens
from connector.auth.users import MAX_FAILURES, AccountError, Users
from connector.runtime import Runtime
from tests.conftest import OPERATOR_PASSWORD, add_operator

PAGES = [
    "/admin/",
    "/admin/integrations/",
    "/admin/assets/",
    "/admin/rules/",
    "/admin/templates/",
    "/admin/conversations/",
    "/admin/dead-letters/",
    "/admin/transfer/",
    "/admin/accounts/",
]


def login_form_token(client) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/admin/login").get_data(True))[1]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_needs_a_login(client, page):
    answer = client.get(page)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login?next=")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_for_a_viewer(operator, page):
    assert operator("viewer").get(page).status_code == 200


def test_login_with_the_right_password_and_out_again(client, runtime, operator_password_hash):
    add_operator(runtime.redis, "alice", "editor", operator_password_hash)
    token = login_form_token(client)
    answer = client.post(
        "/admin/login?next=/admin/rules/", data={"name": "alice", "password": OPERATOR_PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/rules/"
    assert "alice" in client.get("/admin/").get_data(as_text=True)

    page = client.get("/admin/").get_data(as_text=True)
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)[1]
    assert client.post("/admin/logout", data={"csrf_token": csrf}).status_code == 302
    assert client.get("/admin/").status_code == 302, "logged out"


def test_a_wrong_password_is_refused_and_repeated_failures_lock_the_account(client, runtime, operator_password_hash):
    add_operator(runtime.redis, "bob", "viewer", operator_password_hash)
    token = login_form_token(client)
    for _ in range(MAX_FAILURES):
        answer = client.post("/admin/login", data={"name": "bob", "password": "wrong-password", "csrf_token": token})
        assert answer.status_code == 401
        assert "Wrong user name or password" in answer.get_data(as_text=True)
    locked = client.post("/admin/login", data={"name": "bob", "password": OPERATOR_PASSWORD, "csrf_token": token})
    assert locked.status_code == 429, "even the right password waits out the lockout"


def test_the_next_parameter_never_leaves_the_site(client, runtime, operator_password_hash):
    add_operator(runtime.redis, "carol", "viewer", operator_password_hash)
    token = login_form_token(client)
    answer = client.post(
        "/admin/login?next=//evil.example.com/x",
        data={"name": "carol", "password": OPERATOR_PASSWORD, "csrf_token": token},
    )
    assert answer.headers["Location"] == "/admin/"


def test_a_form_post_without_the_csrf_token_is_refused(operator, runtime):
    admin = operator("admin")
    answer = admin.post("/admin/accounts/users", data={"name": "dave", "role": "viewer", "password": "long-password"})
    assert answer.status_code == 400
    assert "CSRF" in answer.get_data(as_text=True)
    assert Users(runtime.redis).get("dave") is None
    ok = admin.post(
        "/admin/accounts/users",
        data={"name": "dave", "role": "viewer", "password": "long-password", "csrf_token": admin.csrf},
    )
    assert ok.status_code == 302
    assert Users(runtime.redis).get("dave").role == "viewer"


def test_the_login_form_itself_needs_the_csrf_token(client, runtime, operator_password_hash):
    add_operator(runtime.redis, "erin", "viewer", operator_password_hash)
    answer = client.post("/admin/login", data={"name": "erin", "password": OPERATOR_PASSWORD})
    assert answer.status_code == 200 and client.get("/admin/").status_code == 302, "not logged in"


def test_a_viewer_cannot_change_anything(operator, runtime):
    viewer = operator("viewer")
    for path in ("/admin/accounts/users", "/admin/accounts/tokens", "/admin/accounts/password"):
        answer = viewer.post(
            path, data={"name": "x", "role": "admin", "password": "long-password", "csrf_token": viewer.csrf}
        )
        assert answer.status_code == 403, path
    assert Users(runtime.redis).get("x") is None
    assert ApiTokens(runtime.redis).listing() == []


def test_an_editor_cannot_manage_users(operator, runtime):
    editor = operator("editor")
    answer = editor.post(
        "/admin/accounts/users",
        data={"name": "x", "role": "admin", "password": "long-password", "csrf_token": editor.csrf},
    )
    assert answer.status_code == 403
    assert Users(runtime.redis).get("x") is None


def test_the_last_admin_keeps_the_role(runtime):
    users = Users(runtime.redis)
    users.save("root", "admin", "long-password")
    with pytest.raises(AccountError, match="last admin"):
        users.save("root", "viewer")
    with pytest.raises(AccountError, match="last admin"):
        users.delete("root")
    with pytest.raises(AccountError, match="at least 8"):
        users.save("new", "viewer", "short")


def test_admin_is_bootstrapped_from_the_environment(settings, redis):
    from dataclasses import replace

    app = create_app(runtime=Runtime(replace(settings, admin_password="bootstrap-password")))
    assert Users(redis).get("admin").role == "admin"
    assert Users(redis).authenticate("admin", "bootstrap-password") is not None
    create_app(runtime=Runtime(replace(settings, admin_password="rotated-password")))
    assert Users(redis).authenticate("admin", "rotated-password") is not None, "a new password replaces the old"
    assert app is not None


def test_session_cookies_are_secure_httponly_and_samesite(operator):
    client = operator("viewer")
    cookie = client.get_cookie("session")
    assert cookie.secure and cookie.http_only and cookie.same_site == "Lax"


def test_issued_token_is_shown_once_and_works_on_the_api(operator, app):
    editor = operator("editor")
    page = editor.post("/admin/accounts/tokens", data={"label": "script", "csrf_token": editor.csrf})
    token = re.search(r'<code id="new-token">([^<]+)</code>', page.get_data(as_text=True))[1]
    api = app.test_client()
    me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json == {"name": "editor", "role": "editor"}
    assert token not in editor.get("/admin/accounts/").get_data(as_text=True), "never shown again"


def test_the_api_refuses_missing_and_revoked_tokens(app, runtime, api_client):
    anonymous = app.test_client()
    answer = anonymous.get("/api/v1/me")
    assert answer.status_code == 401 and "Bearer" in answer.json["message"]
    assert anonymous.get("/api/v1/me", headers={"Authorization": "Bearer cct_nope"}).status_code == 401

    client = api_client("viewer")
    assert client.get("/api/v1/me").status_code == 200
    tokens = ApiTokens(runtime.redis)
    assert tokens.revoke(tokens.listing("api-viewer")[0].id)
    assert client.get("/api/v1/me").status_code == 401


def test_the_api_accepts_a_ui_session(operator):
    admin = operator("admin")
    assert admin.get("/api/v1/me").json["role"] == "admin"


def test_openapi_is_served(client):
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    assert spec.json["info"]["title"] == "Channel connector"
    assert "bearer" in spec.json["components"]["securitySchemes"]


def test_a_change_made_by_another_process_shows_on_the_next_page(operator, settings):
    """Two web processes: one saves, the operator's next request lands on the other."""
    admin = operator("admin")
    elsewhere = Runtime(settings)  # another process's runtime over the same Redis
    assert admin.get("/admin/integrations/").status_code == 200  # this process has read the store now
    elsewhere.overrides.save(
        "integrations",
        {"name": "Elsewhere", "type": "hybrid", "base_url": "https://router.example.com"},
        elsewhere.provisioned,
        create=True,
    )
    assert admin.get("/admin/integrations/Elsewhere").status_code == 200, "no wait for the periodic check"


def _routes(app, prefix: str):
    """(endpoint, method, path with sample arguments) of every state-changing route under `prefix`."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(prefix):
            continue
        for method in sorted((rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}):
            path = rule.rule
            for argument in rule.arguments:
                path = path.replace(f"<{argument}>", "x").replace(f"<string:{argument}>", "x")
            yield rule.endpoint, method, re.sub(r"<[^>]+>", "x", path)


def test_a_viewer_can_change_nothing_through_any_ui_route(app, operator, runtime):
    viewer = operator("viewer")
    version = runtime.overrides.version()
    checked = 0
    for endpoint, method, path in _routes(app, "/admin/"):
        if endpoint in {"admin.login", "admin.logout"}:
            continue
        answer = viewer.open(path, method=method, data={"csrf_token": viewer.csrf, "name": "x"})
        assert answer.status_code == 403, f"{method} {path} ({endpoint}) answered {answer.status_code}"
        checked += 1
    assert checked >= 25, "every write route of the UI was tried"
    assert runtime.overrides.version() == version, "nothing was written"


def test_a_viewer_can_change_nothing_through_any_api_route(app, api_client, runtime):
    viewer = api_client("viewer")
    version = runtime.overrides.version()
    checked = 0
    for endpoint, method, path in _routes(app, "/api/v1/"):
        if endpoint == "rules.test":  # the tester is a POST that changes nothing
            continue
        answer = viewer.open(path, method=method, json={"name": "x"})
        assert answer.status_code == 403, f"{method} {path} ({endpoint}) answered {answer.status_code}"
        checked += 1
    assert checked >= 15, "every write route of the API was tried"
    assert runtime.overrides.version() == version, "nothing was written"


def test_every_change_is_logged_with_its_operator_and_never_its_body(operator, api_client, caplog):
    admin = operator("admin")
    with caplog.at_level("INFO", logger="connector.audit"):
        admin.post("/admin/accounts/tokens", data={"label": "secret-label-text", "csrf_token": admin.csrf})
        api_client("editor").put("/api/v1/rules/order", json={"order": []})
    changes = [r for r in caplog.records if r.name == "connector.audit"]
    assert [(r.operator, r.via, r.method) for r in changes] == [("admin", "ui", "POST"), ("api-editor", "api", "PUT")]
    assert changes[0].endpoint == "admin_accounts.issue_token"
    assert "secret-label-text" not in caplog.text


def test_machine_endpoints_neither_read_nor_refresh_the_operator_session(operator):
    """Webhooks and ECE callbacks authenticate by signature or credentials alone: an operator's
    cookie sent along is never opened (Flask marks a read session with `Vary: Cookie`) and no
    cookie comes back."""
    from tests.helpers import WHATSAPP_ASSET, whatsapp_headers, whatsapp_payload

    browser = operator("admin")
    assert "Cookie" in browser.get("/admin/").headers.get("Vary", ""), "pages read the operator's session"
    body = whatsapp_payload([("15550001111", "wamid.session.1", "hello")])
    webhook = browser.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))
    assert webhook.status_code == 200
    callback = browser.post("/ece/no-such-integration/callback", json=[])
    assert callback.status_code == 404
    for answer in (webhook, callback):
        assert "Vary" not in answer.headers and "Set-Cookie" not in answer.headers
