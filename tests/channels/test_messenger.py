"""Messenger webhooks, one test per fixture in tests/fixtures/messenger/."""

from __future__ import annotations

import hashlib

from connector.channels.base import Attachment, EventKind, InboundEvent

from .signing import fixture_bytes, signed_meta

URL = "/webhooks/messenger/test-messenger"
ASSET = "test-messenger"
ALICE = "6781234567890123"
BOB = "7012345678901234"


def post(client, name: str) -> None:
    response = client.post(URL, **signed_meta(ASSET, fixture_bytes("messenger", name)))
    assert response.status_code == 200, response.get_json()


def event(customer: str, **fields) -> InboundEvent:
    fields.setdefault("details", {"psid": customer})
    return InboundEvent(channel="messenger", asset=ASSET, customer=customer, **fields)


def test_text(client, inbox):
    post(client, "text.json")
    assert inbox("messenger", ASSET, ALICE) == [
        event(
            ALICE,
            kind=EventKind.MESSAGE,
            provider_id="m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P",
            timestamp=1767261000.312,
            # Raw UTF-8 bytes are signed; a re-serialised body would not verify.
            text="Bonjour ! J'ai reçu une facture à 129,90 € au lieu de 99 € — pouvez-vous vérifier ? 😊",
        )
    ]


def test_attachment(client, inbox):
    post(client, "attachment.json")
    assert inbox("messenger", ASSET, ALICE) == [
        event(
            ALICE,
            kind=EventKind.MESSAGE,
            provider_id="m_Bq1yk4pWvAp0y3zY9RdnuH8E8b8vFQkZm2C1x5T0aJr7dQmS4eLcNn6oXh9KgUf2tYwPiVsAzMlBeRjTnOqG1w",
            timestamp=1767261100.731,
            attachments=(
                Attachment(
                    mime_type="image/*",
                    url="https://scontent.xx.fbcdn.net/v/t1.15752-9/471234567_1122334455667788_1234567890123456789_n.jpg"
                    "?_nc_cat=101&ccb=1-7&_nc_sid=fc17b8&oh=03_Q7cD1QF&oe=67A1B2C3",
                    extra={"type": "image"},
                ),
                Attachment(
                    mime_type="application/octet-stream",
                    url="https://cdn.fbsbx.com/v/t59.2708-21/471234999_receipt.pdf/receipt.pdf"
                    "?_nc_cat=104&ccb=1-7&oh=03_Q7cD1QF&oe=67A1B2C3&dl=1",
                    extra={"type": "file"},
                ),
            ),
        )
    ]


def test_sticker(client, inbox):
    post(client, "sticker.json")
    [stored] = inbox("messenger", ASSET, ALICE)
    assert stored.kind is EventKind.MESSAGE
    assert stored.text is None
    [sticker] = stored.attachments
    assert sticker.mime_type == "image/*"
    assert sticker.extra == {"type": "sticker", "sticker_id": 369239263222822}


def test_batch(client, inbox, stored):
    post(client, "batch.json")
    # Every entry and every messaging[] / standby[] item; the echo of the page's own reply is dropped.
    assert [(e.kind, e.provider_id, e.timestamp) for e in inbox("messenger", ASSET, ALICE)] == [
        (EventKind.RECEIPT, f"{ALICE}:delivered:1767261199000", 1767261200.5),
        (EventKind.MESSAGE, "m_batch_customer_a_first_0001", 1767261201.0),
    ]
    bob = inbox("messenger", ASSET, BOB)
    assert [(e.text, e.details) for e in bob] == [
        ("I would like to cancel my subscription", {"psid": BOB}),
        ("Account number 99812", {"psid": BOB, "standby": True}),
    ]
    assert len(stored()) == 4


def test_delivery(client, inbox):
    post(client, "delivery.json")
    assert inbox("messenger", ASSET, ALICE) == [
        event(
            ALICE,
            kind=EventKind.RECEIPT,
            provider_id=f"{ALICE}:delivered:1767261299000",
            timestamp=1767261300.111,
            status="delivered",
            refers_to=("m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_agent_reply_1", "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_agent_reply_2"),
        )
    ]


def test_read(client, inbox):
    post(client, "read.json")
    assert inbox("messenger", ASSET, ALICE) == [
        event(
            ALICE,
            kind=EventKind.RECEIPT,
            provider_id=f"{ALICE}:read:1767261355000",
            timestamp=1767261360.05,
            status="read",
        )
    ]


def test_postback(client, inbox):
    post(client, "postback.json")
    assert inbox("messenger", ASSET, ALICE) == [
        event(
            ALICE,
            kind=EventKind.POSTBACK,
            provider_id="m_PbK3nV7xYz1Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz0Xc2Vb4Nm6Qa8Ws0Ed2Rf4Tg6",
            timestamp=1767261400.123,
            text="Get Started",
            payload="GET_STARTED",
            details={
                "psid": ALICE,
                "referral": {"ref": "spring-campaign", "source": "SHORTLINK", "type": "OPEN_THREAD"},
            },
        )
    ]


def test_postback_standby(client, inbox):
    post(client, "postback_standby.json")
    # No mid and no payload (standby): the id is derived from sender, timestamp and payload, so a
    # redelivery of the same postback gets the same id.
    digest = hashlib.sha256(f"{BOB}\x1f1767261450123\x1f".encode()).hexdigest()[:32]
    assert inbox("messenger", ASSET, BOB) == [
        event(
            BOB,
            kind=EventKind.POSTBACK,
            provider_id=f"postback:{digest}",
            timestamp=1767261450.123,
            text="Talk to a person",
            details={"psid": BOB, "standby": True},
        )
    ]
    post(client, "postback_standby.json")
    assert len(inbox("messenger", ASSET, BOB)) == 1


def test_quick_reply(client, inbox):
    post(client, "quick_reply.json")
    assert inbox("messenger", ASSET, ALICE) == [
        event(
            ALICE,
            kind=EventKind.POSTBACK,
            provider_id="m_QrX1cV3bN5mQ7wE9rT1yU3iO5pA7sD9fG1hJ3kL5zX7cV9bN1mQ3wE5rT7yU9iO1pA3",
            timestamp=1767261500.654,
            text="Billing question",
            payload="TOPIC_BILLING",
        )
    ]


def test_echo(client, stored):
    post(client, "echo.json")
    assert stored() == []


def test_reaction(client, stored):
    # Not a chat event: acknowledged with 200 so Meta does not retry it, and nothing is stored.
    post(client, "reaction.json")
    assert stored() == []
