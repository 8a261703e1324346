"""What the customer hears from Hybrid Chat (message_templates/en/, rendered), and reading it back
from the provider simulators."""

from __future__ import annotations

from typing import Any

from connector.backends.hybrid.state import HybridState
from connector.channels.base import thread_id_for
from connector.store import threads
from tests.e2e.stack import ASSETS, CUSTOMERS, Stack

WELCOME = (
    "Thank you for contacting us. We are here to help you resolve your issue. "
    "Please be patient until an agent attends you."
)
AGENT_CLOSED = "The agent has marked your chat closed."
CUSTOMER_INACTIVE = "We closed this chat as we have not heard from you for a while. Write again any time."
NO_AGENTS = "Sorry! There are no agents available right now to be with you. Please come back later."
DISABLED = "Sorry! This service is not available right now. Please come back later."


def assigned(name: str) -> str:
    return f"You are now chatting with {name}."


def to_queue(name: str) -> str:
    return f"You have been transferred to the {name} queue."


def to_agent(name: str) -> str:
    return f"You have been transferred to {name}."


def sent(stack: Stack, channel: str, customer: str | None = None) -> list[dict[str, Any]]:
    """Every send the channel's provider simulator accepted for the customer, oldest first."""
    return stack.providers.store.sent(channel, customer or CUSTOMERS[channel])


def texts(stack: Stack, channel: str, customer: str | None = None) -> list[str]:
    """The texts (the agents' and the system's) the customer received, in order."""
    return [s.get("text") or "" for s in sent(stack, channel, customer) if s["kind"] in ("text", "system")]


def thread_of(stack: Stack, channel: str, customer: str | None = None) -> threads.Thread:
    return threads.load(stack.runtime.redis, thread_id_for(channel, ASSETS[channel], customer or CUSTOMERS[channel]))


def router(stack: Stack) -> HybridState:
    return HybridState(stack.runtime.redis)
