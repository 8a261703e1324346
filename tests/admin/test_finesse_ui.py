"""The Finesse page: the finesse: section in effect (provisioned ones read-only with their file), the
admin's form with errors inline, "Test" / "Test and save" against the Finesse simulator, "Check
nodes", and the import of a finesse: section through the Import page."""

from __future__ import annotations

import html
import re
from dataclasses import replace

import pytest
import yaml

from connector import create_app
from connector.config.overrides import MASK
from connector.runtime import Runtime
from tests.blending.finesse_helpers import running_sandbox
from tests.conftest import OPERATOR_PASSWORD, add_operator
from tests.operations.blending_data import ADMIN_PASSWORD, SECTION, make_section, provisioned_config_dir

URL = "/admin/finesse/"


def text(answer) -> str:
    return html.unescape(answer.get_data(as_text=True))


def form(csrf: str, action: str = "save", **overrides: str) -> dict[str, str]:
    data = {
        "csrf_token": csrf,
        "publisher": "http://127.0.0.1:9",
        "subscriber": "",
        "deployment": "ucce",
        "admin_user": "fadmin",
        "admin_password": ADMIN_PASSWORD,
        "not_ready_reason": "Handling Chat",
        "max_chats": "4",
        "chat_enabled": "all",
        "events": "xmpp",
        "sync_interval_seconds": "300",
        "liveness_interval_seconds": "5",
        "verify_tls": "on",
        "action": action,
    }
    data.update(overrides)
    return data


def test_without_a_section_admins_are_offered_to_configure_it(operator):
    assert "Configure Finesse" in text(operator("admin").get(URL))
    page = text(operator("editor").get(URL))
    assert "media blending is off" in page and "Configure Finesse" not in page
    assert operator("editor", name="ed2").get(f"{URL}edit").status_code == 403


def test_form_errors_show_beside_their_fields_and_nothing_is_saved(operator, runtime):
    admin = operator("admin")
    bad = form(admin.csrf, publisher="not a url", max_chats="zero", admin_password="")
    answer = admin.post(f"{URL}edit", data=bad)
    assert answer.status_code == 422
    page = text(answer)
    for field in ("publisher", "max_chats", "admin_password"):
        assert re.search(rf'<p class="field-error" id="{field}-error">[^<]+</p>', page), field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', page, re.S), field
    assert "Not a valid integer" in page
    assert 'value="not a url"' in page, "what was typed stays in the form"
    assert runtime.overrides.singleton("finesse") is None

    policy = admin.post(f"{URL}edit", data=form(admin.csrf, chat_enabled="teams:x"))
    assert policy.status_code == 422
    assert re.search(r'id="chat_enabled-error">[^<]*team:&lt;name&gt;', policy.get_data(as_text=True))


def test_a_saved_section_shows_its_settings_and_keeps_the_password_across_edits(operator, runtime):
    admin = operator("admin")
    answer = admin.post(f"{URL}edit", data=form(admin.csrf, subscriber="http://127.0.0.1:9/sub"))
    assert answer.status_code == 302, text(answer)
    page = text(admin.get(URL))
    assert "Finesse section saved without testing" in page and "restart" in page
    assert "Made in the UI or API" in page and MASK in page and ADMIN_PASSWORD not in page
    assert "http://127.0.0.1:9/sub" in page and ">Check nodes</button>" in page
    assert runtime.config.finesse.max_chats == 4

    edit = text(admin.get(f"{URL}edit"))
    assert ADMIN_PASSWORD not in edit and "Stored and hidden" in edit
    assert admin.post(f"{URL}edit", data=form(admin.csrf, admin_password="", max_chats="2")).status_code == 302
    stored = runtime.overrides.singleton("finesse")
    assert stored["admin_password"] == ADMIN_PASSWORD and stored["max_chats"] == 2
    assert "subscriber" not in stored, "an emptied optional field is left out"

    assert admin.post(f"{URL}delete", data={"csrf_token": admin.csrf}).status_code == 302
    assert runtime.overrides.singleton("finesse") is None


def test_viewers_and_editors_read_the_section_but_do_not_edit_it(operator, runtime):
    make_section(runtime)
    for role in ("viewer", "editor"):
        page = text(operator(role).get(URL))
        assert "Handling Chat" in page and "team:Support" in page and ">Edit<" not in page, role
    assert ">Check nodes</button>" not in text(operator("viewer", name="v2").get(URL))
    assert ">Edit<" in text(operator("admin").get(URL))


@pytest.fixture
def provisioned_admin(settings, redis, tmp_path, operator_password_hash):
    runtime = Runtime(replace(settings, config_dir=provisioned_config_dir(tmp_path / "config")))
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    add_operator(redis, "admin", "admin", operator_password_hash)
    client = app.test_client()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/admin/login").get_data(True))
    client.post("/admin/login", data={"name": "admin", "password": OPERATOR_PASSWORD, "csrf_token": token[1]})
    return runtime, client


def test_a_provisioned_section_is_read_only_with_its_file(provisioned_admin):
    runtime, admin = provisioned_admin
    source = runtime.provisioned.finesse.source
    page = text(admin.get(URL))
    assert f"defined in {source}" in page and "read-only here" in page
    assert ">Edit<" not in page and "Delete section" not in page and ADMIN_PASSWORD not in page
    refused = admin.get(f"{URL}edit")
    assert refused.status_code == 409 and source in text(refused)


# -- against the Finesse simulator ------------------------------------------------------------------


@pytest.fixture
def finesse_sim():
    with running_sandbox() as sandbox:
        yield sandbox


@pytest.mark.e2e
def test_test_and_save_saves_only_when_every_node_is_in_service(operator, runtime, finesse_sim):
    admin = operator("admin")
    nodes = {"publisher": finesse_sim.publisher_url, "subscriber": finesse_sim.subscriber_url}
    finesse_sim.node_down("subscriber", "out_of_service")

    answer = admin.post(f"{URL}edit", data=form(admin.csrf, "test_save", **nodes))
    assert answer.status_code == 422
    page = text(answer)
    assert "Nothing was saved: a Finesse node is not in service" in page
    subscriber = re.search(r'<tr id="node-subscriber">(.*?)</tr>', page, re.S).group(1)
    assert "OUT_OF_SERVICE" in subscriber and "sandbox: taken out of service" in subscriber
    assert "IN_SERVICE" in re.search(r'<tr id="node-publisher">(.*?)</tr>', page, re.S).group(1)
    assert "Blending would work through the publisher" in re.sub(r"<[^>]+>", "", page)
    assert runtime.overrides.singleton("finesse") is None
    assert ADMIN_PASSWORD not in page, "the password never goes back to the browser"

    tested = admin.post(f"{URL}edit", data=form(admin.csrf, "test", **nodes))
    assert tested.status_code == 200 and "Tested: a node is not in service" in text(tested)
    assert runtime.overrides.singleton("finesse") is None, "Test saves nothing"

    finesse_sim.node_up("subscriber")
    saved = admin.post(f"{URL}edit", data=form(admin.csrf, "test_save", **nodes))
    assert saved.status_code == 302, text(saved)
    assert "Finesse section tested and saved" in text(admin.get(URL))
    assert runtime.config.finesse.subscriber == finesse_sim.subscriber_url


@pytest.mark.e2e
def test_check_nodes_shows_each_node_and_the_one_in_service(operator, runtime, finesse_sim):
    make_section(runtime, publisher=finesse_sim.publisher_url, subscriber=finesse_sim.subscriber_url)
    finesse_sim.node_down("publisher")
    editor = operator("editor")
    page = text(editor.post(f"{URL}check", data={"csrf_token": editor.csrf}))
    publisher = re.search(r'<tr id="node-publisher">(.*?)</tr>', page, re.S).group(1)
    assert "no answer" in publisher and "connection refused" in publisher
    assert "Blending would work through the subscriber" in re.sub(r"<[^>]+>", "", page)


# -- import -----------------------------------------------------------------------------------------


def test_the_import_page_adds_a_finesse_section(operator, runtime):
    from connector.admin.transfer import digest

    admin = operator("admin")
    text_yaml = yaml.safe_dump({"finesse": SECTION})
    preview = text(admin.post("/admin/transfer/import", data={"csrf_token": admin.csrf, "yaml": text_yaml}))
    assert re.search(r"finesse <strong>finesse</strong>.*?added", preview, re.S)
    applied = admin.post(
        "/admin/transfer/import/apply", data={"csrf_token": admin.csrf, "yaml": text_yaml, "checked": digest(text_yaml)}
    )
    assert applied.status_code == 302
    assert "Imported: 1 item(s) written" in text(admin.get("/admin/transfer/"))
    assert runtime.config.finesse.admin_password == ADMIN_PASSWORD
    assert "Made in the UI or API" in text(admin.get(URL))


def test_an_agent_mapping_shows_as_the_text_the_form_takes_back(operator, runtime):
    """ECE agents whose names differ from their Finesse logins: typed as `a=b, c=d`, shown the same
    way, and saved again unchanged from the form."""
    admin = operator("admin")
    mapped = form(admin.csrf, chat_mrd_name="Chat", ece_agents="ana.ece=ana, bo.ece=bo")
    assert admin.post(f"{URL}edit", data=mapped).status_code == 302
    assert runtime.config.finesse.ece_agents == {"ana.ece": "ana", "bo.ece": "bo"}
    edit = text(admin.get(f"{URL}edit"))
    assert 'value="ana.ece=ana, bo.ece=bo"' in edit
    assert (
        admin.post(
            f"{URL}edit",
            data=form(admin.csrf, chat_mrd_name="Chat", ece_agents="ana.ece=ana, bo.ece=bo", admin_password=""),
        ).status_code
        == 302
    )
    runtime.config_changed()
    assert runtime.config.finesse.ece_agents == {"ana.ece": "ana", "bo.ece": "bo"}


def test_every_error_of_the_section_is_in_one_answer(operator, runtime):
    """The fields and the chat MRD that an ECE integration needs are told together."""
    ece = {
        "name": "Lab",
        "type": "ece",
        "base_url": "http://127.0.0.1:9/ece",
        "entry_points": [{"name": "S", "id": "1"}],
    }
    runtime.overrides.save("integrations", ece, runtime.provisioned, create=True)
    runtime.config_changed()
    admin = operator("admin")
    answer = admin.post(f"{URL}edit", data=form(admin.csrf, publisher="not a url", max_chats="0"))
    assert answer.status_code == 422
    page = text(answer)
    for field in ("publisher", "max_chats"):
        assert re.search(rf'<p class="field-error" id="{field}-error">[^<]+</p>', page), field
    assert re.search(r'id="chat_mrd_id-error">ECE integration \'Lab\' routes chats', page)
    assert runtime.overrides.singleton("finesse") is None
