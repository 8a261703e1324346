"""`language`, `branch` and `hours` inside the drain, on the real Redis with the ECE simulator: a
Spanish first message sets the es locale (its questions and system messages are Spanish) and the
conversation starts at the Soporte entry point; outside the hours the customer hears
`out_of_hours` and the conversation closes, or goes on to the entry point, as configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.channels.base import thread_id_for
from connector.relay import system_messages
from connector.settings import Settings
from connector.store import dead_letters, threads
from tests.flows.drain import route_whatsapp_to_ece, settings_with_flows, whatsapp_says
from tests.helpers import WHATSAPP_ASSET

ALWAYS = {
    "time_zone": "Europe/Madrid",
    "weekly": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
}
NEVER = {"time_zone": "Europe/Madrid", "weekly": {}}
LATER = {"time_zone": "Europe/Madrid", "weekly": {}, "holidays": [{"date": "2030-01-07", "hours": ["09:00-18:00"]}]}
"""Closed until one day in 2030 (a Monday), open 09:00-18:00 on it: a next opening that does not move."""
TOPIC = {
    "name": "topic",
    "type": "ask",
    "question": "ask_topic",
    "answer": "choices",
    "choices": ["Billing", "Other"],
    "attribute": "topic",
}
BRANCH = {
    "name": "route",
    "type": "branch",
    "branch": [
        {"when": {"language": "es"}, "entry_point": "Soporte"},
        {"when": {"attribute": {"topic": "billing"}}, "entry_point": "Billing"},
    ],
}
FLOWS = [
    {
        "name": "triage",
        "steps": [{"name": "lang", "type": "language"}, TOPIC, BRANCH, {"name": "open", "type": "hours"}],
    },
    {"name": "closed-discard", "steps": [{"name": "open", "type": "hours", "calendar": NEVER}]},
    {"name": "closed-route", "steps": [{"name": "open", "type": "hours", "closed": "route", "calendar": NEVER}]},
    {
        "name": "later",
        "steps": [{"name": "lang", "type": "language"}, {"name": "open", "type": "hours", "calendar": LATER}],
    },
]
SPANISH = "Hola, buenas tardes. Tengo una pregunta sobre mi pedido"
CUSTOMER = "15551238888"
THREAD = thread_id_for("whatsapp", WHATSAPP_ASSET, CUSTOMER)


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return settings_with_flows(redis_url, tmp_path, FLOWS)


def route_through(runtime, base_url: str, flow: str) -> None:
    entry_points = [
        {"name": "Support", "id": "1001", "hours": ALWAYS},
        {"name": "Soporte", "id": "1002", "hours": ALWAYS},
        {"name": "Billing", "id": "1001", "hours": ALWAYS},
    ]
    route_whatsapp_to_ece(runtime, base_url, rule="wa-flow", entry_points=entry_points, flow=flow)


def say(client, wamid: str, text: str) -> None:
    whatsapp_says(client, CUSTOMER, THREAD, wamid, text)


def sent(redis) -> list[str]:
    return [e["message"] for e in threads.timeline(redis, THREAD) if e.get("kind") == "system"]


def spanish(name: str) -> str:
    return (Path(__file__).resolve().parents[2] / "message_templates" / "es" / f"{name}.txt.j2").read_text().strip()


def test_a_spanish_first_message_ends_at_soporte_with_spanish_messages(client, runtime, redis, ece_simulator):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "triage")

    say(client, "wamid.L1", SPANISH)
    thread = threads.load(redis, THREAD)
    assert (thread.locale, thread.language) == ("es", "es")
    assert sent(redis) == ["ask_topic"]
    question = system_messages.render(runtime, thread, "ask_topic", flow=True)
    assert question == spanish("ask_topic"), "the question goes out in the detected locale"
    first = next(e for e in threads.timeline(redis, THREAD) if "flow" in e)
    assert first["flow"]["language"]["locale"] == "es" and first["flow"]["language"]["source"] == "detected"

    say(client, "wamid.L2", "2")  # "Other": the language decides the branch
    thread = threads.load(redis, THREAD)
    assert thread.entry_point == "Soporte" and thread.flow is None
    (conversation,) = simulator.model.conversations.values()
    assert str(conversation.entry_point_id) == "1002", "the conversation starts at Soporte"
    assert system_messages.render(runtime, thread, "welcome") == spanish("welcome")
    last = [e["flow"] for e in threads.timeline(redis, THREAD) if "flow" in e][-1]
    assert last["branch"] == {"step": "route", "entry_point": "Soporte", "branch": 0}
    assert last["hours"] == {"step": "open", "open": True, "calendar": "entry point Soporte"}


def test_closed_hours_send_out_of_hours_and_discard(client, runtime, redis, ece_simulator):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "closed-discard")
    say(client, "wamid.H1", "Hello, is anybody there to help me?")
    assert sent(redis) == ["out_of_hours"]
    assert threads.load(redis, THREAD).state.value == "closed"
    assert not simulator.model.conversations, "nothing reaches ECE"
    flow = next(e["flow"] for e in threads.timeline(redis, THREAD) if "flow" in e)
    assert flow["hours"]["open"] is False and flow["outcome"] == "closed: out of hours"


def test_closed_hours_with_route_send_out_of_hours_and_route_anyway(client, runtime, redis, ece_simulator):
    simulator, base_url = ece_simulator
    route_through(runtime, base_url, "closed-route")
    say(client, "wamid.R1", "Hello, is anybody there to help me?")
    assert "out_of_hours" in sent(redis)
    (conversation,) = simulator.model.conversations.values()
    assert str(conversation.entry_point_id) == "1001"
    assert threads.load(redis, THREAD).state.value != "closed"


def test_out_of_hours_tells_when_the_calendar_opens_next(client, runtime, redis, ece_simulator):
    """The `hours` step's calendar opens next on Monday 2030-01-07 at 09:00 in Madrid: the customer
    (Spanish, detected) hears it on the calendar's clock, written the Spanish way."""
    _simulator, base_url = ece_simulator
    route_through(runtime, base_url, "later")
    say(client, "wamid.O1", "Hola, buenas tardes. ¿Está abierta la tienda hoy?")
    assert sent(redis) == ["out_of_hours"]
    # The test asset's WhatsApp window refuses the send: the item is kept as a dead letter, as it was.
    (letter,) = dead_letters.listing(redis)
    raw = letter.payload()
    assert raw["type"] == "out_of_hours"
    assert raw["extra"]["hours"] == {"next_opening": "2030-01-07T09:00:00+01:00", "time_zone": "Europe/Madrid"}
    thread = threads.load(redis, THREAD)
    text = system_messages.render(runtime, thread, "out_of_hours", **raw["extra"])
    assert text == (
        "Gracias por su mensaje. Ahora mismo estamos cerrados: volvemos a abrir: lun, 7 de enero, 9:00 "
        "(hora de Europe/Madrid); escríbanos entonces."
    )
