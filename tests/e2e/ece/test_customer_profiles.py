"""A Messenger customer's name reaches the ECE agent, end to end: the webhook carries only the PSID,
the worker reads the profile from the Graph simulator's User Profile API before starting the chat.
Through the simulators, real HTTP, real Redis and a real worker process."""

from __future__ import annotations

from connector.channels.base import thread_id_for
from connector.relay.profiles import NO_PROFILE_TTL_SECONDS
from connector.store import keys
from tests.e2e.stack import ASSETS, CUSTOMERS, Stack

ASSET, PSID = ASSETS["messenger"], CUSTOMERS["messenger"]


def attributes(conversation) -> dict[str, str]:
    return {a["name"]: a["value"] for a in conversation.customer_attributes}


def test_the_messenger_customers_name_shows_in_ece(stack: Stack) -> None:
    stack.providers.store.set_profile("messenger", ASSET, PSID, first_name="Dana", last_name="Okafor")

    stack.customer.send_text(ASSET, PSID, "Hello, where is my parcel?")
    conversation = stack.wait_conversation()

    assert conversation.subject == "messenger chat with Dana Okafor"
    customer = attributes(conversation)
    assert (customer["profile_name"], customer["first_name"], customer["last_name"]) == (
        "Dana Okafor",
        "Dana",
        "Okafor",
    )
    assert customer["psid"] == PSID
    assert customer["profile_pic"].endswith(f"/graph/profile-pic/{PSID}")
    assert "locale" not in customer, "the e2e Page does not ask for locale (profile_locale is off)"
    assert [r.content for r in stack.wait_received(conversation, 1)] == ["Hello, where is my parcel?"]
    stack.wait_text("messenger", "Thank you for contacting us")


def test_a_graph_outage_does_not_keep_the_message_from_the_agent(stack: Stack) -> None:
    stack.providers.store.set_profile("messenger", ASSET, PSID, first_name="Dana", last_name="Okafor")
    stack.providers.set_down("messenger")  # the profile read answers 503 (and so do sends)

    stack.customer.send_text(ASSET, PSID, "Is anyone there?")
    conversation = stack.wait_conversation()

    assert [r.content for r in stack.wait_received(conversation, 1)] == ["Is anyone there?"]
    assert conversation.subject == f"messenger chat with {PSID}", "started without the profile"
    assert "profile_name" not in attributes(conversation)
    cached = keys.customer_profile(thread_id_for("messenger", ASSET, PSID))
    assert 0 < stack.runtime.redis.ttl(cached) <= NO_PROFILE_TTL_SECONDS, "the outage is remembered briefly"
    stack.providers.set_down("messenger", down=False)
    stack.wait_text("messenger", "Thank you for contacting us")  # the welcome's send was retried
