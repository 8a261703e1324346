"""Messenger Send API: text, attachments by URL, sender actions, the 24 h / HUMAN_AGENT windows,
Graph error codes, and downloads of customers' CDN attachments."""

from __future__ import annotations

import json

import pytest
import responses

from connector.channels.base import Attachment
from connector.channels.messenger import Messenger
from connector.channels.sending import (
    OutboundClose,
    OutboundFile,
    OutboundText,
    OutboundTyping,
    Recipient,
    SendResult,
)
from connector.errors import PermanentError, RetryableError, WindowClosed

from .senders import channel

pytestmark = pytest.mark.usefixtures("fake_dns")  # names resolve without the network

SEND_URL = "https://graph.facebook.com/v21.0/1234567890/messages"
PSID = "6789012345678901"
LAST = 1_700_000_000.0
HOUR = 3600.0
CUSTOMER = Recipient(PSID, last_inbound_at=LAST)
MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"


def messenger(*, sandbox: bool = False, **options) -> Messenger:
    return channel(Messenger, "test-messenger", sandbox=sandbox, **options)


def sent_json(n: int = 0) -> dict:
    return json.loads(responses.calls[n].request.body)


@responses.activate
def test_text_within_24_hours_is_a_response():
    responses.post(SEND_URL, json={"recipient_id": PSID, "message_id": MID})
    result = messenger().send(CUSTOMER, OutboundText("Hello"), key="k1", now=LAST + 23 * HOUR)
    assert result == SendResult(MID)
    call = responses.calls[0]
    assert call.request.headers["Authorization"] == "Bearer page-token"
    assert call.request.headers["Content-Type"] == "application/json"
    assert sent_json() == {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "Hello"}}


@responses.activate
def test_text_after_24_hours_is_refused_before_the_call():
    with pytest.raises(WindowClosed, match="24 h"):
        messenger().send(CUSTOMER, OutboundText("Hello"), key="k1", now=LAST + 25 * HOUR)
    assert len(responses.calls) == 0


@responses.activate
def test_human_agent_tag_extends_the_window_to_7_days():
    responses.post(SEND_URL, json={"recipient_id": PSID, "message_id": MID})
    channel = messenger(human_agent_tag=True)
    channel.send(CUSTOMER, OutboundText("Sorry for the wait"), key="k1", now=LAST + 6 * 24 * HOUR)
    assert sent_json() == {
        "recipient": {"id": PSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Sorry for the wait"},
    }
    assert not channel.window_open(CUSTOMER, LAST + 7 * 24 * HOUR + 1)
    with pytest.raises(WindowClosed):
        channel.send(CUSTOMER, OutboundText("Too late"), key="k2", now=LAST + 8 * 24 * HOUR)
    assert len(responses.calls) == 1


@responses.activate
def test_human_agent_tag_is_not_used_within_24_hours():
    responses.post(SEND_URL, json={"recipient_id": PSID, "message_id": MID})
    messenger(human_agent_tag=True).send(CUSTOMER, OutboundText("Hi"), key="k1", now=LAST + HOUR)
    assert sent_json()["messaging_type"] == "RESPONSE"
    assert "tag" not in sent_json()


def test_unknown_last_message_leaves_the_window_open():
    assert messenger().window_open(Recipient(PSID), now=LAST)


@responses.activate
def test_text_over_2000_characters_is_refused_not_split():
    with pytest.raises(ValueError, match="2001 characters exceeds messenger's max_text of 2000"):
        messenger().send(CUSTOMER, OutboundText("a" * 2001), key="k1", now=LAST)
    assert len(responses.calls) == 0


@pytest.mark.parametrize(("on", "action"), [(True, "typing_on"), (False, "typing_off")])
@responses.activate
def test_typing_is_a_sender_action_alone(on, action):
    responses.post(SEND_URL, json={"recipient_id": PSID})
    assert messenger().send(CUSTOMER, OutboundTyping(on), key="k1", now=LAST + HOUR) == SendResult(None)
    assert sent_json() == {"recipient": {"id": PSID}, "sender_action": action}


@responses.activate
def test_typing_outside_the_window_is_skipped():
    assert messenger().send(CUSTOMER, OutboundTyping(True), key="k1", now=LAST + 48 * HOUR).sent is False
    assert len(responses.calls) == 0


@responses.activate
def test_typing_is_not_sent_on_the_human_agent_tag():
    result = messenger(human_agent_tag=True).send(CUSTOMER, OutboundTyping(True), key="k1", now=LAST + 48 * HOUR)
    assert result == SendResult(None, sent=False)
    assert len(responses.calls) == 0


@responses.activate
def test_close_sends_nothing():
    assert messenger().send(CUSTOMER, OutboundClose(), key="k1", now=LAST) == SendResult(None, sent=False)
    assert len(responses.calls) == 0


@pytest.mark.parametrize(
    ("mime", "kind"),
    [("image/png", "image"), ("video/mp4", "video"), ("audio/mpeg", "audio"), ("application/pdf", "file")],
)
@responses.activate
def test_native_files_go_as_attachments_by_url(mime, kind):
    responses.post(SEND_URL, json={"recipient_id": PSID, "message_id": MID})
    file = OutboundFile("https://ece.example.com/f/1", "doc", mime, 1000)
    assert messenger().send(CUSTOMER, file, key="k1", now=LAST) == SendResult(MID)
    assert sent_json()["message"] == {
        "attachment": {"type": kind, "payload": {"url": "https://ece.example.com/f/1", "is_reusable": True}}
    }


@responses.activate
def test_caption_goes_first_as_text():
    responses.post(SEND_URL, json={"recipient_id": PSID, "message_id": "m_caption"})
    responses.post(SEND_URL, json={"recipient_id": PSID, "message_id": MID})
    file = OutboundFile("https://ece.example.com/f/1", "map.png", "image/png", caption="Our shop")
    assert messenger().send(CUSTOMER, file, key="k1", now=LAST) == SendResult(MID)
    assert sent_json(0)["message"] == {"text": "Our shop"}
    assert sent_json(1)["message"]["attachment"]["type"] == "image"


@responses.activate
def test_other_files_go_as_a_link():
    responses.post(SEND_URL, json={"recipient_id": PSID, "message_id": MID})
    file = OutboundFile("https://ece.example.com/f/2", "data.zip", "application/zip", 1000)
    messenger().send(CUSTOMER, file, key="k1", now=LAST)
    assert sent_json()["message"] == {"text": "data.zip: https://ece.example.com/f/2"}


@responses.activate
def test_files_respect_the_window():
    file = OutboundFile("https://ece.example.com/f/1", "map.png", "image/png")
    with pytest.raises(WindowClosed):
        messenger().send(CUSTOMER, file, key="k1", now=LAST + 30 * HOUR)
    assert len(responses.calls) == 0


# -- the customer's attachments --------------------------------------------------------------------

CDN_URL = "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo_n.jpg?_nc_cat=1&oh=abc&oe=def"


@responses.activate
def test_cdn_attachment_is_fetched_without_credentials():
    responses.get(CDN_URL, body=b"\xff\xd8jpeg", content_type="image/jpeg")
    fetched = messenger().fetch_attachment(Attachment(mime_type="image/*", url=CDN_URL), CUSTOMER)
    assert (fetched.name, fetched.mime_type, fetched.data) == ("photo_n.jpg", "image/jpeg", b"\xff\xd8jpeg")
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_attachment_over_25_mb_is_refused():
    responses.get(CDN_URL, body=b"x" * 10, headers={"Content-Length": str(25 * 1024 * 1024 + 1)})
    with pytest.raises(PermanentError, match="over the 25 MB limit"):
        messenger().fetch_attachment(Attachment(mime_type="video/*", url=CDN_URL), CUSTOMER)


@responses.activate
def test_attachment_type_refused():
    responses.get(CDN_URL, body=b"<x/>", content_type="model/vrml")
    with pytest.raises(PermanentError, match="messenger does not accept model/vrml"):
        messenger().fetch_attachment(Attachment(mime_type="application/octet-stream", url=CDN_URL), CUSTOMER)


@responses.activate
def test_attachment_elsewhere_is_refused():
    with pytest.raises(PermanentError, match="not one of this channel's media hosts"):
        messenger().fetch_attachment(Attachment(mime_type="image/*", url="https://evil.example/x.jpg"), CUSTOMER)
    assert len(responses.calls) == 0


SANDBOX_CDN = "http://127.0.0.1:8100/graph/cdn/file-1"


@responses.activate
def test_private_address_refused_outside_and_fetched_inside_the_sandbox():
    responses.get(SANDBOX_CDN, body=b"png", content_type="image/png")
    options = {"api_base_url": "http://127.0.0.1:8100/graph"}
    attachment = Attachment(mime_type="image/*", url=SANDBOX_CDN)
    with pytest.raises(PermanentError, match="non-public address"):
        messenger(**options).fetch_attachment(attachment, CUSTOMER)
    assert len(responses.calls) == 0
    assert messenger(sandbox=True, **options).fetch_attachment(attachment, CUSTOMER).data == b"png"


@responses.activate
def test_attachment_download_server_error_is_retryable():
    responses.get(CDN_URL, status=503)
    with pytest.raises(RetryableError):
        messenger().fetch_attachment(Attachment(mime_type="image/*", url=CDN_URL), CUSTOMER)
