"""Twilio SMS / MMS webhooks and status callbacks, one test per fixture in tests/fixtures/sms/."""

from __future__ import annotations

import time
from dataclasses import replace

from connector.channels.base import Attachment, EventKind, InboundEvent

from .signing import fixture_json, signed_sms

URL = "/webhooks/sms/test-sms"
STATUS_URL = "/webhooks/sms/test-sms/status"
ASSET = "test-sms"
MEDIA = "https://api.twilio.com/2010-04-01/Accounts/ACtest00000000000000000000000000/Messages/MM8b2c3d4e5f60718293a4b5c6d7e8f901/Media/"


def post(client, path: str, name: str, *, url: str | None = None) -> tuple[float, float]:
    """Post a fixture; returns the time window of the call (Twilio sends no timestamp)."""
    before = time.time()
    response = client.post(path, **signed_sms(path, fixture_json("sms", name), url=url))
    after = time.time()
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    return before, after


def received(event: InboundEvent, window: tuple[float, float]) -> InboundEvent:
    """The event with its receipt time checked against the call's window and then pinned."""
    assert window[0] <= event.timestamp <= window[1]
    return replace(event, timestamp=0.0)


def test_text(client, inbox):
    window = post(client, URL, "text.json")
    [stored] = inbox("sms", ASSET, "+14155550123")
    assert received(stored, window) == InboundEvent(
        channel="sms",
        asset=ASSET,
        customer="+14155550123",
        kind=EventKind.MESSAGE,
        provider_id="SM3a9f1c2b7d4e5f60718293a4b5c6d7e8",
        timestamp=0.0,
        text="SALES Hi, I'd like a quote for 20 seats",
        details={"number": "+14155550123", "country": "US", "state": "CA", "city": "SAN FRANCISCO", "zip": "94105"},
    )


def test_text_unicode(client, inbox):
    window = post(client, URL, "text_unicode.json")
    [stored] = inbox("sms", ASSET, "+525512345678")
    assert received(stored, window) == InboundEvent(
        channel="sms",
        asset=ASSET,
        customer="+525512345678",
        kind=EventKind.MESSAGE,
        provider_id="SM7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f",
        timestamp=0.0,
        text="¿Pueden llamarme mañana? Gracias 🙂 & adiós = 100%",
        details={"number": "+525512345678", "country": "MX"},
    )


def test_text_signed_with_default_port(client, inbox):
    # Twilio sometimes signs https://host:443/...; its validator accepts both forms, and so do we.
    post(client, URL, "text.json", url=f"https://connector.example.com:443{URL}")
    assert len(inbox("sms", ASSET, "+14155550123")) == 1


def test_text_with_query_string(client, inbox):
    # The raw query is part of the signed URL (connection overrides and custom params live there).
    path = f"{URL}?source=campaign%20A&x=1"
    response = client.post(path, **signed_sms(path, fixture_json("sms", "text.json")))
    assert response.status_code == 200
    assert len(inbox("sms", ASSET, "+14155550123")) == 1


def test_mms(client, inbox):
    window = post(client, URL, "mms.json")
    [stored] = inbox("sms", ASSET, "+12125550187")
    assert received(stored, window) == InboundEvent(
        channel="sms",
        asset=ASSET,
        customer="+12125550187",
        kind=EventKind.MESSAGE,
        provider_id="MM8b2c3d4e5f60718293a4b5c6d7e8f901",
        timestamp=0.0,
        text="Here are the photos of the damage",
        attachments=(
            Attachment(mime_type="image/jpeg", url=MEDIA + "ME1a2b3c4d5e6f708192a3b4c5d6e7f801"),
            Attachment(mime_type="video/mp4", url=MEDIA + "ME2b3c4d5e6f708192a3b4c5d6e7f8091a"),
        ),
        details={"number": "+12125550187", "country": "US", "state": "NY", "city": "NEW YORK", "zip": "10001"},
    )


def test_status_delivered(client, inbox):
    window = post(client, STATUS_URL, "status_delivered.json")
    # The customer of a status callback is the recipient (To) of the message we sent.
    [stored] = inbox("sms", ASSET, "+14155550123")
    assert received(stored, window) == InboundEvent(
        channel="sms",
        asset=ASSET,
        customer="+14155550123",
        kind=EventKind.RECEIPT,
        provider_id="SM9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a:delivered",
        timestamp=0.0,
        status="delivered",
        refers_to=("SM9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a",),
    )


def test_status_undelivered(client, inbox):
    post(client, STATUS_URL, "status_undelivered.json")
    [stored] = inbox("sms", ASSET, "+14155550123")
    assert (stored.kind, stored.status, stored.provider_id) == (
        EventKind.RECEIPT,
        "undelivered",
        "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9:undelivered",
    )
    assert stored.details == {"error_code": "30003"}
