"""The WhatsApp simulator checks interactive sends against WhatsApp's limits (docs/protocols/channels.md,
"WhatsApp: sending"): reply buttons (1-3, title <= 20, id <= 256, unique), list messages (a button
label <= 20, up to 10 rows in all, row title <= 24, id <= 200, description <= 72, unique ids), a
body of 1-1024 characters. A violation is Graph's code 100 with WhatsApp's `error_data` and records
nothing; an accepted send records its buttons or rows. Bodies are written here from that page."""

from __future__ import annotations

from typing import Any

import pytest

from connector.config.model import Config
from connector.sandbox.providers import ProviderSimulators
from tests.sandbox.test_providers import asset, config, sims, whatsapp_send

__all__ = ["config", "sims"]  # the fixtures, shared with test_providers
WA_ID = "5511987654321"


def buttons(*pairs: tuple[str, str], body: Any = "Pick one") -> dict[str, Any]:
    interactive: dict[str, Any] = {
        "type": "button",
        "action": {"buttons": [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in pairs]},
    }
    if body is not None:
        interactive["body"] = {"text": body}
    return message(interactive)


def listing(*rows: dict[str, Any], label: str = "Choose", sections: list[Any] | None = None) -> dict[str, Any]:
    action = {"button": label, "sections": sections if sections is not None else [{"rows": list(rows)}]}
    return message({"type": "list", "body": {"text": "Pick one"}, "action": action})


def message(interactive: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "interactive",
        "interactive": interactive,
    }


def row(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"r{n}", "title": f"Row {n}", **extra}


def test_reply_buttons_are_accepted_and_recorded(sims: ProviderSimulators, config: Config) -> None:
    number = asset(config, "whatsapp")
    response = whatsapp_send(sims, number, buttons(("yes", "Yes"), ("no", "No"), ("x" * 256, "y" * 20)))
    assert response.status_code == 200, response.text
    [sent] = sims.store.sent("whatsapp", WA_ID)
    assert (sent["kind"], sent["text"], sent["interactive"]) == ("interactive", "Pick one", "button")
    assert sent["choices"] == [
        {"id": "yes", "title": "Yes"},
        {"id": "no", "title": "No"},
        {"id": "x" * 256, "title": "y" * 20},
    ]
    assert sent["provider_id"] == response.json()["messages"][0]["id"]


def test_a_list_is_accepted_and_its_rows_recorded(sims: ProviderSimulators, config: Config) -> None:
    number = asset(config, "whatsapp")
    rows = [row(n) for n in range(9)] + [{"id": "i" * 200, "title": "t" * 24, "description": "d" * 72}]
    assert whatsapp_send(sims, number, listing(*rows, label="l" * 20)).status_code == 200
    two_sections = [{"title": "A", "rows": [row(1)]}, {"title": "B", "rows": [row(2)]}]
    assert whatsapp_send(sims, number, listing(sections=two_sections)).status_code == 200
    first, second = sims.store.sent("whatsapp", WA_ID)
    assert first["interactive"] == "list"
    assert [c["id"] for c in first["choices"]] == [f"r{n}" for n in range(9)] + ["i" * 200]
    assert second["choices"] == [{"id": "r1", "title": "Row 1"}, {"id": "r2", "title": "Row 2"}]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (buttons(("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")), "1 to 3 buttons"),
        (buttons(), "1 to 3 buttons"),
        (buttons(("a", "x" * 21)), "['title'] must be at most 20"),
        (buttons(("i" * 257, "A")), "['id'] must be at most 256"),
        (buttons(("a", "A"), body=None), "interactive['body']['text'] is required"),
        (buttons(("a", "A"), body=""), "interactive['body']['text'] is required"),
        (buttons(("a", "A"), body="x" * 1025), "must be at most 1024"),
        (buttons(("a", "A"), ("a", "B")), "id must be unique"),
        (buttons(("a", "A"), ("b", "A")), "title must be unique"),
        (
            message({"type": "button", "body": {"text": "q"}, "action": {"buttons": [{"id": "a", "title": "A"}]}}),
            "type: reply",
        ),
        (message({"type": "carousel", "body": {"text": "q"}, "action": {}}), "interactive['type'] must be one of"),
        (message({"type": "button", "body": {"text": "q"}}), "interactive['action'] is required"),
        (listing(*[row(n) for n in range(11)]), "at most 10 rows in all"),
        (
            listing(
                sections=[
                    {"title": "A", "rows": [row(n) for n in range(6)]},
                    {"title": "B", "rows": [row(n + 6) for n in range(5)]},
                ]
            ),
            "at most 10 rows in all",
        ),
        (listing(row(1), label="x" * 21), "['button'] must be at most 20"),
        (listing(row(1), label=""), "['button'] is required"),
        (listing({"id": "a", "title": "x" * 25}), "['title'] must be at most 24"),
        (listing({"id": "i" * 201, "title": "A"}), "['id'] must be at most 200"),
        (listing(row(1, description="d" * 73)), "['description'] must be at most 72"),
        (listing(row(1), row(1)), "row id must be unique"),
        (listing(sections=[]), "1 to 10 sections"),
        (listing(sections=[{"rows": []}]), "at least one row"),
        (listing(sections=[{"rows": [row(1)]}, {"rows": [row(2)]}]), "['title'] is required"),
    ],
)
def test_violations_are_graphs_invalid_parameter_and_record_nothing(
    sims: ProviderSimulators, config: Config, body: dict[str, Any], names: str
) -> None:
    response = whatsapp_send(sims, asset(config, "whatsapp"), body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 100 and error["message"].startswith("(#100) ")
    assert names in error["message"], error["message"]
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert sims.store.sent("whatsapp") == []
