"""Reloading the provisioned files (connector/config/reload.py) in one process with a real Redis:
the API and the Import / export page trigger it, a bad file changes nothing, another runtime (as
another process would) follows within its configuration check, one that cannot load the files keeps
its configuration and says why, and readers never see half of a reload.

The real processes (workers, `python -m connector run` and SIGHUP, the listener) are in
tests/e2e/test_reload.py."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

import pytest

from connector.runtime import CONFIG_CHECK_SECONDS, Runtime
from connector.store import keys
from tests.config import reload_files
from tests.config.reload_files import BROKEN_FIELD, BROKEN_MESSAGE, NEW_ASSET
from tests.helpers import wait_for

UI_RULE = reload_files.rule("ui-rule", "test-messenger", "Sales", channel="messenger")


@pytest.fixture
def files(tmp_path):
    return reload_files.copy_of_the_test_configuration(tmp_path / "entrypoints", without_rules=("whatsapp",))


@pytest.fixture
def settings(settings, files):
    return replace(settings, config_dir=files)


@pytest.fixture
def other(settings, runtime) -> Runtime:
    """Another process's runtime on the same files and Redis, started before the reload."""
    other = Runtime(settings)
    other.role = "worker"
    assert "whatsapp-sales" not in rule_names(other.config)
    return other


def rule_names(config) -> set[str]:
    return {r.name for r in config.rules}


def label(files) -> str:
    """How the loader names the file in its problems (as check-config prints it)."""
    return str(files / reload_files.FILE)


def test_a_reload_over_the_api_swaps_this_process_at_once_and_others_follow(api_client, runtime, other, files):
    admin = api_client("admin")
    runtime.overrides.save("rules", UI_RULE, runtime.provisioned, create=True)
    runtime.config_changed()
    before = admin.get("/api/v1/config/reload")
    assert before.status_code == 200
    assert before.get_json()["generation"] == 0 and before.get_json()["requested_by"] is None

    reload_files.add_whatsapp_routing(files)
    assert "whatsapp-sales" not in rule_names(runtime.config), "an edited file alone changes nothing"
    answer = admin.post("/api/v1/config/reload")

    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["generation"], body["requested_by"], body["via"]) == (1, "api-admin", "api")
    mine = [p for p in body["processes"] if p["name"] == runtime.name]
    assert mine and mine[0]["ok"] and mine[0]["generation"] == 1 and mine[0]["current"]
    assert {"whatsapp-sales", "whatsapp-2", "ui-rule"} <= rule_names(runtime.config), "UI items survive"
    assert runtime.config.asset("whatsapp", NEW_ASSET) is not None
    assert runtime.provisioned.asset("whatsapp", NEW_ASSET) is not None

    wait_for(
        lambda: "whatsapp-sales" in rule_names(other.config),
        timeout=CONFIG_CHECK_SECONDS * 3,
        what="the other runtime to apply the reload at its configuration check",
    )
    assert "ui-rule" in rule_names(other.config)
    status = admin.get("/api/v1/config/reload").get_json()
    theirs = next(p for p in status["processes"] if p["name"] == other.name)
    assert (theirs["role"], theirs["generation"], theirs["ok"], theirs["error"]) == ("worker", 1, True, None)


def test_a_broken_file_changes_nothing_anywhere_and_the_api_names_file_item_and_field(
    api_client, runtime, other, files, redis
):
    admin = api_client("admin")
    reload_files.break_with_a_good_part(files)

    answer = admin.post("/api/v1/config/reload")

    assert answer.status_code == 422
    body = answer.get_json()
    problems = body["errors"]["files"][label(files)]
    assert problems == [f"{label(files)}: rules[7] ('broken'): field '{BROKEN_FIELD}': {BROKEN_MESSAGE}"]
    assert "nothing was reloaded" in body["message"]
    assert redis.get(keys.config_generation()) is None, "no generation started"
    assert admin.get("/api/v1/config/reload").get_json()["generation"] == 0
    other.config_changed()
    for process in (runtime, other):
        assert "whatsapp-sales" not in rule_names(process.config), "the good part of the edit is not applied either"
        assert process.config.asset("whatsapp", NEW_ASSET) is None


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_an_admin_may_reload(api_client, operator, runtime, files, redis, role):
    reload_files.add_whatsapp_routing(files)
    assert api_client(role).post("/api/v1/config/reload").status_code == 403
    assert api_client(role).get("/api/v1/config/reload").status_code == 200, "the status is for every role"
    page = operator(role)
    assert "Reload the provisioned files</button>" not in page.get("/admin/transfer/").get_data(as_text=True)
    assert page.post("/admin/transfer/reload", data={"csrf_token": page.csrf}).status_code == 403
    assert redis.get(keys.config_generation()) is None
    assert "whatsapp-sales" not in rule_names(runtime.config)


def test_the_import_export_page_reloads_and_shows_problems(operator, runtime, files, redis):
    admin = operator("admin")
    page = admin.get("/admin/transfer/").get_data(as_text=True)
    assert "Reload the provisioned files</button>" in page
    assert "never reloaded" in page

    reload_files.break_with_a_good_part(files)
    refused = admin.post("/admin/transfer/reload", data={"csrf_token": admin.csrf})
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "Nothing was reloaded" in text
    assert f"rules[7] (&#39;broken&#39;): field &#39;{BROKEN_FIELD}&#39;" in text
    assert redis.get(keys.config_generation()) is None

    assert admin.post("/admin/transfer/reload", data={}).status_code == 400, "no CSRF token, no reload"

    reload_files.copy_of_the_test_configuration(files, without_rules=("whatsapp",))
    reload_files.add_whatsapp_routing(files)
    done = admin.post("/admin/transfer/reload", data={"csrf_token": admin.csrf})
    assert done.status_code == 302
    page = admin.get("/admin/transfer/").get_data(as_text=True)
    assert "Reloaded the provisioned files: generation 1" in page
    assert "<td>whatsapp-sales</td>" in page and f"<td>whatsapp/{NEW_ASSET}</td>" in page
    assert "reloaded by\n  <strong>admin</strong> (ui)" in page
    assert runtime.name in page


def test_a_process_that_cannot_load_the_files_keeps_its_configuration_and_says_why(
    api_client, runtime, other, files, monkeypatch, caplog
):
    """The trigger's environment has the secret, the other process's has not (simulated here by
    removing it after the trigger checked the files)."""
    reload_files.add_whatsapp_routing(files, access_token="${RELOAD_TEST_WA_TOKEN}")
    monkeypatch.setenv("RELOAD_TEST_WA_TOKEN", "token-only-the-trigger-has")
    admin = api_client("admin")
    assert admin.post("/api/v1/config/reload").status_code == 200
    monkeypatch.delenv("RELOAD_TEST_WA_TOKEN")
    kept = other.config

    caplog.set_level(logging.ERROR, logger="connector.runtime")
    other.config_changed()
    assert other.config is kept, "the running configuration stays, whole"
    assert "whatsapp-sales" not in rule_names(other.config)

    expected = (
        f"{label(files)}: assets[5] ('{NEW_ASSET}'): field 'access_token': "
        "environment variable RELOAD_TEST_WA_TOKEN is not set (written ${RELOAD_TEST_WA_TOKEN})"
    )
    assert any(r.levelno == logging.ERROR and expected in r.getMessage() for r in caplog.records), caplog.text
    status = admin.get("/api/v1/config/reload").get_json()
    theirs = next(p for p in status["processes"] if p["name"] == other.name)
    assert (theirs["generation"], theirs["ok"], theirs["current"]) == (1, False, True)
    assert theirs["error"] == expected
    mine = next(p for p in status["processes"] if p["name"] == runtime.name)
    assert mine["ok"], "the trigger applied it"

    caplog.clear()
    other.config_changed()
    other.config  # noqa: B018 - a later check does not try (and log) the same generation again
    assert not caplog.records


def test_readers_see_the_old_or_the_new_configuration_never_a_mix(runtime, other, files):
    """Reader threads, in the process that reloads and in another, run while the files flip between
    two versions: every configuration they get has the UI rule (the merge is never missing), and the
    new rule exactly with the new asset."""
    runtime.overrides.save("rules", UI_RULE, runtime.provisioned, create=True)
    runtime.config_changed()
    plain = (files / reload_files.FILE).read_text()
    reload_files.add_whatsapp_routing(files)
    routed = (files / reload_files.FILE).read_text()
    stop = threading.Event()
    seen: list[tuple[bool, bool, bool]] = []

    def read(process: Runtime, force: bool) -> None:
        while not stop.is_set():
            if force:
                process.config_changed()  # the other process checks at every read: it swaps as often as it can
            config = process.config
            names = rule_names(config)
            seen.append(("ui-rule" in names, "whatsapp-2" in names, config.asset("whatsapp", NEW_ASSET) is not None))
            time.sleep(0.0002)  # leave the reloading thread its share of the interpreter

    # The trigger swaps at once (reload_config) under readers that take the unlocked fast path; the
    # other process swaps at its check.
    readers = [threading.Thread(target=read, args=(runtime, False)) for _ in range(2)]
    readers.append(threading.Thread(target=read, args=(other, True)))
    for reader in readers:
        reader.start()
    try:
        for text in (routed, plain) * 5:
            (files / reload_files.FILE).write_text(text)
            runtime.reload_config(requested_by="test", via="api")
            time.sleep(0.02)
    finally:
        stop.set()
        for reader in readers:
            reader.join(10)
    assert seen and {with_ui for with_ui, _, _ in seen} == {True}, "a configuration without the UI items was seen"
    assert all(rule == asset for _, rule, asset in seen), "a rule without its asset (or the reverse) was seen"
    assert {rule for _, rule, _ in seen} == {True, False}, "both versions were read"
