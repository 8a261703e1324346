"""What the drain tests of flows share: a configuration folder with the test's flows beside
tests/config/channels.yaml, a WhatsApp rule that sends the test asset to the ECE simulator, and a
customer message through the real webhook and the drain."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from connector.relay.drain import drain_thread
from connector.runtime import Runtime
from connector.settings import Settings
from tests.conftest import CONFIG_DIR, ECE_CLIENT, settings_for
from tests.helpers import WHATSAPP_ASSET, whatsapp_headers, whatsapp_payload


def settings_with_flows(redis_url: str, tmp_path: Path, flows: list[dict[str, Any]]) -> Settings:
    """The tests' settings over a folder of tests/config/channels.yaml and `flows` (in flows.yaml)."""
    folder = tmp_path / "config"
    folder.mkdir()
    shutil.copy(CONFIG_DIR / "channels.yaml", folder)
    (folder / "flows.yaml").write_text(yaml.safe_dump({"flows": flows}))
    return settings_for(redis_url, folder, tmp_path)


def route_whatsapp_to_ece(
    runtime: Runtime, base_url: str, *, rule: str, entry_points: list[dict[str, Any]], flow: str | None = None
) -> None:
    """Integration `ECE` (the simulator at `base_url`) with `entry_points`, and UI rule `rule`, evaluated
    first, forwarding the test WhatsApp asset to its `Support` (through `flow`, when given)."""
    store = runtime.overrides
    integration = {
        "name": "ECE",
        "type": "ece",
        "base_url": base_url,
        "client_key": ECE_CLIENT[0],
        "client_secret": ECE_CLIENT[1],
        "entry_points": entry_points,
    }
    store.save("integrations", integration, runtime.provisioned, create=True)
    action = {"forward_to": "ECE", "entry_point": "Support", **({"flow": flow} if flow else {})}
    whatsapp = {"name": rule, "channel": "whatsapp", "event": "incoming_message", "asset": WHATSAPP_ASSET}
    store.save("rules", {**whatsapp, "action": action}, runtime.provisioned, create=True)
    runtime.config_changed()
    store.set_rule_order([rule, *(r.name for r in runtime.config.rules if r.name != rule)], runtime.config)
    runtime.config_changed()


def whatsapp_says(client: Any, customer: str, thread: str, wamid: str, text: str, *, drain: bool = True) -> None:
    """`customer` sends `text` to the test WhatsApp asset (a signed webhook), then the drain takes
    their thread `thread` (unless `drain` is false: the message waits in the inbox)."""
    body = whatsapp_payload([(customer, wamid, text)])
    response = client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))
    assert response.status_code == 200
    if drain:
        drain_thread(thread)
