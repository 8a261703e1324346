"""In-app webhooks (our own contract: docs/protocols/channels.md, "In-app: inbound body",
"In-app: signature"), one test per fixture in tests/fixtures/inapp/."""

from __future__ import annotations

import json

from connector.channels.base import Attachment, EventKind, InboundEvent

from .signing import fixture_bytes, fixture_json, signed_inapp

URL = "/webhooks/inapp/test-inapp"
ASSET = "test-inapp"
CUSTOMER = "user-48213"


def post(client, name: str) -> None:
    response = client.post(URL, **signed_inapp(fixture_bytes("inapp", name)))
    assert response.status_code == 200, response.get_json()


def event(**fields) -> InboundEvent:
    fields.setdefault("details", {"user_id": CUSTOMER, "conversation_id": "conv-20260101-8841"})
    return InboundEvent(channel="inapp", asset=ASSET, customer=CUSTOMER, **fields)


def test_text(client, inbox):
    post(client, "text.json")
    assert inbox("inapp", ASSET, CUSTOMER) == [
        event(
            kind=EventKind.MESSAGE,
            provider_id="b8f4c2d6-1e3a-4c5b-9d7e-0f1a2b3c4d5e",
            timestamp=1767259812.345,  # 2026-01-01T09:30:12.345Z
            text="My card was charged twice for order 7731.",
            details={
                "user_id": CUSTOMER,
                "name": "Priya Raman",
                "email": "priya.raman@example.org",
                "locale": "en_GB",
                "conversation_id": "conv-20260101-8841",
            },
        )
    ]


def test_attachment(client, inbox):
    post(client, "attachment.json")
    assert inbox("inapp", ASSET, CUSTOMER) == [
        event(
            kind=EventKind.MESSAGE,
            provider_id="c9a5d3e7-2f4b-4d6c-8e8f-1a2b3c4d5e6f",
            timestamp=1767259850.0,
            text="Bank statement attached",
            attachments=(
                Attachment(
                    url="https://uploads.example-app.com/u/48213/statement-dec.pdf",
                    mime_type="application/pdf",
                    size=184320,
                    name="statement-dec.pdf",
                ),
                Attachment(
                    url="https://uploads.example-app.com/u/48213/screenshot.png",
                    mime_type="image/png",
                    size=95211,
                    name="screenshot.png",
                ),
            ),
            details={"user_id": CUSTOMER, "name": "Priya Raman", "conversation_id": "conv-20260101-8841"},
        )
    ]


def test_typing_start(client, inbox):
    post(client, "typing_start.json")
    assert inbox("inapp", ASSET, CUSTOMER) == [
        event(
            kind=EventKind.TYPING_START,
            provider_id="d0b6e4f8-3a5c-4e7d-9f90-2b3c4d5e6f70",
            timestamp=1767259860.0,  # 2026-01-01T09:31:00+00:00
        )
    ]


def test_typing_stop(client, inbox):
    post(client, "typing_stop.json")
    assert inbox("inapp", ASSET, CUSTOMER) == [
        event(
            kind=EventKind.TYPING_END,
            provider_id="e1c7f5a9-4b6d-4f8e-a0a1-3c4d5e6f7081",
            timestamp=1767259864.0,  # 2026-01-01T10:31:04+01:00 is 09:31:04Z
        )
    ]


def test_close(client, inbox):
    post(client, "close.json")
    assert inbox("inapp", ASSET, CUSTOMER) == [
        event(
            kind=EventKind.CLOSE,
            provider_id="f2d8a6b0-5c7e-4a9f-b1b2-4d5e6f708192",
            timestamp=1767259990.5,
            details={"user_id": CUSTOMER, "locale": "en_GB", "conversation_id": "conv-20260101-8841"},
        )
    ]


def test_numeric_customer_id(client, inbox):
    # Apps often have numeric user ids; the address is their decimal text.
    body = fixture_json("inapp", "text.json") | {"customer": {"id": 48213}}
    response = client.post(URL, **signed_inapp(json.dumps(body).encode()))
    assert response.status_code == 200
    [stored] = inbox("inapp", ASSET, "48213")
    assert stored.details["user_id"] == "48213"
