"""/api/v1/finesse: the media-blending section read, made and replaced by admins (validated by
FinesseSchema, the password masked and kept), read-only when a provisioning file defines it, "test"
and "test and save" against the Finesse simulator, and its import through /api/v1/config/import."""

from __future__ import annotations

import pytest
import yaml

from connector import create_app
from connector.config.overrides import MASK
from connector.operations import import_export
from connector.runtime import Runtime
from tests.blending.finesse_helpers import running_sandbox
from tests.operations.blending_data import ADMIN_PASSWORD, SECTION, make_section, provisioned_config_dir

URL = "/api/v1/finesse"


def test_without_a_section_reads_and_tests_are_404(api_client):
    admin = api_client("admin")
    for answer in (admin.get(URL), admin.post(f"{URL}/test")):
        assert answer.status_code == 404, answer.json
        assert answer.json["message"] == "media blending is not configured: there is no finesse: section"
    deleted = admin.delete(URL)
    assert deleted.status_code == 404 and deleted.json["message"] == "no finesse section made in the UI or API"


def test_an_admin_makes_the_section_the_password_masked_and_kept(api_client, runtime):
    admin = api_client("admin")
    made = admin.put(URL, json=SECTION)
    assert made.status_code == 200, made.json
    assert made.json["admin_password"] == MASK and made.json["admin_user"] == "fadmin"
    assert made.json["source"] is None and made.json["read_only"] is False
    assert made.json["max_chats"] == 3 and made.json["not_ready_reason"] == "Handling Chat"
    assert runtime.config.finesse.publisher == SECTION["publisher"], "in effect for every process"

    shown = api_client("viewer").get(URL).json
    shown.update(max_chats=4, chat_enabled="role:Agent")
    for key in ("source", "read_only"):
        shown.pop(key)
    replaced = admin.put(URL, json=shown)
    assert replaced.status_code == 200, replaced.json
    stored = runtime.overrides.singleton("finesse")
    assert stored["admin_password"] == ADMIN_PASSWORD, "MASK keeps the stored password"
    assert (stored["max_chats"], stored["chat_enabled"]) == (4, "role:Agent")

    without = {k: v for k, v in shown.items() if k != "admin_password"}
    assert admin.put(URL, json=without).status_code == 200
    assert runtime.overrides.singleton("finesse")["admin_password"] == ADMIN_PASSWORD, "left out keeps it too"


def test_only_an_admin_changes_the_section(api_client, runtime):
    for role in ("viewer", "editor"):
        assert api_client(role).put(URL, json=SECTION).status_code == 403, role
    make_section(runtime)
    assert api_client("editor").delete(URL).status_code == 403
    assert api_client("editor").post(f"{URL}/test", json=SECTION).status_code == 403, "a candidate needs an admin"
    assert runtime.overrides.singleton("finesse") is not None


def test_validation_errors_name_the_field_and_nothing_is_saved(api_client, runtime):
    admin = api_client("admin")
    bad = {**SECTION, "publisher": "nope", "max_chats": 0, "events": "carrier-pigeon", "colour": "blue"}
    answer = admin.put(URL, json=bad)
    assert answer.status_code == 422
    assert {"publisher", "max_chats", "events", "colour"} <= set(answer.json["errors"]["json"])
    policy = admin.put(URL, json={**SECTION, "chat_enabled": "teams:Support"})
    assert policy.status_code == 422
    assert "team:<name>" in " ".join(policy.json["errors"]["json"]["chat_enabled"])
    assert runtime.overrides.singleton("finesse") is None


@pytest.mark.parametrize("password", [None, MASK, ""])
def test_a_new_section_needs_its_password(api_client, runtime, password):
    body = {k: v for k, v in SECTION.items() if k != "admin_password"}
    if password is not None:
        body["admin_password"] = password
    answer = api_client("admin").put(URL, json=body)
    assert answer.status_code == 422, answer.json
    assert "admin_password" in answer.json["errors"]["json"]
    assert runtime.overrides.singleton("finesse") is None


@pytest.mark.parametrize("payload", [[], "text", 42])
def test_a_body_that_is_not_an_object_is_a_422(api_client, payload):
    answer = api_client("admin").put(URL, json=payload)
    assert answer.status_code == 422
    assert answer.json["errors"]["json"] == {"_schema": ["send a JSON object"]}


def test_delete_removes_a_section_made_here(api_client, runtime):
    make_section(runtime)
    assert api_client("admin").delete(URL).status_code == 204
    assert api_client("admin").get(URL).status_code == 404
    assert runtime.config.finesse is None


@pytest.fixture
def provisioned(settings, redis, tmp_path, operator_password_hash):
    """An app whose provisioning files define finesse: (and an admin token for it)."""
    from dataclasses import replace

    from connector.auth.tokens import ApiTokens
    from tests.conftest import add_operator

    runtime = Runtime(replace(settings, config_dir=provisioned_config_dir(tmp_path / "config")))
    app = create_app(runtime=runtime)
    add_operator(redis, "admin", "admin", operator_password_hash)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ApiTokens(redis).issue('admin', 'tests')}"
    return runtime, client


def test_a_provisioned_section_is_read_only_naming_its_file(provisioned):
    runtime, admin = provisioned
    source = runtime.provisioned.finesse.source
    shown = admin.get(URL).json
    assert shown["read_only"] is True and shown["source"] == source and shown["admin_password"] == MASK
    for answer in (admin.put(URL, json={**SECTION, "max_chats": 5}), admin.delete(URL)):
        assert answer.status_code == 409 and source in answer.json["message"]
    assert runtime.overrides.singleton("finesse") is None


def test_the_import_api_adds_a_finesse_section_and_shows_its_changes(api_client, runtime):
    admin = api_client("admin")
    text = yaml.safe_dump({"finesse": SECTION})
    dry = admin.post("/api/v1/config/import", json={"yaml": text})
    assert dry.status_code == 200 and dry.json["ok"], dry.json
    assert [(c["kind"], c["action"]) for c in dry.json["changes"]] == [("finesse", "add")]
    applied = admin.post("/api/v1/config/import?dry_run=false", json={"yaml": text})
    assert applied.status_code == 200 and applied.json["written"] == 1, applied.json
    assert admin.get(URL).json["max_chats"] == 3

    changed = yaml.safe_dump({"finesse": {**SECTION, "max_chats": 4, "admin_password": MASK}})
    [change] = admin.post("/api/v1/config/import", json={"yaml": changed}).json["changes"]
    assert (change["action"], change["fields"]) == ("change", ["max_chats"])
    exported = yaml.safe_load(admin.get("/api/v1/config/export").json["yaml"])
    assert exported["finesse"]["admin_password"] == "${FINESSE_ADMIN_PASSWORD}", "never in clear"
    assert exported["finesse"]["max_chats"] == 3


# -- against the Finesse simulator ------------------------------------------------------------------


@pytest.fixture
def finesse_sim():
    with running_sandbox() as sandbox:
        yield sandbox


def sim_section(sandbox, **overrides) -> dict:
    return {**SECTION, "publisher": sandbox.publisher_url, "subscriber": sandbox.subscriber_url, **overrides}


@pytest.mark.e2e
def test_test_asks_each_node_and_names_the_one_in_service(api_client, runtime, finesse_sim):
    admin = api_client("admin")
    answer = admin.post(f"{URL}/test", json=sim_section(finesse_sim))
    assert answer.status_code == 200, answer.json
    assert answer.json["ok"] is True and answer.json["active"] == "publisher"
    assert [(n["role"], n["reachable"], n["status"]) for n in answer.json["nodes"]] == [
        ("publisher", True, "IN_SERVICE"),
        ("subscriber", True, "IN_SERVICE"),
    ]
    assert runtime.overrides.singleton("finesse") is None, "a test saves nothing"

    finesse_sim.node_down("publisher")
    finesse_sim.node_down("subscriber", "out_of_service")
    answer = admin.post(f"{URL}/test", json=sim_section(finesse_sim))
    publisher, subscriber = answer.json["nodes"]
    assert answer.json["ok"] is False and answer.json["active"] is None
    assert publisher["reachable"] is False and "connection refused" in publisher["error"]
    assert subscriber["reachable"] is True and subscriber["status"] == "OUT_OF_SERVICE"
    assert subscriber["error"].startswith("OUT_OF_SERVICE")


@pytest.mark.e2e
def test_test_and_save_saves_only_when_every_node_is_in_service(api_client, runtime, finesse_sim):
    admin = api_client("admin")
    finesse_sim.node_down("subscriber", "out_of_service")
    failed = admin.put(f"{URL}?test=true", json=sim_section(finesse_sim))
    assert failed.status_code == 422, failed.json
    assert list(failed.json["errors"]["test"]) == ["subscriber"]
    assert "OUT_OF_SERVICE" in failed.json["errors"]["test"]["subscriber"][0]
    assert runtime.overrides.singleton("finesse") is None

    finesse_sim.node_up("subscriber")
    saved = admin.put(f"{URL}?test=true", json=sim_section(finesse_sim))
    assert saved.status_code == 200, saved.json
    assert runtime.overrides.singleton("finesse")["publisher"] == finesse_sim.publisher_url

    checked = api_client("editor").post(f"{URL}/test")
    assert checked.status_code == 200 and checked.json["ok"] is True, "an editor checks the section in effect"


def test_an_export_holds_a_ui_made_section(runtime):
    make_section(runtime)
    exported = yaml.safe_load(import_export.export(runtime.config).text)
    assert exported["finesse"]["publisher"] == SECTION["publisher"]
