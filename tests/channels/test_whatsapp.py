"""WhatsApp Cloud API webhooks, one test per fixture in tests/fixtures/whatsapp/."""

from __future__ import annotations

from connector.channels.base import Attachment, EventKind, InboundEvent

from .signing import fixture_bytes, signed_meta

URL = "/webhooks/whatsapp/test-whatsapp"
ASSET = "test-whatsapp"


def post(client, name: str) -> None:
    response = client.post(URL, **signed_meta(ASSET, fixture_bytes("whatsapp", name)))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "ok"}


def event(customer: str, **fields) -> InboundEvent:
    return InboundEvent(channel="whatsapp", asset=ASSET, customer=customer, **fields)


def test_text(client, inbox):
    post(client, "text.json")
    assert inbox("whatsapp", ASSET, "5511987654321") == [
        event(
            "5511987654321",
            kind=EventKind.MESSAGE,
            provider_id="wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMDRBNjU5OUFFRTAzODEwMTQ0AA==",
            timestamp=1767260700.0,
            # Meta sends non-ASCII as \u escapes and signs those bytes.
            text="Olá! O meu pedido nº 4521 não chegou — podem ajudar? 🙏",
            details={"wa_id": "5511987654321", "profile_name": "João Conceição", "bsuid": "BR.1349873464623817"},
        )
    ]


def test_media_image(client, inbox):
    post(client, "media_image.json")
    assert inbox("whatsapp", ASSET, "16315551181") == [
        event(
            "16315551181",
            kind=EventKind.MESSAGE,
            provider_id="wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQUI1QTg0QzQxQjFGQjY3NzE4QQA=",
            timestamp=1767260820.0,
            text="The box arrived damaged",
            attachments=(
                Attachment(
                    media_id="1003383421387256",
                    mime_type="image/jpeg",
                    caption="The box arrived damaged",
                    extra={"sha256": "HgnRXPpqzx8spbUbHUhgsadBnrsMivWMq36GdOHb8Y0=", "voice": False},
                ),
            ),
            details={"wa_id": "16315551181", "profile_name": "Kerry Fisher"},
        )
    ]


def test_document(client, inbox):
    post(client, "document.json")
    [stored] = inbox("whatsapp", ASSET, "16315551181")
    assert stored.kind is EventKind.MESSAGE
    assert stored.text is None
    assert stored.attachments == (
        Attachment(
            media_id="2154823716009173",
            mime_type="application/pdf",
            name="invoice-2026-0412.pdf",
            extra={"sha256": "d2Vla2x5LWludm9pY2Utc2hhMjU2LWJhc2U2NC12YWw=", "voice": False},
        ),
    )


def test_batch(client, inbox, stored):
    post(client, "batch.json")
    kerry = inbox("whatsapp", ASSET, "16315551181")
    amal = inbox("whatsapp", ASSET, "971501234567")
    # Each customer's thread holds their events in provider-time order, whatever the batch order.
    assert [(e.kind, e.timestamp, e.text) for e in kerry] == [
        (EventKind.MESSAGE, 1767261000.0, "Hi, I need to change my delivery address"),
        (EventKind.MESSAGE, 1767261005.0, "It is 42 Elm Street, apartment 3"),
    ]
    assert [(e.kind, e.timestamp, e.text, e.status) for e in amal] == [
        (EventKind.RECEIPT, 1767261001.0, None, "delivered"),
        (EventKind.MESSAGE, 1767261002.0, "Is the store open on Friday?", None),
    ]
    assert amal[1].details == {"wa_id": "971501234567", "profile_name": "Amal Haddad"}
    assert amal[0].provider_id == "wamid.HBgMOTcxNTAxMjM0NTY3FQIAERgSQjU5RkEzQzE0ODY3NTVDNjY1AA==:delivered"
    # The template-status change in the same batch is not a chat event.
    assert len(stored()) == 4


def test_status_read(client, inbox):
    post(client, "status_read.json")
    wamid = "wamid.HBgLMTYzMTU1NTExODEVAgARGBI4QjVGQTZDRTY0NTQ2QzFCRDQA"
    assert inbox("whatsapp", ASSET, "16315551181") == [
        event(
            "16315551181",
            kind=EventKind.RECEIPT,
            provider_id=f"{wamid}:read",
            timestamp=1767261300.0,
            status="read",
            refers_to=(wamid,),
        )
    ]


def test_status_failed(client, inbox):
    post(client, "status_failed.json")
    [receipt] = inbox("whatsapp", ASSET, "16315551181")
    assert receipt.kind is EventKind.RECEIPT
    assert receipt.status == "failed"
    assert receipt.details == {"error": "131047: Re-engagement message"}


def test_interactive_button(client, inbox):
    post(client, "interactive_button.json")
    assert inbox("whatsapp", ASSET, "16315551181") == [
        event(
            "16315551181",
            kind=EventKind.POSTBACK,
            provider_id="wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQUE0OEQ3QkM5MTJCMDE4RTk3OQA=",
            timestamp=1767261400.0,
            text="Talk to an agent",
            payload="talk_to_agent",
            details={"wa_id": "16315551181", "profile_name": "Kerry Fisher"},
        )
    ]


def test_interactive_list(client, inbox):
    post(client, "interactive_list.json")
    [stored] = inbox("whatsapp", ASSET, "16315551181")
    assert (stored.kind, stored.payload, stored.text) == (EventKind.POSTBACK, "topic_billing", "Billing")


def test_button_template(client, inbox):
    post(client, "button_template.json")
    [stored] = inbox("whatsapp", ASSET, "16315551181")
    assert (stored.kind, stored.payload, stored.text) == (EventKind.POSTBACK, "RESCHEDULE_DELIVERY", "Reschedule")


def test_location(client, inbox):
    post(client, "location.json")
    [stored] = inbox("whatsapp", ASSET, "16315551181")
    assert stored.kind is EventKind.MESSAGE
    assert stored.text == "Empire State Building 20 W 34th St, New York, NY 10001"


def test_unsupported(client, inbox):
    post(client, "unsupported.json")
    [stored] = inbox("whatsapp", ASSET, "16315551181")
    assert stored.kind is EventKind.MESSAGE
    assert stored.text == "[unsupported WhatsApp message type: unsupported]"
