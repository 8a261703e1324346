"""`python -m connector check-config`: broken files exit non-zero naming the file, item and field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.config.loader import ConfigError, load_config
from connector.settings import PROJECT_ROOT

VALID = """
integrations:
  - name: ECE
    type: ece
    base_url: https://ece.example.com
    client_key: k
    client_secret: ${ECE_SECRET}
    entry_points: [{name: Support, id: "1001"}]
assets:
  - {name: sms-1, channel: sms, number: "+15550001111", account_sid: AC1, auth_token: t}
rules:
  - {name: r1, channel: sms, event: mo, asset: sms-1, action: {forward_to: ECE, entry_point: Support}}
"""


def check_config(directory: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector", "check-config", str(directory)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def write(tmp_path: Path, text: str, name: str = "deploy.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_valid_configuration_passes(tmp_path):
    result = check_config(write(tmp_path, VALID), {"ECE_SECRET": "s3cret"})
    assert result.returncode == 0, result.stderr
    assert "1 integrations, 1 assets, 1 rules" in result.stdout


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace("client_key: k", "client_key: k\n    colour: blue"),
            "deploy.yaml: integrations[0] ('ECE'): field 'colour': Unknown field.",
        ),
        (
            lambda t: t.replace('entry_points: [{name: Support, id: "1001"}]', "entry_points: 7"),
            "deploy.yaml: integrations[0] ('ECE'): field 'entry_points': Not a valid list.",
        ),
        (
            lambda t: t.replace("asset: sms-1, action", "asset: sms-9, action"),
            "deploy.yaml: rules[0] ('r1'): field 'asset': no sms asset named 'sms-9'",
        ),
        (
            lambda t: t.replace("entry_point: Support}", "entry_point: Billing}"),
            "deploy.yaml: rules[0] ('r1'): field 'action.entry_point': "
            "integration 'ECE' has no entry point named 'Billing'",
        ),
        (
            lambda t: t.replace("forward_to: ECE", "forward_to: Nope"),
            "deploy.yaml: rules[0] ('r1'): field 'action.forward_to': no integration named 'Nope'",
        ),
        (
            lambda t: t.replace('number: "+15550001111"', "number: 555"),
            "deploy.yaml: assets[0] ('sms-1'): field 'number': Not a valid string.",
        ),
        (
            lambda t: t.replace("event: mo", "event: incoming_message"),
            "deploy.yaml: rules[0] ('r1'): field 'event': sms rules use event 'mo'",
        ),
        (
            lambda t: t.replace("client_key: k", "client_key: k\n    api_paths: {start_conversation: /x}"),
            "deploy.yaml: integrations[0] ('ECE'): field 'api_paths': unknown ECE path name(s) start_conversation",
        ),
        (lambda t: t + "\nbogus: 1\n", "deploy.yaml: top level: field 'bogus': Unknown field."),
        (
            lambda t: "- name: r1\n  channel: sms\n",
            "deploy.yaml: top level: the file's top level is a list; expected a mapping with one or more of "
            "integrations:, assets:, rules:, default_rule:, finesse:, hybrid_agents:",
        ),
        (lambda t: t.replace("rules:", "rules: [\n"), "deploy.yaml: line"),
    ],
)
def test_broken_file_names_file_item_and_field(tmp_path, edit, expected):
    result = check_config(write(tmp_path, edit(VALID)), {"ECE_SECRET": "s3cret"})
    assert result.returncode == 1
    assert expected in result.stderr, result.stderr


def test_missing_environment_variable_is_named_alone(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ECE_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "connector", "check-config", str(write(tmp_path, VALID))],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        "deploy.yaml: integrations[0] ('ECE'): field 'client_secret': environment variable ECE_SECRET is not set"
        in result.stderr
    )
    assert "(1 problems)" in result.stderr, "no follow-on errors from the unset secret"


def test_duplicate_names_across_files(tmp_path):
    write(tmp_path, VALID, "a.yaml")
    write(
        tmp_path,
        "assets:\n  - {name: sms-1, channel: sms, number: '+15550002222', account_sid: A, auth_token: t}\n",
        "b.yaml",
    )
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path, env={"ECE_SECRET": "x"})
    assert any(p.file.endswith("b.yaml") and "already defined in" in p.message for p in error.value.problems)


def test_shipped_example_is_valid_with_its_secrets_set():
    names = [
        "ECE_CLIENT_KEY",
        "ECE_CLIENT_SECRET",
        "ECE_CALLBACK_TOKEN",
        "FB_APP_SECRET",
        "FB_PAGE_TOKEN",
        "FB_VERIFY_TOKEN",
        "TWILIO_SID",
        "TWILIO_TOKEN",
        "WA_APP_SECRET",
        "WA_ACCESS_TOKEN",
        "WA_VERIFY_TOKEN",
        "APPLE_MSP_ID",
        "FINESSE_ADMIN_USER",
        "FINESSE_ADMIN_PASSWORD",
    ]
    env = dict.fromkeys(names, "value")
    env["APPLE_SECRET"] = "c2VjcmV0"
    env["INAPP_SECRET"] = "a-long-enough-inapp-secret"
    config = load_config(PROJECT_ROOT / "entrypoints", env=env)
    assert config.finesse is not None and config.default_rule is not None
    assert {a.channel for a in config.assets} == {"sms", "messenger", "whatsapp", "apple", "inapp"}


def test_sandbox_configuration_is_valid():
    config = load_config(PROJECT_ROOT / "entrypoints" / "sandbox", env={})
    assert {a.channel for a in config.assets} == {"sms", "messenger", "whatsapp", "apple", "inapp"}


# -- media blending with ECE: ECE's chat MRD on Finesse ----------------------------------------------

FINESSE = """
finesse:
  publisher: https://finesse-a.example.com:8445
  admin_user: admin
  admin_password: secret
"""


def test_ece_with_blending_needs_the_chat_mrd_by_id_or_by_name(tmp_path):
    """Without ECE's chat MRD a voice call would not stop ECE routing chats to the agent."""
    result = check_config(write(tmp_path, VALID + FINESSE), {"ECE_SECRET": "s3cret"})
    assert result.returncode == 1
    assert "deploy.yaml: finesse: field 'chat_mrd_id': ECE integration 'ECE' routes chats" in result.stderr
    assert "finesse.chat_mrd_id" in result.stderr and "finesse.chat_mrd_name" in result.stderr, result.stderr
    for field in ("chat_mrd_id: '5000'", "chat_mrd_name: Cisco_Chat_MRD"):
        assert load_config(write(tmp_path, VALID + FINESSE + f"  {field}\n"), env={"ECE_SECRET": "x"}).finesse
    without_ece = VALID.replace("type: ece", "type: hybrid") + FINESSE
    assert load_config(write(tmp_path, without_ece), env={"ECE_SECRET": "x"}).finesse, "no ECE, no MRD needed"


def test_ece_agent_mapping_loads_from_a_mapping_or_a_form_text(tmp_path):
    mapped = FINESSE + "  chat_mrd_name: Chat\n  ece_agent_field: id\n  ece_agents: {'4711': asmith}\n"
    finesse = load_config(write(tmp_path, VALID + mapped), env={"ECE_SECRET": "x"}).finesse
    assert finesse is not None
    assert (finesse.ece_agent_field, dict(finesse.ece_agents)) == ("id", {"4711": "asmith"})
    assert finesse.media_list_path == "/finesse/api/User/{id}/Media"
    texted = FINESSE + "  chat_mrd_name: Chat\n  ece_agents: 'Alice Smith=asmith, Bob=bjones'\n"
    finesse = load_config(write(tmp_path, VALID + texted), env={"ECE_SECRET": "x"}).finesse
    assert finesse is not None and dict(finesse.ece_agents) == {"Alice Smith": "asmith", "Bob": "bjones"}
    assert finesse.ece_agent_field == "name", "ECE's sender.user.name is the default"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ece_agent_field: login", "finesse: field 'ece_agent_field': Must be one of: name, id."),
        ("ece_agents: just-a-name", "finesse: field 'ece_agents': must map each ECE agent to a Finesse login"),
        ("ece_agents: {Alice: ''}", "finesse: field 'ece_agents': must map each ECE agent to a Finesse login"),
        ("media_list_path: /finesse/api/User/Media", "finesse: field 'media_list_path': must be a Finesse API path"),
    ],
)
def test_bad_ece_agent_fields_are_named(tmp_path, line, expected):
    text = VALID + FINESSE + f"  chat_mrd_name: Chat\n  {line}\n"
    result = check_config(write(tmp_path, text), {"ECE_SECRET": "s3cret"})
    assert result.returncode == 1
    assert expected in result.stderr, result.stderr


UI_ECE = {
    "name": "LabECE",
    "type": "ece",
    "base_url": "https://ece.lab.example.com",
    "client_key": "key",
    "client_secret": "secret-value",
    "entry_points": [{"name": "Care", "id": "2001"}],
}
UI_FINESSE = {"publisher": "https://finesse-a.example.com:8445", "admin_user": "admin", "admin_password": "pw"}


def test_a_finesse_section_made_in_the_ui_is_checked_against_ece_like_the_files(runtime):
    from connector.config.overrides import ConfigInvalid

    store = runtime.overrides
    store.save("integrations", UI_ECE, runtime.provisioned, create=True)
    with pytest.raises(ConfigInvalid) as refused:
        store.save_singleton("finesse", UI_FINESSE, runtime.provisioned)
    [message] = refused.value.errors["chat_mrd_id"]
    assert "ECE integration 'LabECE'" in message and "finesse.chat_mrd_name" in message
    assert store.singleton("finesse") is None, "nothing was saved"
    store.save_singleton("finesse", {**UI_FINESSE, "chat_mrd_name": "Chat"}, runtime.provisioned)


def test_an_ece_integration_made_in_the_ui_is_checked_against_the_finesse_section(runtime):
    from connector.config.overrides import ConfigInvalid

    store = runtime.overrides
    store.save_singleton("finesse", UI_FINESSE, runtime.provisioned)  # no ECE yet: fine
    with pytest.raises(ConfigInvalid) as refused:
        store.save("integrations", UI_ECE, runtime.provisioned, create=True)
    assert "finesse.chat_mrd_id" in refused.value.errors["type"][0]
    store.save("integrations", {**UI_ECE, "type": "hybrid"}, runtime.provisioned, create=True)
