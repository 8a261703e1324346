"""In-app delivery (our contract: docs/protocols/channels.md, "In-app: outbound body"): signed JSON
POSTs to the asset's delivery_url, and customer files fetched from the app's own hosts. Signatures
are recomputed here with `hmac`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import responses

from connector.channels.base import Attachment
from connector.channels.inapp import InApp
from connector.channels.sending import (
    OutboundClose,
    OutboundFile,
    OutboundText,
    OutboundTyping,
    Recipient,
    SendResult,
)
from connector.errors import PermanentError
from connector.settings import Settings

from .senders import CONFIG, channel

pytestmark = pytest.mark.usefixtures("fake_dns")  # names resolve without the network

DELIVERY_URL = "http://127.0.0.1:9/inapp"
SECRET = b"inapp-test-secret-0123456789"
CUSTOMER = Recipient("user-2580", last_inbound_at=1.0)
NOW = 1_790_000_000.25
SENT_AT = "2026-09-21T14:13:20.250Z"


def inapp(*, sandbox: bool = False, **options) -> InApp:
    return channel(InApp, "test-inapp", sandbox=sandbox, **options)


def delivered(n: int = 0) -> dict:
    """The n-th delivery's body, after checking its signature the way the app does."""
    request = responses.calls[n].request
    raw = request.body if isinstance(request.body, bytes) else request.body.encode()
    stamp = request.headers["X-Timestamp"]
    assert abs(int(stamp) - time.time()) < 60
    expected = "sha256=" + hmac.new(SECRET, stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Signature"], expected)
    assert request.headers["Content-Type"] == "application/json"
    return json.loads(raw)


@responses.activate
def test_text_is_delivered_signed_with_the_key_as_message_id():
    responses.post(DELIVERY_URL, status=202)
    assert inapp().send(CUSTOMER, OutboundText("Hello ✓"), key="relay:c1:m1", now=NOW) == SendResult("relay:c1:m1")
    assert delivered() == {
        "message_id": "relay:c1:m1",
        "customer_id": "user-2580",
        "type": "text",
        "text": "Hello ✓",
        "sent_at": SENT_AT,
    }


@responses.activate
def test_system_message():
    responses.post(DELIVERY_URL, status=200)
    inapp().send(CUSTOMER, OutboundText("You are now chatting with Ana", system=True), key="k1", now=NOW)
    assert delivered()["type"] == "system"


@responses.activate
def test_no_text_limit_and_no_window():
    responses.post(DELIVERY_URL, status=200)
    text = "word " * 5000
    assert inapp().send(CUSTOMER, OutboundText(text), key="k1", now=NOW).sent
    assert delivered()["text"] == text


@pytest.mark.parametrize(
    ("message", "kind"),
    [(OutboundTyping(True), "typing_start"), (OutboundTyping(False), "typing_stop"), (OutboundClose(), "close")],
)
@responses.activate
def test_typing_and_close(message, kind):
    responses.post(DELIVERY_URL, status=200)
    assert inapp().send(CUSTOMER, message, key="k1", now=NOW).sent
    assert delivered() == {"message_id": "k1", "customer_id": "user-2580", "type": kind, "sent_at": SENT_AT}


@responses.activate
def test_file_goes_as_an_attachment_with_its_caption():
    responses.post(DELIVERY_URL, status=200)
    file = OutboundFile("https://ece.example.com/f/7/receipt.pdf", "receipt.pdf", "application/pdf", 1234, "Receipt")
    inapp().send(CUSTOMER, file, key="k1", now=NOW)
    assert delivered() == {
        "message_id": "k1",
        "customer_id": "user-2580",
        "type": "attachment",
        "text": "Receipt",
        "attachments": [
            {
                "url": "https://ece.example.com/f/7/receipt.pdf",
                "mime_type": "application/pdf",
                "size": 1234,
                "name": "receipt.pdf",
            }
        ],
        "sent_at": SENT_AT,
    }


# -- the customer's files --------------------------------------------------------------------------

APP_FILE = "https://files.app.example/u/2580/photo.png"


@responses.activate
def test_file_from_a_configured_media_host_without_credentials():
    responses.get(APP_FILE, body=b"png", content_type="image/png")
    fetched = inapp(media_hosts=["files.app.example"]).fetch_attachment(
        Attachment(url=APP_FILE, mime_type="image/png", name="photo.png"), CUSTOMER
    )
    assert (fetched.name, fetched.mime_type, fetched.data) == ("photo.png", "image/png", b"png")
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_without_media_hosts_only_the_delivery_url_host_is_allowed():
    with pytest.raises(PermanentError, match="not one of this channel's media hosts"):
        inapp().fetch_attachment(Attachment(url=APP_FILE, mime_type="image/png"), CUSTOMER)
    assert len(responses.calls) == 0


@responses.activate
def test_delivery_url_host_is_private_so_only_the_sandbox_fetches_from_it():
    url = "http://127.0.0.1:9/files/photo.png"
    responses.get(url, body=b"png", content_type="image/png")
    with pytest.raises(PermanentError, match=r"non-public address 127\.0\.0\.1"):
        inapp().fetch_attachment(Attachment(url=url, mime_type="image/png"), CUSTOMER)
    assert inapp(sandbox=True).fetch_attachment(Attachment(url=url, mime_type="image/png"), CUSTOMER).data == b"png"


@responses.activate
def test_media_host_resolving_to_a_private_address_is_refused():
    url = "https://files.internal.test/photo.png"
    with pytest.raises(PermanentError, match=r"non-public address 10\.1\.2\.3"):
        inapp(media_hosts=["*.internal.test"]).fetch_attachment(Attachment(url=url, mime_type="image/png"), CUSTOMER)
    assert len(responses.calls) == 0


def test_attachment_cap_defaults_to_25_mb_and_is_configurable():
    assert inapp().max_attachment_bytes == 25 * 1024 * 1024
    assert inapp(max_attachment_bytes=1000).max_attachment_bytes == 1000
    assert InApp.max_attachment_bytes == 25 * 1024 * 1024  # the class default is untouched


@responses.activate
def test_configured_cap_is_enforced():
    responses.get(APP_FILE, body=b"x" * 1001, content_type="image/png")
    channel = inapp(media_hosts=["files.app.example"], max_attachment_bytes=1000)
    with pytest.raises(PermanentError, match="over the 1000-byte limit"):
        channel.fetch_attachment(Attachment(url=APP_FILE, mime_type="image/png"), CUSTOMER)
    with pytest.raises(PermanentError, match="1001 bytes, over inapp's 1000-byte limit"):
        channel.fetch_attachment(Attachment(url=APP_FILE, mime_type="image/png", size=1001), CUSTOMER)


@responses.activate
def test_type_refused():
    with pytest.raises(PermanentError, match="inapp does not accept font/woff2"):
        inapp(media_hosts=["files.app.example"]).fetch_attachment(
            Attachment(url=APP_FILE, mime_type="font/woff2"), CUSTOMER
        )
    assert len(responses.calls) == 0


@responses.activate
def test_operator_allowlist_adds_hosts():
    url = "https://cdn.partner.example/u/1/photo.png"
    responses.get(url, body=b"png", content_type="image/png")
    attachment = Attachment(url=url, mime_type="image/png")
    with pytest.raises(PermanentError, match="not one of this channel's media hosts"):
        inapp().fetch_attachment(attachment, CUSTOMER)
    asset = CONFIG.asset("inapp", "test-inapp")
    allowing = InApp(asset, Settings(media_allowlist=("*.partner.example",)))
    assert allowing.fetch_attachment(attachment, CUSTOMER).data == b"png"


@responses.activate
def test_file_of_unknown_size_has_no_size_field():
    responses.post(DELIVERY_URL, status=200)
    inapp().send(CUSTOMER, OutboundFile("https://ece.example.com/f/8/a.png", "a.png", "image/png"), key="k1", now=NOW)
    assert delivered()["attachments"] == [
        {"url": "https://ece.example.com/f/8/a.png", "mime_type": "image/png", "name": "a.png"}
    ]
    assert "text" not in delivered()
