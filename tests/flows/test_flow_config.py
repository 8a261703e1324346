"""`flows:` in the provisioning files: loaded, referenced by rules and entry points, and every
mistake named by file, item and field (check-config)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connector.config.loader import ConfigError, load_config
from connector.config.schemas import STEP_SCHEMAS
from connector.flows.definition import AskStep

TEMPLATES = Path(__file__).resolve().parents[2] / "message_templates"
BASE = {
    "integrations": [
        {
            "name": "ECE",
            "type": "ece",
            "base_url": "http://127.0.0.1:9/ece",
            "client_key": "k",
            "client_secret": "s",
            "entry_points": [{"name": "Support", "id": "1001", "flow": "intake"}, {"name": "Sales", "id": "1002"}],
        }
    ],
    "assets": [{"name": "sms", "channel": "sms", "number": "+15550001111", "account_sid": "AC1", "auth_token": "t"}],
    "rules": [
        {
            "name": "r",
            "channel": "sms",
            "event": "mo",
            "asset": "sms",
            "action": {"forward_to": "ECE", "entry_point": "Sales", "flow": "intake"},
        }
    ],
}
INTAKE = {
    "name": "intake",
    "steps": [
        {
            "name": "order",
            "type": "ask",
            "question": "ask_order_number",
            "answer": "regex",
            "pattern": "[A-Z]{2}[0-9]{6}",
            "attribute": "order_number",
        }
    ],
}


def write(tmp_path: Path, **sections: object) -> Path:
    (tmp_path / "f.yaml").write_text(yaml.safe_dump({**BASE, **sections}))
    return tmp_path


def test_a_flow_loads_and_rules_and_entry_points_name_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, flows=[INTAKE]), env={}, templates_dir=TEMPLATES)
    flow = config.flow("intake")
    assert flow is not None and flow.source and flow.on_fail == "route"
    assert flow.steps == (AskStep("order", "ask_order_number", "order_number", "regex", "[A-Z]{2}[0-9]{6}"),)
    assert config.flow_for(config.rules[0].action) is flow
    support = config.integrations[0].entry_points[0]
    from connector.config.model import RuleAction

    assert config.flow_for(RuleAction("ECE", support.name)) is flow, "the entry point's flow"
    assert config.flow_for(RuleAction("ECE", "Sales")) is None


def test_check_config_names_every_mistake(tmp_path: Path) -> None:
    bad = {
        "name": "intake",
        "on_fail": "route",
        "closing": "flow_closing",
        "steps": [
            {
                "name": "a",
                "type": "ask",
                "question": "ask_nothing_here",
                "attribute": "x",
                "answer": "regex",
                "pattern": "[a-z",
            },
            {
                "name": "a",
                "type": "ask",
                "question": "ask_topic",
                "attribute": "y",
                "answer": "choices",
                "choices": ["One"],
            },
            {"name": "c", "type": "survey", "question": "ask_topic", "attribute": "z"},
        ],
    }
    rules = [{**BASE["rules"][0], "action": {"forward_to": "ECE", "entry_point": "Sales", "flow": "nope"}}]
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, flows=[bad], rules=rules), env={}, templates_dir=TEMPLATES)
    text = str(caught.value)
    assert "f.yaml: flows[0] ('intake'): field 'steps.0.pattern': not a valid regular expression" in text
    assert "field 'steps.1.choices': a choices answer needs at least two choices" in text
    assert f"field 'steps.2.type': Must be one of: {', '.join(STEP_SCHEMAS)}." in text
    assert "field 'closing': only a flow with on_fail: close sends a closing message" in text
    assert "f.yaml: rules[0] ('r'): field 'action.flow': no flow named 'nope'" in text
    # a flow that fails validation is not loaded, so the entry point's reference is reported too
    assert "field 'entry_points.0.flow': no flow named 'intake'" in text


def test_duplicate_step_names_and_missing_templates(tmp_path: Path) -> None:
    flow = {
        "name": "intake",
        "steps": [
            {"name": "a", "type": "ask", "question": "ask_order_number", "attribute": "x"},
            {"name": "b", "type": "ask", "question": "ask_missing_template", "attribute": "y", "retry": "ask_topic"},
        ],
    }
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, flows=[flow]), env={}, templates_dir=TEMPLATES)
    assert [str(p).replace(f"{tmp_path}/", "") for p in caught.value.problems] == [
        "f.yaml: flows[0] ('intake'): field 'steps.1.question': no template 'ask_missing_template': "
        "add message_templates/<locale>/ask_missing_template.txt.j2"
    ]
    duplicate = {**flow, "steps": [flow["steps"][0], {**flow["steps"][0]}]}
    with pytest.raises(ConfigError, match=r"field 'steps\.1\.name': another step is named 'a'"):
        load_config(write(tmp_path, flows=[duplicate]), env={}, templates_dir=TEMPLATES)


def test_the_sandbox_flow_is_valid() -> None:
    config = load_config(TEMPLATES.parent / "entrypoints" / "sandbox", templates_dir=TEMPLATES)
    assert [f.name for f in config.flows] == ["sales-intake", "self-service"]
