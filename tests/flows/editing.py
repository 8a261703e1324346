"""What the tests of flows made in the UI / API share: a configuration folder with one provisioned
flow beside tests/config/channels.yaml, and a valid flow's YAML shape to start from."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from connector.settings import Settings
from tests.conftest import CONFIG_DIR

PROVISIONED_FILE = "flows.yaml"
PROVISIONED_FLOW = "provisioned-intake"


def with_provisioned_flow(settings: Settings, tmp_path: Path) -> Settings:
    """`settings` whose config folder also defines flow `provisioned-intake` (in flows.yaml)."""
    folder = tmp_path / "entrypoints"
    shutil.copytree(CONFIG_DIR, folder)
    (folder / PROVISIONED_FILE).write_text(
        "flows:\n"
        f"  - name: {PROVISIONED_FLOW}\n"
        "    steps:\n"
        "      - {name: topic, type: ask, question: ask_topic, answer: choices, choices: [Quote, Other],\n"
        "         attribute: topic}\n"
    )
    return replace(settings, config_dir=folder)


def flow(name: str = "intake", **fields: Any) -> dict[str, Any]:
    """A valid flow (its YAML shape): one regex question on the order number."""
    return {
        "name": name,
        "steps": [
            {
                "name": "order",
                "type": "ask",
                "question": "ask_order_number",
                "retry": "ask_order_number_retry",
                "answer": "regex",
                "pattern": "[A-Z]{2}[0-9]{6}",
                "attribute": "order_number",
            }
        ],
        **fields,
    }


def rule(name: str = "sms-vip", flow_name: str | None = "intake") -> dict[str, Any]:
    action: dict[str, Any] = {"forward_to": "TestRouter", "entry_point": "Sales"}
    if flow_name:
        action["flow"] = flow_name
    return {"name": name, "channel": "sms", "event": "mo", "asset": "test-sms", "keyword": "VIP", "action": action}
