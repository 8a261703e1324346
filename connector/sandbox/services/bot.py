"""A small FAQ bot for the `bot` step, speaking our contract (docs/protocols/bots.md): `POST /bot/turn`.

It answers opening hours, order status (with buttons, then the demo orders of identity.py) and
returns; "agent" or "human" (typed, or the "Talk to an agent" button) hands over with a summary of
what the customer asked; anything else is "I did not get that" with the topics as buttons. A turn
whose `locale` is Spanish is answered in Spanish (the words it knows are English and Spanish); the
summary for the agent stays English. A turn repeated with the same X-Connector-Idempotency-Key gets
the first answer and does not count its topic twice (`Replays`).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response

from connector.sandbox.services import BOT_SECRET, Faults, Replays, add_control, signed_answer
from connector.sandbox.services.identity import DEMO_CUSTOMERS, DemoCustomer

HOURS = "We are open Monday to Friday, 9:00 to 18:00, and Saturday 10:00 to 14:00 (Central European Time)."
RETURNS = (
    "You can return any item within 30 days of delivery: print the label from your order page and drop "
    "the parcel at any post office. Refunds reach your account within 5 working days."
)
NOT_UNDERSTOOD = "I did not get that. I can help with these:"
ORDER_QUESTION = "Which order do you mean?"
ORDER_NUMBER_PROMPT = "Please type your order number (two letters and six digits, like AB100001)."
HANDOVER_TEXT = "I am passing you to an agent now; they will see what we talked about."
TOPIC_BUTTONS = [
    {"title": "Opening hours", "payload": "hours"},
    {"title": "Order status", "payload": "order_status"},
    {"title": "Returns", "payload": "returns"},
    {"title": "Talk to an agent", "payload": "agent"},
]
ORDER_BUTTONS = [
    {"title": "My latest order", "payload": "order_latest"},
    {"title": "Another order", "payload": "order_other"},
]
SPANISH = {
    HOURS: "Abrimos de lunes a viernes de 9:00 a 18:00 y los sábados de 10:00 a 14:00 (hora de Europa central).",
    RETURNS: (
        "Puede devolver cualquier artículo en los 30 días siguientes a la entrega: imprima la etiqueta desde la "
        "página de su pedido y deje el paquete en cualquier oficina de correos. El reembolso llega en 5 días hábiles."
    ),
    NOT_UNDERSTOOD: "No le he entendido. Puedo ayudarle con esto:",
    ORDER_QUESTION: "¿De qué pedido se trata?",
    ORDER_NUMBER_PROMPT: "Escriba su número de pedido (dos letras y seis cifras, como AB100001).",
    HANDOVER_TEXT: "Le paso con un agente; verá de qué hemos hablado.",
    "Hello! What can I help you with?": "¡Hola! ¿En qué puedo ayudarle?",
    "Opening hours": "Horario",
    "Order status": "Estado del pedido",
    "Returns": "Devoluciones",
    "Talk to an agent": "Hablar con un agente",
    "My latest order": "Mi último pedido",
    "Another order": "Otro pedido",
}
"""The bot's words in Spanish, by their English text (order statuses are made in `_order_status`)."""
ORDER_NUMBER = re.compile(r"\b([A-Z]{2}\d{6})\b", re.IGNORECASE)
AGENT_WORDS = {"agent", "human", "person", "operator", "agente", "persona", "humano", "operador"}
HOURS_WORDS = {"hours", "open", "opening", "close", "closing", "horario", "abren", "abierto", "abiertos", "cierran"}
RETURN_WORDS = {"return", "returns", "refund", "exchange", "devolver", "devolución", "devolucion", "reembolso"}
ORDER_WORDS = {"order", "orders", "parcel", "delivery", "shipping", "status", "pedido", "paquete", "envío", "envio"}
GREETING_WORDS = {"hi", "hello", "hey", "hola", "buenas"}
MAX_CONVERSATIONS = 10_000
"""Conversations whose topics the bot remembers for the handover summary (oldest forgotten first)."""


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]+", text.lower()))


def _spanish(answer: dict[str, Any]) -> dict[str, Any]:
    """`answer` with its texts and button titles in Spanish (payloads unchanged)."""
    messages = [
        {
            **m,
            "text": SPANISH.get(m["text"], m["text"]),
            **(
                {"buttons": [{**b, "title": SPANISH.get(b["title"], b["title"])} for b in m["buttons"]]}
                if m.get("buttons")
                else {}
            ),
        }
        for m in answer["messages"]
    ]
    return {**answer, "messages": messages}


@dataclass
class SandboxBot:
    secret: str = BOT_SECRET
    orders: tuple[DemoCustomer, ...] = DEMO_CUSTOMERS
    faults: Faults = field(default_factory=Faults)
    replays: Replays = field(default_factory=Replays)
    """Answers by idempotency key: a repeated turn gets the first answer and moves no conversation on."""
    _topics: OrderedDict[str, list[str]] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, turn: dict[str, Any]) -> dict[str, Any]:
        """The contract's answer to one turn; remembers the topic for the handover summary."""
        message = turn.get("message") or {}
        said = str(message.get("payload") or message.get("text") or "").strip()
        words = _words(said)
        conversation = str(turn.get("conversation_id") or "")
        spanish = str(turn.get("locale") or "").lower().startswith("es")
        if words & AGENT_WORDS:
            answer = self._handover(conversation, said)
        else:
            topic, answer = self._faq(said, words, spanish)
            self._remember(conversation, topic)
        return _spanish(answer) if spanish else answer

    def _faq(self, said: str, words: set[str], spanish: bool = False) -> tuple[str, dict[str, Any]]:
        if said == "hours" or words & HOURS_WORDS:
            return "opening hours", {"messages": [{"text": HOURS}]}
        if said == "returns" or words & RETURN_WORDS:
            return "returns", {"messages": [{"text": RETURNS}]}
        if said == "order_latest":
            return "order status", {"messages": [{"text": self._order_status(self.orders[0], spanish)}]}
        if said == "order_other":
            return "order status", {"messages": [{"text": ORDER_NUMBER_PROMPT}]}
        found = ORDER_NUMBER.search(said)
        if found:
            order = next((o for o in self.orders if o.order_number == found.group(1).upper()), None)
            number = found.group(1).upper()
            if order:
                text = self._order_status(order, spanish)
            else:
                text = f"No encuentro el pedido {number}." if spanish else f"I cannot find order {number}."
            return "order status", {"messages": [{"text": text}]}
        if said == "order_status" or words & ORDER_WORDS:
            return "order status", {"messages": [{"text": ORDER_QUESTION, "buttons": ORDER_BUTTONS}]}
        if words & GREETING_WORDS:
            return "greeting", {"messages": [{"text": "Hello! What can I help you with?", "buttons": TOPIC_BUTTONS}]}
        return "not understood", {"messages": [{"text": NOT_UNDERSTOOD, "buttons": TOPIC_BUTTONS}]}

    @staticmethod
    def _order_status(order: DemoCustomer, spanish: bool = False) -> str:
        if spanish:
            return f"El pedido {order.order_number} de {order.name} ha salido y llega en 2 días hábiles."
        return f"Order {order.order_number} for {order.name} has shipped and arrives within 2 working days."

    def _handover(self, conversation: str, said: str) -> dict[str, Any]:
        with self._lock:
            topics = self._topics.pop(conversation, [])
        asked = ", ".join(dict.fromkeys(t for t in topics if t != "greeting")) or "nothing before"
        summary = f"The customer asked the bot about: {asked}; then asked for an agent ({said!r})."
        return {
            "messages": [{"text": HANDOVER_TEXT}],
            "handover": {"summary": summary, "attributes": {"bot_topics": asked}},
        }

    def _remember(self, conversation: str, topic: str) -> None:
        with self._lock:
            self._topics.setdefault(conversation, []).append(topic)
            self._topics.move_to_end(conversation)
            while len(self._topics) > MAX_CONVERSATIONS:
                self._topics.popitem(last=False)

    def forget(self) -> None:
        with self._lock:
            self._topics.clear()
        self.replays.reset()

    def blueprint(self) -> Blueprint:
        bp = Blueprint("sandbox_bot", __name__)

        @bp.post("/turn")
        def turn() -> tuple[Response, int] | Response:
            return signed_answer(self.secret, self.faults, self.replays, "message", self.answer)

        add_control(bp, self.faults, reset=self.forget)
        return bp
