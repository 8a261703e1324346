"""Apple Messages for Business webhooks, one test per fixture in tests/fixtures/apple/.

A fixture holds the headers Apple sends and the JSON body; the helper gzips the body and adds the
bearer JWT, as Apple does.
"""

from __future__ import annotations

import time
from dataclasses import replace

from connector.channels.base import Attachment, EventKind, InboundEvent

from .signing import apple_fixture

URL = "/webhooks/apple/test-apple"
ASSET = "test-apple"
CUSTOMER = "urn:mbid:AQAAY5nH0LcN1ixBs0OQ8dEb9lEr4tB4Tj1xJ3mQ0cD+7xWpFr2JhE/q0pNk3aP6mT3iKmLa"
# iOS types a typographic apostrophe (U+2019).
TEXT = "Hi, my AirPods order hasn\u2019t shipped yet. Can you check?"
CAPABILITIES = ["QUICK", "LIST", "TIME", "AUTH", "AUTH2", "FORM"]


def post(client, name: str, **options) -> tuple[float, float]:
    """Post a fixture; returns the call's time window (Apple's message carries no timestamp)."""
    before = time.time()
    response = client.post(URL, **apple_fixture(name, **options))
    after = time.time()
    assert response.status_code == 200, response.get_json()
    return before, after


def only_event(inbox, window: tuple[float, float]) -> InboundEvent:
    [stored] = inbox("apple", ASSET, CUSTOMER)
    assert window[0] <= stored.timestamp <= window[1]
    return replace(stored, timestamp=0.0)


def event(**fields) -> InboundEvent:
    return InboundEvent(channel="apple", asset=ASSET, customer=CUSTOMER, timestamp=0.0, **fields)


def test_text(client, inbox):
    window = post(client, "text.json")
    assert only_event(inbox, window) == event(
        kind=EventKind.MESSAGE,
        provider_id="0a7c5a3e-4b1f-4d2e-9c8a-1f2e3d4c5b6a",
        text=TEXT,
        details={
            "opaque_id": CUSTOMER,
            "locale": "en_US",
            "intent": "order-status",
            "group": "retail-support",
            "capabilities": CAPABILITIES,
            "device_agent": "iPhone OS",
        },
    )


def test_text_uncompressed(client, inbox):
    # Apple usually gzips, but a plain JSON body is the same message.
    window = post(client, "text.json", compress=False)
    assert only_event(inbox, window).text == TEXT


def test_attachment(client, inbox):
    window = post(client, "attachment.json")
    assert only_event(inbox, window) == event(
        kind=EventKind.MESSAGE,
        provider_id="5e3d2c1b-0a9f-4e8d-b7c6-a5f4e3d2c1b0",
        # U+FFFC marks where the attachment sat in the bubble; it is not text.
        text="This is the receipt",
        attachments=(
            Attachment(
                mime_type="image/jpeg",
                url="https://p57-content.icloud.com/M7A4C3E9B2D1F0A8E6C5B4A3928170F6E5D4C3B2A/1a2b3c4d5e6f.C01USN00",
                name="IMG_0042.jpeg",
                size=2210424,
                extra={
                    "key": "00a9f3c1e5d7b2a4f6e8c0d2b4a6f8e0c2d4b6a8f0e2c4d6b8a0f2e4c6d8b0a2f4",
                    "owner": "com.apple.message.attachments.p57",
                    "signature": "AU8L1dCqZbjgBZ6VvXq2Ha0xWxtl9Z7i3P1kVhJNnN1R",
                },
            ),
        ),
        details={"opaque_id": CUSTOMER, "locale": "en_US", "capabilities": CAPABILITIES, "device_agent": "iPhone OS"},
    )


def test_typing_start(client, inbox):
    window = post(client, "typing_start.json")
    assert only_event(inbox, window) == event(
        kind=EventKind.TYPING_START,
        provider_id="9b8a7f6e-5d4c-4b3a-8f1e-0d9c8b7a6f5e",
        details={"opaque_id": CUSTOMER, "locale": "en_US", "device_agent": "iPhone OS"},
    )


def test_typing_end(client, inbox):
    window = post(client, "typing_end.json")
    assert only_event(inbox, window) == event(
        kind=EventKind.TYPING_END,
        provider_id="1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
        details={"opaque_id": CUSTOMER},
    )


def test_close(client, inbox):
    window = post(client, "close.json")
    assert only_event(inbox, window) == event(
        kind=EventKind.CLOSE,
        provider_id="7f6e5d4c-3b2a-4918-b7a6-f5e4d3c2b1a0",
        details={"opaque_id": CUSTOMER, "locale": "en_US", "device_agent": "Mac OS X"},
    )


def test_interactive(client, inbox):
    window = post(client, "interactive.json")
    stored = only_event(inbox, window)
    assert (stored.kind, stored.provider_id, stored.text) == (
        EventKind.POSTBACK,
        "3a4b5c6d-7e8f-4a0b-9c2d-3e4f5a6b7c8d",
        "Selected: Return an item",
    )
    # The reply's data travels as JSON text, for the rules and the agent to read.
    assert '"identifier":"return"' in stored.payload
    assert stored.payload.startswith('{"interactiveData":{"bid":"com.apple.messages.MSMessageExtensionBalloonPlugin')
    assert stored.details == {
        "opaque_id": CUSTOMER,
        "locale": "en_US",
        "capabilities": ["QUICK", "LIST", "TIME"],
        "device_agent": "iPhone OS",
    }
