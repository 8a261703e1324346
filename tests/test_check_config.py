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
