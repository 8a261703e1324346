"""Twilio SMS / MMS sends and customer media downloads, as docs/protocols/channels.md describes the
Messages API ("Twilio: sending", "Twilio: errors", "Inbound media")."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl

import pytest
import responses

from connector.channels.base import Attachment
from connector.channels.sending import (
    OutboundClose,
    OutboundFile,
    OutboundText,
    OutboundTyping,
    Recipient,
    SendResult,
)
from connector.channels.sms import Sms
from connector.errors import PermanentError, RetryableError

from .senders import channel

pytestmark = pytest.mark.usefixtures("fake_dns")  # names resolve without the network

SID = "ACtest00000000000000000000000000"
TOKEN = "twilio-test-token"
SEND_URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
MEDIA_URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages/MM1/Media/ME1"
CUSTOMER = Recipient("+14155550123", last_inbound_at=1_000.0)
MESSAGE_SID = "SM" + "a" * 32


def sms(*, sandbox: bool = False, **options) -> Sms:
    return channel(Sms, "test-sms", sandbox=sandbox, **options)


def basic(user: str = SID, password: str = TOKEN) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def form(call) -> list[tuple[str, str]]:
    return parse_qsl(call.request.body)


def created(**fields) -> dict:
    return {"sid": MESSAGE_SID, "status": "queued", "to": CUSTOMER.address, "from": "+15550001111", **fields}


@responses.activate
def test_text_is_posted_as_a_form_with_basic_auth():
    responses.post(SEND_URL, json=created(body="Hello"), status=201)
    result = sms().send(CUSTOMER, OutboundText("Hello"), key="k1", now=2_000.0)
    assert result == SendResult(MESSAGE_SID)
    [call] = responses.calls
    assert call.request.headers["Authorization"] == basic()
    assert form(call) == [("To", "+14155550123"), ("From", "+15550001111"), ("Body", "Hello")]


@responses.activate
def test_messaging_service_replaces_from():
    responses.post(SEND_URL, json=created(), status=201)
    sms(messaging_service_sid="MG123").send(CUSTOMER, OutboundText("Hi"), key="k1")
    assert form(responses.calls[0]) == [("To", "+14155550123"), ("MessagingServiceSid", "MG123"), ("Body", "Hi")]


@responses.activate
def test_text_over_1600_characters_is_refused_not_split():
    with pytest.raises(ValueError, match="1601 characters exceeds sms's max_text of 1600"):
        sms().send(CUSTOMER, OutboundText("x" * 1601), key="k1")
    assert len(responses.calls) == 0


@responses.activate
def test_text_of_exactly_1600_characters_is_sent():
    responses.post(SEND_URL, json=created(), status=201)
    sms().send(CUSTOMER, OutboundText("é" * 1600), key="k1")
    assert form(responses.calls[0])[-1] == ("Body", "é" * 1600)


@responses.activate
def test_no_window_even_weeks_after_the_last_message():
    responses.post(SEND_URL, json=created(), status=201)
    channel = sms()
    assert channel.window_open(CUSTOMER, now=1_000.0 + 30 * 86400)
    assert channel.send(CUSTOMER, OutboundText("Still here"), key="k1", now=1_000.0 + 30 * 86400).sent


@pytest.mark.parametrize("message", [OutboundTyping(True), OutboundTyping(False), OutboundClose()])
@responses.activate
def test_typing_and_close_send_nothing(message):
    assert sms().send(CUSTOMER, message, key="k1") == SendResult(None, sent=False)
    assert len(responses.calls) == 0


@responses.activate
def test_image_goes_as_mms_with_the_caption_as_body():
    responses.post(SEND_URL, json=created(), status=201)
    file = OutboundFile("https://ece.example.com/files/1/map.png", "map.png", "image/png", 2048, caption="Our shop")
    assert sms().send(CUSTOMER, file, key="k1") == SendResult(MESSAGE_SID)
    assert form(responses.calls[0]) == [
        ("To", "+14155550123"),
        ("From", "+15550001111"),
        ("MediaUrl", "https://ece.example.com/files/1/map.png"),
        ("Body", "Our shop"),
    ]


@responses.activate
def test_other_files_go_as_a_link():
    responses.post(SEND_URL, json=created(), status=201)
    file = OutboundFile("https://ece.example.com/files/2/terms.pdf", "terms.pdf", "application/pdf", caption="Terms")
    sms().send(CUSTOMER, file, key="k1")
    assert form(responses.calls[0])[-1] == ("Body", "Terms\nterms.pdf: https://ece.example.com/files/2/terms.pdf")


@responses.activate
def test_image_over_5_mb_goes_as_a_link():
    responses.post(SEND_URL, json=created(), status=201)
    file = OutboundFile("https://ece.example.com/files/3/big.jpg", "big.jpg", "image/jpeg", 5 * 1024 * 1024 + 1)
    sms().send(CUSTOMER, file, key="k1")
    assert form(responses.calls[0])[-1] == ("Body", "big.jpg: https://ece.example.com/files/3/big.jpg")


# -- the customer's MMS media ----------------------------------------------------------------------


@responses.activate
def test_media_is_fetched_with_basic_auth_through_the_cdn_redirect():
    cdn = "https://s3-external-1.twiliocdn.com/ACtest/abc123"
    responses.get(MEDIA_URL, status=302, headers={"Location": cdn})
    responses.get(cdn, body=b"\xff\xd8photo", content_type="image/jpeg")
    fetched = sms().fetch_attachment(Attachment(mime_type="image/jpeg", url=MEDIA_URL), CUSTOMER)
    assert (fetched.name, fetched.mime_type, fetched.data) == ("attachment.jpg", "image/jpeg", b"\xff\xd8photo")
    assert responses.calls[0].request.headers["Authorization"] == basic()
    assert "Authorization" not in responses.calls[1].request.headers


@responses.activate
def test_media_type_from_the_answer_when_not_declared():
    responses.get(MEDIA_URL, body=b"GIF89a", content_type="image/gif")
    assert sms().fetch_attachment(Attachment(url=MEDIA_URL), CUSTOMER).mime_type == "image/gif"


@responses.activate
def test_media_type_refused_before_downloading():
    with pytest.raises(PermanentError, match="sms does not accept model/gltf-binary files"):
        sms().fetch_attachment(Attachment(mime_type="model/gltf-binary", url=MEDIA_URL), CUSTOMER)
    assert len(responses.calls) == 0


@responses.activate
def test_media_type_refused_after_downloading():
    responses.get(MEDIA_URL, body=b"glTF", content_type="model/gltf-binary")
    with pytest.raises(PermanentError, match="does not accept model/gltf-binary"):
        sms().fetch_attachment(Attachment(url=MEDIA_URL), CUSTOMER)


@responses.activate
def test_media_over_5_mb_is_refused_while_streaming():
    responses.get(MEDIA_URL, body=b"x" * (5 * 1024 * 1024 + 1), content_type="video/mp4")
    with pytest.raises(PermanentError, match="over the 5 MB limit"):
        sms().fetch_attachment(Attachment(mime_type="video/mp4", url=MEDIA_URL), CUSTOMER)


@responses.activate
def test_media_declared_over_5_mb_is_not_downloaded():
    with pytest.raises(PermanentError, match="over sms's 5 MB limit"):
        sms().fetch_attachment(Attachment(mime_type="video/mp4", url=MEDIA_URL, size=6 * 1024 * 1024), CUSTOMER)
    assert len(responses.calls) == 0


@responses.activate
def test_media_on_another_host_is_refused():
    with pytest.raises(PermanentError, match=r"evil\.example: not one of this channel's media hosts"):
        sms().fetch_attachment(Attachment(url="https://evil.example/steal", mime_type="image/png"), CUSTOMER)
    assert len(responses.calls) == 0


SANDBOX_BASE = "http://127.0.0.1:8100/twilio"
SANDBOX_MEDIA = f"{SANDBOX_BASE}/2010-04-01/Accounts/{SID}/Messages/MM1/Media/ME1"


@responses.activate
def test_media_on_a_private_address_is_refused_outside_the_sandbox():
    with pytest.raises(PermanentError, match=r"non-public address 127\.0\.0\.1"):
        sms(api_base_url=SANDBOX_BASE).fetch_attachment(Attachment(url=SANDBOX_MEDIA), CUSTOMER)
    assert len(responses.calls) == 0


@responses.activate
def test_media_on_a_private_address_is_fetched_in_the_sandbox():
    responses.get(SANDBOX_MEDIA, body=b"png", content_type="image/png")
    fetched = sms(api_base_url=SANDBOX_BASE, sandbox=True).fetch_attachment(Attachment(url=SANDBOX_MEDIA), CUSTOMER)
    assert fetched.data == b"png"
    assert responses.calls[0].request.headers["Authorization"] == basic()


@pytest.mark.parametrize(("status", "error"), [(503, RetryableError), (404, PermanentError)])
@responses.activate
def test_media_download_failures(status, error):
    responses.get(MEDIA_URL, status=status)
    with pytest.raises(error):
        sms().fetch_attachment(Attachment(url=MEDIA_URL), CUSTOMER)
