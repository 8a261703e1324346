"""A new ECE integration authenticates ECE's callbacks from the start: bearer, with a generated token shown
once (the UI's answer to the save, the API's 201) and masked after; `none` only when asked for."""

from __future__ import annotations

import re

from connector.config.loader import load_config
from connector.config.overrides import MASK
from tests.conftest import ECE_CLIENT

KEY, SECRET = ECE_CLIENT
FORM = {
    "name": "Lab",
    "type": "ece",
    "base_url": "http://127.0.0.1:9/ece",
    "client_key": KEY,
    "client_secret": SECRET,
    "callback_auth_type": "bearer",
    "callback_token": "",
    "verify_tls": "on",
    "action": "save",
}
BODY = {"name": "Lab", "type": "ece", "base_url": "http://127.0.0.1:9/ece", "client_key": KEY, "client_secret": SECRET}


def stored_auth(runtime) -> dict:
    return runtime.overrides.raw("integrations", "Lab")["callback_auth"]


def callback(client, token: str | None):
    """ECE's call to the callback URL: the credentials are checked before the body is read."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/ece/Lab/callback", data=b"{}", headers={**headers, "Content-Type": "application/json"})


def test_the_new_ece_form_offers_bearer(operator):
    page = operator("admin").get("/admin/integrations/new?type=ece").get_data(as_text=True)
    assert '<option value="bearer" selected>bearer</option>' in page
    assert "Leave empty to have a strong one made" in page


def test_saving_without_a_token_makes_one_shown_once(operator, runtime, client):
    admin = operator("admin")
    answer = admin.post("/admin/integrations/new", data={**FORM, "csrf_token": admin.csrf})
    assert answer.status_code == 200, "the token is in this answer, not behind a redirect"
    token = re.search(r'<code id="new-callback-token">([^<]+)</code>', answer.get_data(as_text=True))[1]
    assert len(token) >= 40
    assert stored_auth(runtime) == {"type": "bearer", "token": token}
    assert token not in admin.get("/admin/integrations/Lab").get_data(as_text=True), "never shown again"

    assert callback(client, None).status_code == 401
    assert callback(client, "not-the-token").status_code == 403
    assert callback(client, token).status_code == 400, "authenticated: only the empty batch is refused"

    edited = admin.post("/admin/integrations/Lab/edit", data={**FORM, "csrf_token": admin.csrf})
    assert edited.status_code == 302, "an edit makes no new token"
    assert stored_auth(runtime) == {"type": "bearer", "token": token}, "an empty field keeps the stored one"


def test_a_typed_token_is_kept_and_none_stays_none_when_chosen(operator, runtime):
    admin = operator("admin")
    typed = admin.post("/admin/integrations/new", data={**FORM, "csrf_token": admin.csrf, "callback_token": "mine"})
    assert typed.status_code == 302 and stored_auth(runtime) == {"type": "bearer", "token": "mine"}
    admin.post("/admin/integrations/Lab/delete", data={"csrf_token": admin.csrf})
    chosen = admin.post(
        "/admin/integrations/new", data={**FORM, "csrf_token": admin.csrf, "callback_auth_type": "none"}
    )
    assert chosen.status_code == 302 and stored_auth(runtime) == {"type": "none"}


def test_the_api_makes_the_token_too_and_answers_it_once(api_client, runtime, client):
    admin = api_client("admin")
    created = admin.post("/api/v1/integrations", json=BODY)
    assert created.status_code == 201, created.json
    token = created.json["callback_auth"]["token"]
    assert created.json["callback_auth"]["type"] == "bearer" and token != MASK and len(token) >= 40
    assert stored_auth(runtime) == {"type": "bearer", "token": token}
    assert admin.get("/api/v1/integrations/Lab").json["callback_auth"] == {"type": "bearer", "token": MASK}
    assert callback(client, token).status_code == 400 and callback(client, None).status_code == 401

    admin.delete("/api/v1/integrations/Lab")
    none = admin.post("/api/v1/integrations", json={**BODY, "callback_auth": {"type": "none"}})
    assert none.status_code == 201 and none.json["callback_auth"] == {"type": "none"}
    assert stored_auth(runtime) == {"type": "none"}


def test_a_hybrid_integration_gets_no_token(api_client, runtime):
    created = api_client("admin").post(
        "/api/v1/integrations", json={"name": "Desk", "type": "hybrid", "entry_points": [{"name": "Care"}]}
    )
    assert created.status_code == 201 and "callback_auth" not in created.json
    assert "callback_auth" not in runtime.overrides.raw("integrations", "Desk")


def test_imports_and_provisioned_files_are_taken_as_written(api_client, runtime, tmp_path):
    """Only a new item made in the UI or API gets a token: a file (imported or provisioned) says what it means."""
    imported = """
integrations:
  - {name: Lab, type: ece, base_url: "http://127.0.0.1:9/ece", client_key: k, client_secret: s,
     entry_points: [{name: Care, id: "1001"}]}
"""
    answer = api_client("admin").post("/api/v1/config/import?dry_run=false", json={"yaml": imported})
    assert answer.status_code == 200, answer.json
    assert "callback_auth" not in runtime.overrides.raw("integrations", "Lab")
    assert runtime.config.integration("Lab").callback_auth.type == "none"
    (tmp_path / "lab.yaml").write_text(imported)
    assert load_config(tmp_path).integration("Lab").callback_auth.type == "none"
