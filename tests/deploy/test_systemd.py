"""The systemd units (deploy/systemd/): verified by systemd itself where it is installed, their
ExecStart parsed by the connector's CLI, hardened, and their environment file that of the settings."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from connector.settings import PROJECT_ROOT, Settings
from tests.deploy.kit import SYSTEMD, connector_command

UNITS = {
    "connector-web.service": "cmd_web",
    "connector-worker@.service": "cmd_worker",
    "connector-listener.service": "cmd_listen",
}
INSTALLED_AT = "/opt/connector"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
}


def service(unit: str) -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((SYSTEMD / unit).read_text())
    return dict(parser["Service"])


@pytest.mark.parametrize("unit", UNITS)
def test_exec_start_is_a_real_connector_command(unit):
    argv = shlex.split(service(unit)["ExecStart"])
    assert argv[0] == f"{INSTALLED_AT}/.venv/bin/python"
    assert connector_command(argv).handler.__name__ == UNITS[unit]


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_hardened_and_run_unprivileged(unit):
    settings = service(unit)
    for key, value in HARDENING.items():
        assert settings.get(key) == value, f"{unit}: {key}={value}"
    assert settings["User"] == "connector" and settings["Group"] == "connector"
    assert settings["Restart"] == "always"
    assert settings["EnvironmentFile"] == "/etc/connector/connector.env"
    assert "CONNECTOR_DATA_DIR=/var/lib/connector" in settings["Environment"]
    assert settings["StateDirectory"] == "connector", "the one writable place under ProtectSystem=strict"


def verify(unit: str, text: str, folder: Path) -> list[str]:
    """`systemd-analyze verify` of `text` saved as `unit`: the lines it printed about the unit."""
    target = folder / unit
    target.write_text(text.replace(INSTALLED_AT, str(PROJECT_ROOT)))  # so ExecStart's interpreter exists
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(target)], capture_output=True, text=True, timeout=60, check=False
    )
    problems = [line for line in done.stderr.splitlines() if str(target) in line or unit in line]
    return problems if done.returncode == 0 else [*problems, f"exit {done.returncode}: {done.stderr}"]


needs_systemd = pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed here")


@needs_systemd
@pytest.mark.parametrize("unit", [*UNITS, "connector-worker@2.service"])
def test_systemd_analyze_verify_finds_nothing(unit, tmp_path):
    source = SYSTEMD / ("connector-worker@.service" if unit.startswith("connector-worker@") else unit)
    assert verify(unit, source.read_text(), tmp_path) == []


@needs_systemd
def test_verify_would_catch_a_mistake(tmp_path):
    text = (SYSTEMD / "connector-web.service").read_text().replace("ProtectSystem=strict", "ProtectSystem=strickt")
    assert any("strickt" in line for line in verify("connector-web.service", text, tmp_path))


def test_the_environment_file_names_only_settings():
    variables = {f.metadata["env"] for f in Settings.__dataclass_fields__.values() if "env" in f.metadata}
    variables.add("WEB_CONCURRENCY")  # gunicorn's own (connector/supervisor.py, default_web_workers)
    named = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (SYSTEMD / "connector.env").read_text(), flags=re.MULTILINE)
    assert named
    assert set(named) <= variables, set(named) - variables


def test_every_unit_file_is_tested():
    assert {p.name for p in Path(SYSTEMD).glob("*.service")} == set(UNITS)
