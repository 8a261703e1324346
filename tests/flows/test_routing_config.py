"""`language`, `branch` and `hours` steps and entry points' `hours:` in the provisioning files:
loaded, written back in the same shape, and every mistake named by file, item and field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from connector.config import raw
from connector.config.loader import ConfigError, load_config
from connector.config.schemas import FlowSchema
from connector.flows.definition import Branch, BranchStep, Condition, HoursStep, LanguageStep
from connector.relay.worker import uses_language

TEMPLATES = Path(__file__).resolve().parents[2] / "message_templates"
CALENDAR = {"time_zone": "Europe/Madrid", "weekly": {"mon": ["09:00-18:00"]}, "holidays": [{"date": "2026-12-25"}]}
BASE = {
    "integrations": [
        {
            "name": "ECE",
            "type": "ece",
            "base_url": "http://127.0.0.1:9/ece",
            "client_key": "k",
            "client_secret": "s",
            "entry_points": [
                {"name": "Support", "id": "1001", "hours": CALENDAR},
                {"name": "Soporte", "id": "1002", "hours": CALENDAR},
                {"name": "Billing", "id": "1003"},
            ],
        }
    ],
    "assets": [{"name": "sms", "channel": "sms", "number": "+15550001111", "account_sid": "AC1", "auth_token": "t"}],
    "rules": [
        {
            "name": "r",
            "channel": "sms",
            "event": "mo",
            "asset": "sms",
            "action": {"forward_to": "ECE", "entry_point": "Support", "flow": "triage"},
        }
    ],
}
TRIAGE = {
    "name": "triage",
    "steps": [
        {"name": "lang", "type": "language"},
        {
            "name": "route",
            "type": "branch",
            "branch": [
                {"when": {"language": "es"}, "entry_point": "Soporte"},
                {"when": {"attribute": {"topic": "billing"}}, "entry_point": "Support"},
            ],
        },
        {"name": "open", "type": "hours", "closed": "route"},
    ],
}


def write(tmp_path: Path, **sections: object) -> Path:
    (tmp_path / "f.yaml").write_text(yaml.safe_dump({**copy.deepcopy(BASE), **sections}))
    return tmp_path


def test_the_steps_load_and_an_export_loads_back_the_same(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, flows=[TRIAGE]), env={}, templates_dir=TEMPLATES)
    flow = config.flow("triage")
    assert flow is not None
    assert flow.steps == (
        LanguageStep("lang"),
        BranchStep(
            "route",
            (
                Branch(Condition(language="es"), "Soporte"),
                Branch(Condition(attributes=(("topic", "billing"),)), "Support"),
            ),
        ),
        HoursStep("open", closed="route"),
    )
    support = config.integrations[0].entry_points[0]
    assert support.hours is not None and support.hours.time_zone == "Europe/Madrid"
    assert FlowSchema().load(raw.flow(flow)).steps == flow.steps
    assert raw.integration(config.integrations[0])["entry_points"][0]["hours"]["weekly"] == {"mon": ["09:00-18:00"]}
    assert uses_language(config), "a worker warms the detector for this configuration"


def test_check_config_names_bad_branches_and_calendars(tmp_path: Path) -> None:
    flow = {
        "name": "triage",
        "steps": [
            {
                "name": "route",
                "type": "branch",
                "branch": [
                    {"when": {"language": "Spanish"}, "entry_point": "Soporte"},
                    {"when": {}, "entry_point": "Support"},
                ],
            },
            {
                "name": "open",
                "type": "hours",
                "closed": "later",
                "calendar": {"time_zone": "Europe/Madird", "weekly": {}},
            },
            {"name": "lang", "type": "language", "detect": "all"},
        ],
    }
    integrations = copy.deepcopy(BASE["integrations"])
    integrations[0]["entry_points"][0]["hours"] = {
        "time_zone": "UTC",
        "weekly": {"mon": ["09:00-13:00", "12:00-18:00"]},
    }
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, flows=[flow], integrations=integrations), env={}, templates_dir=TEMPLATES)
    text = str(caught.value)
    assert "field 'steps.0.branch.0.when.language': a language code like es" in text
    assert "field 'steps.0.branch.1.when': say what to test: language, attribute, or both" in text
    assert "field 'steps.1.closed': Must be one of: discard, route." in text
    assert "unknown time zone 'Europe/Madird'" in text and "did you mean Europe/Madrid?" in text
    assert "field 'steps.2.detect': Unknown field." in text
    assert "field 'entry_points.0.hours.weekly.mon': 09:00-13:00 and 12:00-18:00 overlap" in text


def test_check_config_names_branch_targets_and_hours_without_a_calendar(tmp_path: Path) -> None:
    flow = copy.deepcopy(TRIAGE)
    flow["steps"][1]["branch"][1]["entry_point"] = "Facturas"
    flow["steps"][1]["branch"].append({"when": {"language": "fr"}, "entry_point": "Billing"})
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, flows=[flow]), env={}, templates_dir=TEMPLATES)
    text = str(caught.value)
    assert "field 'steps.1.branch.1.entry_point': integration 'ECE' has no entry point named 'Facturas'" in text
    assert "field 'steps.2.calendar': entry point 'Billing' of 'ECE' has no hours" in text
    assert text.count("has no hours") == 1, "Support and Soporte have hours"


def test_a_rule_language_must_be_a_code(tmp_path: Path) -> None:
    rules = [{**BASE["rules"][0], "language": "ES"}]
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, flows=[TRIAGE], rules=rules), env={}, templates_dir=TEMPLATES)
    assert "rules[0] ('r'): field 'language': a language code like es" in str(caught.value)
