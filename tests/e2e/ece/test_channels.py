"""A customer on each of the five channels chats with an ECE agent, end to end. One story per
channel, through the simulators, real HTTP, real Redis and a real worker process."""

from __future__ import annotations

import base64

import pytest

from connector.channels import channel_class
from connector.channels.base import mime_accepted
from tests.e2e.stack import ASSETS, CUSTOMERS, Stack

CHANNELS = tuple(ASSETS)
# A 1x1 PNG: every channel accepts images from customers.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def texts(stack: Stack, channel: str) -> list[str]:
    return [s.get("text") or "" for s in stack.sent(channel) if s["kind"] in ("text", "system")]


def customer_files(stack: Stack, conversation_id: str) -> list:
    with stack.ece.model.lock:
        return [
            f
            for f in stack.ece.model.files.values()
            if f.conversation_id == conversation_id and f.direction == "customer"
        ]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_customer_chats_with_an_agent_on_their_own_channel(stack: Stack, channel: str) -> None:
    asset, customer = ASSETS[channel], CUSTOMERS[channel]
    capabilities = channel_class(channel)
    ece = stack.ece.model

    # First message → a conversation on the rule's entry point, with the customer's details.
    stack.customer.send_text(asset, customer, "Hello, my order is late", profile_name="Dana Customer")
    conversation = stack.wait_conversation()
    assert conversation.entry_point_id == "1001"
    attributes = {a["name"]: a["value"] for a in conversation.customer_attributes}
    assert attributes["channel"] == channel and attributes["address"] == customer
    custom = {a["name"]: a["value"] for a in conversation.custom_attributes}
    if channel == "whatsapp":
        assert custom == {"wa.profile": "Dana Customer"}
    elif channel == "inapp":
        assert custom["app.user"].startswith("Dana Customer")
    else:
        assert "wa.profile" not in custom and "fb.username" not in custom, "other channels' mappings stay out"
    received = stack.wait_received(conversation, 1)
    assert (received[0].kind, received[0].content) == ("message", "Hello, my order is late")
    stack.wait_text(channel, "Thank you for contacting us")

    # The agent takes the chat.
    ece.assign(conversation.id, "1001", "Alice")
    stack.wait_text(channel, "You are now chatting with Alice")

    # Typing, shown where the channel can (never on SMS), then the agent's words.
    ece.typing(conversation.id, True)
    if capabilities.typing:
        stack.wait_sent(channel, lambda sent: any(s["kind"] == "typing_on" for s in sent), "typing shown")
    ece.say(conversation.id, "Let me check that for you.")
    stack.wait_text(channel, "Let me check that for you.")
    ece.say(conversation.id, "<p>Your parcel is <b>in transit</b>.</p>", html=True)
    html = stack.wait_text(channel, "in transit")
    assert "<b>" not in html["text"], "HTML reaches a plain-text channel as text"
    if not capabilities.typing:
        assert not [s for s in stack.sent(channel) if s["kind"].startswith("typing")]

    # Transfers, to a queue and to an agent.
    ece.transfer(conversation.id, "queue", "Billing")
    stack.wait_text(channel, "Billing")
    ece.assign(conversation.id, "1002", "Bob")
    stack.wait_text(channel, "You are now chatting with Bob")
    ece.transfer(conversation.id, "agent", "Carol")
    stack.wait_text(channel, "Carol")

    # A pushed page arrives as a link.
    ece.page_push(conversation.id, "https://help.example.com/shipping")
    stack.wait_text(channel, "https://help.example.com/shipping")

    # The agent's file: natively where the channel can, else as a link.
    ece.upload_file(conversation.id, "label.pdf", "application/pdf", PDF)
    sent = stack.wait_sent(
        channel,
        lambda sent: any(s["kind"] == "file" or "label.pdf" in (s.get("text") or "") for s in sent),
        "the agent's file",
    )
    as_file = [s for s in sent if s["kind"] == "file"]
    if mime_accepted("application/pdf", capabilities.attachments_out):
        assert as_file, f"{channel} sends a PDF natively"
        if channel == "apple":
            assert as_file[0]["file"].get("data") == PDF, "Apple's encrypted upload decrypts to the agent's bytes"
    else:
        assert not as_file, f"{channel} cannot send a PDF natively: it goes as a link"

    # The customer's files reach the agent, byte for byte; the agent accepts one and rejects one.
    stack.customer.send_file(asset, customer, PNG, "image/png", "receipt.png")
    stack.customer.send_file(asset, customer, PNG + b"\x00", "image/png", "second.png")
    stack.wait_received(conversation, 3)
    files = customer_files(stack, conversation.id)
    assert [f.data for f in files][:1] == [PNG]
    ece.accept_attachment(conversation.id, files[0].id)
    stack.wait_text(channel, "accepted your attachment")
    ece.reject_attachment(conversation.id, files[1].id)
    stack.wait_text(channel, "rejected your attachment")

    # The agent closes; the customer's next message starts a new conversation.
    ece.complete(conversation.id)
    stack.wait_text(channel, "closed")
    stack.customer.send_text(asset, customer, "One more question")
    second = stack.wait_conversation(2)
    assert second.id != conversation.id
    assert [r.content for r in stack.wait_received(second, 1)] == ["One more question"]
    stack.wait_sent(
        channel,
        lambda sent: sum("Thank you for contacting us" in (s.get("text") or "") for s in sent) == 2,
        "a welcome for the second conversation",
    )

    # Order and uniqueness: what the customer saw, in the order the agent acted, each once.
    seen = texts(stack, channel)
    order = [
        next(i for i, t in enumerate(seen) if needle in t)
        for needle in ("Thank you for contacting us", "Alice", "Let me check", "in transit", "Billing", "Bob")
    ]
    assert order == sorted(order)
    assert sum("Let me check" in t for t in seen) == 1
