"""A customer on each of the five channels chats with Hybrid Chat's agents, end to end: the provider
simulators, the connector's web app over real HTTP, a real worker process, real Redis, and agents at
the agent API over HTTP (Zoe as the desktop is one: cookie + CSRF, long polls; Yan as an outside
tool: Bearer, Server-Sent Events). Offer → accept → messages and files both ways → transfer to a
queue → a second agent → transfer to a named agent → close with a wrap-up, with every text the
customer received checked, in order, once."""

from __future__ import annotations

import base64

import pytest
import requests

from connector.channels import channel_class
from connector.channels.base import mime_accepted
from tests.e2e.hybrid.helpers import (
    AGENT_CLOSED,
    WELCOME,
    assigned,
    sent,
    texts,
    thread_of,
    to_agent,
    to_queue,
)
from tests.e2e.stack import ASSETS, CUSTOMERS, HYBRID
from tests.helpers import wait_for

CHANNELS = tuple(ASSETS)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_customer_is_served_by_hybrid_chat_agents_on_their_own_channel(hybrid_stack, agent_api, channel):
    stack = hybrid_stack()
    asset, customer = ASSETS[channel], CUSTOMERS[channel]
    zoe = agent_api(stack, "zoe", auth="cookie")  # Support (english), long polls
    yan = agent_api(stack, "yan", sse=True)  # Billing, Server-Sent Events
    assert zoe.agent_id == "local:zoe" and yan.agent_id == "local:yan"
    assert zoe.me()["chat_state"] == "NOT_READY", "an agent starts NOT_READY"
    assert zoe.ready()["chat_state"] == "READY"
    assert yan.ready()["chat_state"] == "READY"

    # The customer writes: welcomed, queued in Support, offered to Zoe (the only READY agent with english).
    stack.customer.send_text(asset, customer, "Hello, my order is late", profile_name="Dana Customer")
    offer = zoe.wait_event("chat_offered")
    chat_id = offer["chat_id"]
    chat = offer["chat"]
    assert (chat["chat_id"], chat["integration"], chat["queue"], chat["state"]) == (
        chat_id,
        HYBRID,
        "Support",
        "offered",
    )
    assert chat["channel"] == channel and chat["customer"]["id"] == customer
    assert chat["offer_expires_at"] > chat["started_at"]
    stack.wait_text(channel, WELCOME)
    assert [c["chat_id"] for c in zoe.me()["chats"]] == [chat_id], "an offered chat counts among the agent's"

    # Accept: the customer hears who is with them; the agent's stream confirms.
    accepted = zoe.accept(chat_id)
    assert accepted["state"] == "active" and "offer_expires_at" not in accepted
    zoe.wait_event("chat_assigned", chat_id)
    stack.wait_text(channel, assigned("Zoe"))
    assert zoe.call("POST", f"/agent/api/chats/{chat_id}/accept", expect=409).json()["error"] == "already_accepted"

    # Typing both ways where the channel tells it, then messages both ways.
    capabilities = channel_class(channel)
    assert zoe.call("POST", f"/agent/api/chats/{chat_id}/typing", json={"typing": True}).json()["typing"] is True
    if capabilities.typing:
        stack.wait_sent(channel, lambda s: any(x["kind"] == "typing_on" for x in s), "the agent's typing shown")
    if channel in ("apple", "inapp"):  # the only providers that tell the business the customer types
        stack.customer.send_typing(asset, customer, True)
        zoe.wait_event("customer_typing", chat_id, typing=True)
    zoe.say(chat_id, "Let me check that for you.")
    stack.wait_text(channel, "Let me check that for you.")
    stack.customer.send_text(asset, customer, "It was due on Monday")
    said = zoe.wait_event("customer_message", chat_id, text="It was due on Monday")
    assert said["message_id"]

    # Files both ways: the agent's natively where the channel carries it, else as a signed link; the
    # customer's reaches the agent's desktop byte for byte.
    zoe.send_file(chat_id, "label.pdf", "application/pdf", PDF)
    natively = mime_accepted("application/pdf", capabilities.attachments_out)
    if natively:
        stack.wait_sent(channel, lambda s: any(x["kind"] == "file" for x in s), "the agent's file")
        file = next(x for x in sent(stack, channel) if x["kind"] == "file")["file"]
        # Apple's encrypted upload decrypts to the agent's bytes; the others fetch the signed link.
        data = file.get("data") or requests.get(file["url"], timeout=10).content
        assert data == PDF
    else:
        link = stack.wait_text(channel, "label.pdf: ")["text"]
        url = link.split("label.pdf: ", 1)[1].strip()
        fetched = requests.get(url, timeout=10)  # as the customer's provider or phone opens it
        assert fetched.status_code == 200 and fetched.content == PDF
        assert requests.get(url.replace("signature=", "signature=0"), timeout=10).status_code == 403
    stack.customer.send_file(asset, customer, PNG, "image/png", "receipt.png")
    with_file = zoe.wait_event("customer_message", chat_id, where=lambda e: bool(e.get("attachments")))
    attachment = with_file["attachments"][0]
    assert attachment["mime_type"] == "image/png" and attachment["size"] == len(PNG)
    assert zoe.file(attachment["url"]).content == PNG

    # Transfer to the Billing queue: the customer is told; Yan (billing) is offered it and accepts.
    unknown = zoe.call("POST", f"/agent/api/chats/{chat_id}/transfer", json={"queue": "Nowhere"}, expect=400)
    assert unknown.json()["error"] == "unknown_queue"
    moved = zoe.transfer(chat_id, queue="Billing")
    assert (moved["queue"], moved["state"]) in (("Billing", "queued"), ("Billing", "offered"))
    zoe.wait_event("chat_transferred", chat_id)
    stack.wait_text(channel, to_queue("Billing"))
    billing_offer = yan.wait_event("chat_offered", chat_id)
    assert billing_offer["chat"]["queue"] == "Billing"
    assert zoe.me()["chats"] == [], "the transfer freed Zoe's slot"
    yan.accept(chat_id)
    stack.wait_text(channel, assigned("Yan"))
    stack.customer.send_text(asset, customer, "Hello Yan")
    yan.wait_event("customer_message", chat_id, text="Hello Yan")
    assert not zoe.of_type("customer_message", 0)[2:], "Zoe no longer hears the customer"
    yan.say(chat_id, "Billing here: I'm sending you back to Zoe.")
    stack.wait_text(channel, "Billing here")

    # Transfer to a named agent: offered to Zoe at once; the customer is told, then who has them.
    away = yan.call("POST", f"/agent/api/chats/{chat_id}/transfer", json={"agent_id": "local:uma"}, expect=409)
    assert away.json()["error"] == "agent_unavailable", "Uma is not logged in, so not READY"
    mark = zoe.mark()
    handed = yan.transfer(chat_id, agent_id=zoe.agent_id)
    assert handed["state"] == "offered"
    stack.wait_text(channel, to_agent("Zoe"))
    zoe.wait_event("chat_offered", chat_id, since=mark)
    assert yan.call("GET", f"/agent/api/chats/{chat_id}", expect=404).json()["error"] == "not_found"
    zoe.accept(chat_id)
    stack.wait_sent(
        channel, lambda s: sum((x.get("text") or "") == assigned("Zoe") for x in s) == 2, "Zoe assigned again"
    )

    # Close with a wrap-up: the customer hears it, the chat keeps its wrap-up and transcript.
    assert zoe.close(chat_id, wrap_up="parcel re-sent") == {"chat_id": chat_id, "status": "closed"}
    zoe.wait_event("chat_closed", chat_id, by="agent")
    stack.wait_text(channel, AGENT_CLOSED)
    wait_for(lambda: thread_of(stack, channel).state.value == "closed", what="the conversation closed")
    closed = zoe.chat(chat_id)
    assert (closed["state"], closed["closed_by"], closed["wrap_up"]) == ("closed", "agent", "parcel re-sent")
    transcript = [(t["from"], t.get("text")) for t in closed["transcript"] if t.get("text")]
    assert transcript == [
        ("customer", "Hello, my order is late"),
        ("agent", "Let me check that for you."),
        ("customer", "It was due on Monday"),
        ("customer", "Hello Yan"),
        ("agent", "Billing here: I'm sending you back to Zoe."),
    ]
    assert zoe.me()["chats"] == [] and yan.me()["chats"] == []

    # The customer's next message starts a new chat, which shows the earlier one.
    stack.customer.send_text(asset, customer, "One more question")
    renewed = zoe.wait_event("chat_offered", where=lambda e: e["chat_id"] != chat_id)
    assert [c["chat_id"] for c in zoe.chat(renewed["chat_id"])["earlier"]] == [chat_id]
    stack.wait_sent(channel, lambda s: sum((x.get("text") or "") == WELCOME for x in s) == 2, "a second welcome")

    # Everything the customer read, in the order the agents acted, each once.
    seen = [t for t in texts(stack, channel) if not t.startswith("label.pdf: ")]
    assert seen == [
        WELCOME,
        assigned("Zoe"),
        "Let me check that for you.",
        to_queue("Billing"),
        assigned("Yan"),
        "Billing here: I'm sending you back to Zoe.",
        to_agent("Zoe"),
        assigned("Zoe"),
        AGENT_CLOSED,
        WELCOME,
    ]
    if channel == "inapp":
        kinds = [x["kind"] for x in sent(stack, channel)]
        assert kinds[-2:] == ["close", "system"], "the app is told the conversation ended"
    assert yan.sse_connections >= 1 and not yan.sse_errors
