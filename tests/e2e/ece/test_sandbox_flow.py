"""The sandbox's demo flow (`make run`, README "Try a flow"), end to end: the sandbox configuration
passes check-config, and its Messenger flow runs on the e2e stack (real web app, real worker, the
ECE and provider simulators, the sample identity service and FAQ bot) exactly as written in
entrypoints/sandbox/sandbox.yaml, only pointed at the stack's ports. A Spanish first message makes
every question Spanish; the order number is verified; the bot answers FAQs until "agent"; the agent
closes; the survey is answered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.__main__ import main
from connector.settings import PROJECT_ROOT
from connector.store import surveys
from tests.e2e.stack import ASSETS, CUSTOMERS, SANDBOX, Stack, settle

pytestmark = pytest.mark.e2e

SANDBOX_YAML = PROJECT_ROOT / "entrypoints" / "sandbox" / "sandbox.yaml"
SANDBOX_SERVICES = "http://127.0.0.1:8100"
FIRST = "Hola, ¿dónde está mi pedido? Lo compré la semana pasada"


def sandbox_flow(path: Path) -> dict[str, Any]:
    """The flow the sandbox's Messenger rule names, with its services' URLs on the stack's sandbox."""
    raw = yaml.safe_load(path.read_text())
    (rule,) = [r for r in raw["rules"] if r["channel"] == "messenger"]
    (flow,) = [f for f in raw["flows"] if f["name"] == rule["action"]["flow"]]
    for step in flow["steps"]:
        if "url" in step:
            step["url"] = step["url"].replace(SANDBOX_SERVICES, SANDBOX)
    found: dict[str, Any] = flow
    return found


def test_the_sandbox_configuration_passes_check_config(capsys) -> None:
    assert main(["check-config", "--sandbox"]) == 0
    assert "is valid" in capsys.readouterr().out


def test_the_sandbox_flow_uses_language_ask_verify_bot_and_survey_on_one_channel() -> None:
    flow = sandbox_flow(SANDBOX_YAML)
    kinds = [step["type"] for step in flow["steps"]]
    assert kinds[0] == "language", "the language is chosen before the first question"
    assert {"language", "ask", "verify", "bot"} <= set(kinds) and flow.get("survey")


def test_the_sandbox_flow_end_to_end_in_spanish(stack_factory) -> None:
    flow = sandbox_flow(SANDBOX_YAML)
    stack: Stack = stack_factory(flows=[flow], channel_flows={"messenger": flow["name"]})
    page, customer = ASSETS["messenger"], CUSTOMERS["messenger"]

    def say(text: str, expect: str) -> None:
        stack.customer.send_text(page, customer, text)
        stack.wait_text("messenger", expect)

    say(FIRST, "¿cuál es su número de pedido?")  # detected Spanish: the question in Spanish
    assert stack.conversations() == [], "nothing reaches ECE while the flow runs"
    say("AB100001", "El pedido AB100001 de Ana Lima ha salido")  # verified, then the bot's first turn
    say("¿A qué hora abren?", "Abrimos de lunes a viernes")
    stack.customer.send_text(page, customer, "agent")

    conversation = stack.wait_conversation()
    received = [r.content or "" for r in stack.wait_received(conversation, 3)]
    assert received[:2] == [FIRST, "AB100001"]
    assert received[2].startswith("[connector] Chatbot conversation before this chat"), received[2]
    custom = {a["name"]: a["value"] for a in conversation.custom_attributes}
    assert (custom["verified"], custom["customer_tier"], custom["bot_handover"]) == ("true", "gold", "keyword")
    stack.wait_text("messenger", "Gracias por contactarnos")  # the welcome in the conversation's locale

    stack.ece.model.assign(conversation.id, "1001", "Alice")
    stack.wait_text("messenger", "Ahora está conversando con Alice")
    stack.ece.model.complete(conversation.id)
    stack.wait_text("messenger", "¿Cómo valora su chat con Alice?")
    say("5", "¿Quiere añadir algo?")
    say("Muy amable, gracias", "Gracias por su opinión.")
    settle(0.5)

    (record,) = surveys.between(stack.runtime.redis, None, None)
    assert (record.status, record.score, record.comment) == ("answered", 5, "Muy amable, gracias")
    assert [r.content for r in conversation.received] == received, "survey answers never reach the agent"
    texts = [s.get("text") or "" for s in stack.sent("messenger")]
    assert not any("order number" in t or "How would you rate" in t for t in texts), "nothing in English"
