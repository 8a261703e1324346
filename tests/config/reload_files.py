"""Provisioned files to reload: a private copy of the test configuration, and the edits the reload
tests make to it (tests/config/test_reload.py, tests/e2e/test_reload.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import CONFIG_DIR
from tests.helpers import WHATSAPP_PHONE_NUMBER_ID

FILE = "channels.yaml"
NEW_ASSET = "test-whatsapp-2"
TOKEN = "wa-token-2"
"""A second WhatsApp asset the good edit adds (same phone number id and app secret as `test-whatsapp`,
so tests.helpers signs its webhooks)."""


def copy_of_the_test_configuration(folder: Path, *, without_rules: tuple[str, ...] = ()) -> Path:
    """tests/config/channels.yaml in `folder` (created), minus the rules named."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIG_DIR / FILE, folder / FILE)
    if without_rules:
        edit(folder, lambda doc: doc.update(rules=[r for r in doc["rules"] if r["name"] not in without_rules]))
    return folder


def edit(folder: Path, change: Any) -> None:
    """Load the file, let `change(document)` change it in place, write it back."""
    path = folder / FILE
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def rule(name: str, asset: str, entry_point: str, channel: str = "whatsapp") -> dict[str, Any]:
    return {
        "name": name,
        "channel": channel,
        "event": "incoming_message",
        "asset": asset,
        "action": {"forward_to": "TestRouter", "entry_point": entry_point},
    }


def whatsapp_asset(name: str, access_token: str = TOKEN) -> dict[str, Any]:
    return {
        "name": name,
        "channel": "whatsapp",
        "phone_number_id": WHATSAPP_PHONE_NUMBER_ID,
        "app_secret": "whatsapp-app-secret",
        "access_token": access_token,
        "verify_token": "whatsapp-verify-token-2",
    }


def add_whatsapp_routing(folder: Path, *, access_token: str = TOKEN) -> None:
    """The good edit: a rule sending `test-whatsapp` to Sales, and a new asset with its own rule."""

    def change(document: dict[str, Any]) -> None:
        document["assets"].append(whatsapp_asset(NEW_ASSET, access_token))
        document["rules"].append(rule("whatsapp-sales", "test-whatsapp", "Sales"))
        document["rules"].append(rule("whatsapp-2", NEW_ASSET, "Sales"))

    edit(folder, change)


def break_with_a_good_part(folder: Path) -> None:
    """A broken edit: the good routing plus a rule naming an entry point that does not exist."""
    add_whatsapp_routing(folder)
    add_a_broken_rule(folder)


def add_a_broken_rule(folder: Path) -> None:
    """A rule naming an entry point that does not exist (after the good routing: it is rules[7])."""
    edit(folder, lambda doc: doc["rules"].append(rule("broken", "test-whatsapp", "Nowhere")))


BROKEN_FIELD = "action.entry_point"
BROKEN_MESSAGE = "integration 'TestRouter' has no entry point named 'Nowhere'"


def yaml_text(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def edit_finesse(folder: Path, **changes: Any) -> None:
    """Change fields of the `finesse:` section in `folder`/finesse.yaml."""
    path = folder / "finesse.yaml"
    document = yaml.safe_load(path.read_text())
    document["finesse"].update(changes)
    path.write_text(yaml_text(document))
