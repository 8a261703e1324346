"""WhatsApp Cloud API sends: text, media by link, the read + typing indicator, the 24 h window,
Graph error codes, and customer media (id → URL → bytes, both with the bearer token)."""

from __future__ import annotations

import json

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
from connector.channels.whatsapp import WhatsApp
from connector.errors import PermanentError, RetryableError, WindowClosed

from .senders import channel, graph_error

pytestmark = pytest.mark.usefixtures("fake_dns")  # names resolve without the network

SEND_URL = "https://graph.facebook.com/v21.0/106540352242922/messages"
WA_ID = "14155550123"
LAST = 1_790_000_000.0
HOUR = 3600.0
LAST_WAMID = "wamid.HBgLMTQxNTU1NTAxMjMVAgASGBQzQUFCQ0RFRjAxMjM0NTY3ODkwAA=="
CUSTOMER = Recipient(WA_ID, last_inbound_at=LAST, last_message_id=LAST_WAMID)
WAMID = "wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3OEIA"
ACCEPTED = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": WA_ID, "wa_id": WA_ID}],
    "messages": [{"id": WAMID}],
}


def whatsapp(*, sandbox: bool = False, **options) -> WhatsApp:
    return channel(WhatsApp, "test-whatsapp", sandbox=sandbox, **options)


def sent_json(n: int = 0) -> dict:
    return json.loads(responses.calls[n].request.body)


@responses.activate
def test_text():
    responses.post(SEND_URL, json=ACCEPTED)
    assert whatsapp().send(CUSTOMER, OutboundText("Hello"), key="k1", now=LAST + HOUR) == SendResult(WAMID)
    call = responses.calls[0]
    assert call.request.headers["Authorization"] == "Bearer wa-token"
    assert sent_json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "text",
        "text": {"body": "Hello", "preview_url": False},
    }


@responses.activate
def test_text_over_4096_characters_is_refused_not_split():
    with pytest.raises(ValueError, match="4097 characters exceeds whatsapp's max_text of 4096"):
        whatsapp().send(CUSTOMER, OutboundText("z" * 4097), key="k1", now=LAST)
    assert len(responses.calls) == 0


@responses.activate
def test_window_closed_after_24_hours_before_the_call():
    with pytest.raises(WindowClosed):
        whatsapp().send(CUSTOMER, OutboundText("Hello"), key="k1", now=LAST + 24 * HOUR + 1)
    assert len(responses.calls) == 0


@responses.activate
def test_typing_marks_the_last_message_read():
    responses.post(SEND_URL, json={"success": True})
    assert whatsapp().send(CUSTOMER, OutboundTyping(True), key="k1", now=LAST + HOUR) == SendResult(None)
    assert sent_json() == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": LAST_WAMID,
        "typing_indicator": {"type": "text"},
    }


@pytest.mark.parametrize(
    ("to", "message", "now"),
    [
        (CUSTOMER, OutboundTyping(False), LAST),  # there is no typing off on WhatsApp
        (Recipient(WA_ID, last_inbound_at=LAST), OutboundTyping(True), LAST),  # nothing to mark read
        (CUSTOMER, OutboundTyping(True), LAST + 25 * HOUR),  # outside the window
        (CUSTOMER, OutboundClose(), LAST),
    ],
)
@responses.activate
def test_nothing_to_send(to, message, now):
    assert whatsapp().send(to, message, key="k1", now=now) == SendResult(None, sent=False)
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    ("mime", "kind", "content"),
    [
        ("image/jpeg", "image", {"link": "https://ece.example.com/f/1", "caption": "See this"}),
        ("video/mp4", "video", {"link": "https://ece.example.com/f/1", "caption": "See this"}),
        (
            "application/pdf",
            "document",
            {"link": "https://ece.example.com/f/1", "caption": "See this", "filename": "invoice.pdf"},
        ),
    ],
)
@responses.activate
def test_media_by_link(mime, kind, content):
    responses.post(SEND_URL, json=ACCEPTED)
    file = OutboundFile("https://ece.example.com/f/1", "invoice.pdf", mime, 1000, caption="See this")
    assert whatsapp().send(CUSTOMER, file, key="k1", now=LAST) == SendResult(WAMID)
    body = sent_json()
    assert (body["type"], body[kind], body["to"]) == (kind, content, WA_ID)


@responses.activate
def test_audio_caption_goes_first_as_text():
    responses.post(SEND_URL, json={**ACCEPTED, "messages": [{"id": "wamid.caption"}]})
    responses.post(SEND_URL, json=ACCEPTED)
    file = OutboundFile("https://ece.example.com/f/9", "note.mp3", "audio/mpeg", caption="Listen")
    assert whatsapp().send(CUSTOMER, file, key="k1", now=LAST) == SendResult(WAMID)
    assert sent_json(0)["text"] == {"body": "Listen", "preview_url": False}
    assert sent_json(1)["audio"] == {"link": "https://ece.example.com/f/9"}


@responses.activate
def test_unsupported_type_goes_as_a_link():
    responses.post(SEND_URL, json=ACCEPTED)
    file = OutboundFile("https://ece.example.com/f/3", "sticker.webp", "image/webp")
    whatsapp().send(CUSTOMER, file, key="k1", now=LAST)
    assert sent_json()["text"]["body"] == "sticker.webp: https://ece.example.com/f/3"


# -- the customer's media --------------------------------------------------------------------------

MEDIA_ID = "1037543291543636"
LOOKUP_URL = f"https://graph.facebook.com/v21.0/{MEDIA_ID}"
DOWNLOAD_URL = f"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid={MEDIA_ID}&ext=1&hash=ATt"


def media_info(url: str = DOWNLOAD_URL, mime: str = "image/jpeg", size: int = 5) -> dict:
    return {"messaging_product": "whatsapp", "url": url, "mime_type": mime, "sha256": "ab", "file_size": size}


@responses.activate
def test_media_id_resolves_to_bytes_with_the_bearer_token_twice():
    responses.get(LOOKUP_URL, json={**media_info(), "id": MEDIA_ID})
    responses.get(DOWNLOAD_URL, body=b"jpeg!", content_type="image/jpeg")
    fetched = whatsapp().fetch_attachment(Attachment(media_id=MEDIA_ID, mime_type="image/jpeg"), CUSTOMER)
    assert (fetched.name, fetched.mime_type, fetched.data) == ("attachment.jpg", "image/jpeg", b"jpeg!")
    assert [c.request.headers["Authorization"] for c in responses.calls] == ["Bearer wa-token"] * 2


@responses.activate
def test_document_keeps_its_file_name():
    responses.get(LOOKUP_URL, json=media_info(mime="application/pdf"))
    responses.get(DOWNLOAD_URL, body=b"%PDF", content_type="application/pdf")
    attachment = Attachment(media_id=MEDIA_ID, mime_type="application/pdf", name="invoice.pdf")
    assert whatsapp().fetch_attachment(attachment, CUSTOMER).name == "invoice.pdf"


@responses.activate
def test_media_over_the_cap_is_refused_from_the_lookup():
    responses.get(LOOKUP_URL, json=media_info(size=100 * 1024 * 1024 + 1))
    with pytest.raises(PermanentError, match="over WhatsApp's 100 MB limit"):
        whatsapp().fetch_attachment(Attachment(media_id=MEDIA_ID), CUSTOMER)
    assert len(responses.calls) == 1


@responses.activate
def test_media_over_the_cap_is_refused_while_streaming():
    responses.get(LOOKUP_URL, json=media_info())
    responses.get(DOWNLOAD_URL, body=b"x" * 10, headers={"Content-Length": str(100 * 1024 * 1024 + 1)})
    with pytest.raises(PermanentError, match="over the 100 MB limit"):
        whatsapp().fetch_attachment(Attachment(media_id=MEDIA_ID), CUSTOMER)


@responses.activate
def test_media_type_refused_from_the_lookup():
    responses.get(LOOKUP_URL, json=media_info(mime="model/stl"))
    with pytest.raises(PermanentError, match="whatsapp does not accept model/stl"):
        whatsapp().fetch_attachment(Attachment(media_id=MEDIA_ID), CUSTOMER)
    assert len(responses.calls) == 1


@responses.activate
def test_download_url_elsewhere_is_refused():
    responses.get(LOOKUP_URL, json=media_info(url="https://evil.example/x"))
    with pytest.raises(PermanentError, match="not one of this channel's media hosts"):
        whatsapp().fetch_attachment(Attachment(media_id=MEDIA_ID), CUSTOMER)
    assert len(responses.calls) == 1


SANDBOX = "http://127.0.0.1:8100/graph"


@responses.activate
def test_private_address_refused_outside_and_fetched_inside_the_sandbox():
    download = f"{SANDBOX}/media/{MEDIA_ID}/download"
    responses.get(f"{SANDBOX}/v21.0/{MEDIA_ID}", json=media_info(url=download))
    responses.get(download, body=b"img", content_type="image/jpeg")
    with pytest.raises(PermanentError, match="non-public address"):
        whatsapp(api_base_url=SANDBOX).fetch_attachment(Attachment(media_id=MEDIA_ID), CUSTOMER)
    fetched = whatsapp(api_base_url=SANDBOX, sandbox=True).fetch_attachment(Attachment(media_id=MEDIA_ID), CUSTOMER)
    assert fetched.data == b"img"


@pytest.mark.parametrize(("status", "error"), [(500, RetryableError), (400, PermanentError)])
@responses.activate
def test_lookup_failures(status, error):
    responses.get(LOOKUP_URL, json=graph_error(100, "Invalid media id", whatsapp=True), status=status)
    with pytest.raises(error):
        whatsapp().fetch_attachment(Attachment(media_id=MEDIA_ID), CUSTOMER)
