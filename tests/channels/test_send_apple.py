"""Apple Messages for Business sends: JWT-authorised messages with idempotent ids, typing, encrypted
attachments through preUpload / upload, and customer attachments through preDownload + decryption.

JWTs are checked with PyJWT and files decrypted / encrypted with `cryptography` directly, never
with the code under test.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from connector.channels.apple import Apple
from connector.channels.base import Attachment
from connector.channels.sending import (
    OutboundClose,
    OutboundFile,
    OutboundText,
    OutboundTyping,
    Recipient,
    SendResult,
)
from connector.errors import PermanentError, RetryableError

from .senders import channel

pytestmark = pytest.mark.usefixtures("fake_dns")  # names resolve without the network

BASE = "https://mspgw.push.apple.com"
BUSINESS = "3f2a9c1e-1111-2222-3333-444455556666"
SECRET = base64.b64decode("c2VjcmV0LWtleS1mb3ItYXBwbGUtbWVzc2FnZXMtdGVzdHM=")
OPAQUE = "urn:mbid:AQAAY2V4YW1wbGUtb3BhcXVlLWlk"
CUSTOMER = Recipient(OPAQUE, last_inbound_at=1_000.0)
ECE_FILE = "https://ece.example.com/system/files/42/brochure.pdf"
UPLOAD_URL = "https://p56-content.icloud.com/upload/abc?token=1"
MMCS_URL = "https://p56-content.icloud.com/M/abc"
OWNER = "p56.abc.owner"
CHECKSUM = "AWZpbGVjaGVja3N1bQ=="


def apple(*, sandbox: bool = False, **options) -> Apple:
    return channel(Apple, "test-apple", sandbox=sandbox, **options)


def message_id(key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def aes_ctr(data: bytes, key: bytes) -> bytes:
    """AES-256-CTR with a zero IV: encryption and decryption are the same operation."""
    cipher = Cipher(algorithms.AES(key), modes.CTR(b"\x00" * 16)).encryptor()
    return cipher.update(data) + cipher.finalize()


def assert_authorised(request) -> None:
    scheme, token = request.headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["iss", "iat"]})
    assert claims["iss"] == "msp-test-id"
    assert abs(claims["iat"] - time.time()) < 60


@responses.activate
def test_text_message_headers_and_body():
    responses.post(f"{BASE}/v1/message", body=b"", status=200)
    result = apple().send(CUSTOMER, OutboundText("Hello from Apple"), key="relay:conv1:msg7", now=5_000.0)
    expected_id = message_id("relay:conv1:msg7")
    assert result == SendResult(expected_id)
    request = responses.calls[0].request
    assert_authorised(request)
    assert request.headers["id"] == expected_id
    assert request.headers["source-id"] == BUSINESS
    assert request.headers["destination-id"] == OPAQUE
    assert request.headers["auto-reply"] == "false"
    assert json.loads(request.body) == {
        "v": 1,
        "type": "text",
        "id": expected_id,
        "sourceId": BUSINESS,
        "destinationId": OPAQUE,
        "body": "Hello from Apple",
    }


@responses.activate
def test_retried_send_keeps_its_id_and_another_key_gets_another():
    responses.post(f"{BASE}/v1/message", status=500)
    responses.post(f"{BASE}/v1/message", status=200)
    responses.post(f"{BASE}/v1/message", status=200)
    channel = apple()
    with pytest.raises(RetryableError):
        channel.send(CUSTOMER, OutboundText("Hi"), key="k1")
    channel.send(CUSTOMER, OutboundText("Hi"), key="k1")
    channel.send(CUSTOMER, OutboundText("Hi"), key="k2")
    ids = [c.request.headers["id"] for c in responses.calls]
    assert ids[0] == ids[1] != ids[2]


@responses.activate
def test_system_message_is_an_auto_reply():
    responses.post(f"{BASE}/v1/message", status=200)
    apple().send(CUSTOMER, OutboundText("An agent will be with you shortly", system=True), key="k1")
    assert responses.calls[0].request.headers["auto-reply"] == "true"


@responses.activate
def test_no_text_limit_and_no_window():
    responses.post(f"{BASE}/v1/message", status=200)
    long_text = "Lorem ipsum. " * 10_000
    assert apple().send(CUSTOMER, OutboundText(long_text), key="k1", now=1_000.0 + 365 * 86400).sent
    assert json.loads(responses.calls[0].request.body)["body"] == long_text


@pytest.mark.parametrize(("on", "kind"), [(True, "typing_start"), (False, "typing_end")])
@responses.activate
def test_typing(on, kind):
    responses.post(f"{BASE}/v1/message", status=200)
    assert apple().send(CUSTOMER, OutboundTyping(on), key="k1").sent
    request = responses.calls[0].request
    assert_authorised(request)
    assert json.loads(request.body) == {
        "v": 1,
        "type": kind,
        "id": message_id("k1"),
        "sourceId": BUSINESS,
        "destinationId": OPAQUE,
    }


@responses.activate
def test_close_sends_nothing():
    assert apple().send(CUSTOMER, OutboundClose(), key="k1") == SendResult(None, sent=False)
    assert len(responses.calls) == 0


def mock_upload_flow(plain: bytes) -> None:
    responses.get(ECE_FILE, body=plain, content_type="application/pdf")
    responses.get(f"{BASE}/v1/preUpload", json={"upload-url": UPLOAD_URL, "mmcs-url": MMCS_URL, "mmcs-owner": OWNER})
    responses.post(UPLOAD_URL, json={"singleFile": {"fileChecksum": CHECKSUM, "fileSize": len(plain), "receipt": "r"}})
    responses.post(f"{BASE}/v1/message", status=200)


@responses.activate
def test_file_is_fetched_encrypted_uploaded_and_sent_as_an_attachment():
    plain = b"%PDF-1.7 " + os.urandom(3000)
    mock_upload_flow(plain)
    file = OutboundFile(ECE_FILE, "brochure.pdf", "application/pdf", len(plain))
    assert apple().send(CUSTOMER, file, key="file-1") == SendResult(message_id("file-1"))
    fetch_call, pre_upload, upload, send = responses.calls

    assert "Authorization" not in fetch_call.request.headers
    assert_authorised(pre_upload.request)
    assert pre_upload.request.headers["source-id"] == BUSINESS
    encrypted = upload.request.body
    assert pre_upload.request.headers["size"] == str(len(encrypted))
    assert upload.request.headers["Content-Type"] == "application/octet-stream"
    assert encrypted != plain

    body = json.loads(send.request.body)
    [attachment] = body.pop("attachments")
    assert body == {
        "v": 1,
        "type": "text",
        "id": message_id("file-1"),
        "sourceId": BUSINESS,
        "destinationId": OPAQUE,
        "body": "\ufffc",
    }
    key_hex = attachment.pop("key")
    assert attachment == {
        "name": "brochure.pdf",
        "mimeType": "application/pdf",
        "size": len(plain),
        "signature-base64": CHECKSUM,
        "url": MMCS_URL,
        "owner": OWNER,
    }
    assert key_hex.startswith("00") and len(key_hex) == 66
    assert aes_ctr(encrypted, bytes.fromhex(key_hex[2:])) == plain


@responses.activate
def test_every_file_gets_a_fresh_key():
    plain = b"same bytes" * 100
    mock_upload_flow(plain)
    file = OutboundFile(ECE_FILE, "brochure.pdf", "application/pdf")
    apple().send(CUSTOMER, file, key="a")
    apple().send(CUSTOMER, file, key="b")
    keys = [
        json.loads(c.request.body)["attachments"][0]["key"]
        for c in responses.calls
        if c.request.url.endswith("/v1/message")
    ]
    assert len(set(keys)) == 2


@responses.activate
def test_caption_goes_first_with_its_own_id():
    mock_upload_flow(b"pdf")
    file = OutboundFile(ECE_FILE, "brochure.pdf", "application/pdf", caption="Our brochure")
    apple().send(CUSTOMER, file, key="file-2")
    sends = [c.request for c in responses.calls if c.request.url.endswith("/v1/message")]
    assert [json.loads(r.body).get("body") for r in sends] == ["Our brochure", "\ufffc"]
    assert sends[1].headers["id"] == message_id("file-2") != sends[0].headers["id"]


@responses.activate
def test_file_over_100_mb_goes_as_a_link():
    responses.get(ECE_FILE, body=b"x", headers={"Content-Length": str(100 * 1024 * 1024 + 1)})
    responses.post(f"{BASE}/v1/message", status=200)
    apple().send(CUSTOMER, OutboundFile(ECE_FILE, "huge.pdf", "application/pdf"), key="k1")
    assert json.loads(responses.calls[-1].request.body)["body"] == f"huge.pdf: {ECE_FILE}"
    assert not any("preUpload" in c.request.url for c in responses.calls)


@responses.activate
def test_unsupported_type_goes_as_a_link_without_fetching():
    responses.post(f"{BASE}/v1/message", status=200)
    apple().send(CUSTOMER, OutboundFile(ECE_FILE, "part.stl", "model/stl"), key="k1")
    [call] = responses.calls
    assert json.loads(call.request.body)["body"] == f"part.stl: {ECE_FILE}"


SANDBOX_FILE = "http://127.0.0.1:8000/files/1/brochure.pdf"


@responses.activate
def test_an_agent_file_on_a_private_address_is_fetched_since_it_comes_from_the_contact_center():
    # ECE usually runs on a private network; its file URLs come from an authenticated callback.
    file = OutboundFile(SANDBOX_FILE, "brochure.pdf", "application/pdf")
    mock_upload_flow(b"pdf")
    responses.get(SANDBOX_FILE, body=b"pdf", content_type="application/pdf")
    assert apple().send(CUSTOMER, file, key="k1").sent


@responses.activate
def test_pre_upload_failure_is_reported():
    responses.get(ECE_FILE, body=b"pdf", content_type="application/pdf")
    responses.get(f"{BASE}/v1/preUpload", status=403)
    with pytest.raises(PermanentError, match="Apple preUpload: HTTP 403"):
        apple().send(CUSTOMER, OutboundFile(ECE_FILE, "b.pdf", "application/pdf"), key="k1")


# -- the customer's attachments --------------------------------------------------------------------

DOWNLOAD_URL = "https://p45-content.icloud.com/download/xyz?e=1"
KEY = bytes(range(32))


def customer_attachment(**changes) -> Attachment:
    fields = {
        "url": "https://p45-content.icloud.com/M/xyz",
        "mime_type": "image/jpeg",
        "name": "IMG_0001.jpeg",
        "size": 11,
        "extra": {"key": "00" + KEY.hex(), "owner": "p45.owner", "signature": "AXNpZ25hdHVyZQ=="},
    }
    return Attachment(**{**fields, **changes})


@responses.activate
def test_customer_attachment_is_pre_downloaded_and_decrypted():
    plain = b"jpeg bytes!"
    responses.get(f"{BASE}/v1/preDownload", json={"download-url": DOWNLOAD_URL})
    responses.get(DOWNLOAD_URL, body=aes_ctr(plain, KEY), content_type="application/octet-stream")
    fetched = apple().fetch_attachment(customer_attachment(), CUSTOMER)
    assert (fetched.name, fetched.mime_type, fetched.data) == ("IMG_0001.jpeg", "image/jpeg", plain)
    pre = responses.calls[0].request
    assert_authorised(pre)
    assert pre.headers["source-id"] == BUSINESS
    assert pre.headers["url"] == "https://p45-content.icloud.com/M/xyz"
    assert pre.headers["signature"] == "AXNpZ25hdHVyZQ=="
    assert pre.headers["owner"] == "p45.owner"
    assert "Authorization" not in responses.calls[1].request.headers


@responses.activate
def test_customer_attachment_over_100_mb_is_refused_before_any_call():
    with pytest.raises(PermanentError, match="over apple's 100 MB limit"):
        apple().fetch_attachment(customer_attachment(size=100 * 1024 * 1024 + 1), CUSTOMER)
    assert len(responses.calls) == 0


@responses.activate
def test_customer_attachment_over_the_cap_is_refused_while_streaming():
    responses.get(f"{BASE}/v1/preDownload", json={"download-url": DOWNLOAD_URL})
    responses.get(DOWNLOAD_URL, body=b"x", headers={"Content-Length": str(100 * 1024 * 1024 + 1)})
    with pytest.raises(PermanentError, match="over the 100 MB limit"):
        apple().fetch_attachment(customer_attachment(size=None), CUSTOMER)


@responses.activate
def test_customer_attachment_type_refused():
    with pytest.raises(PermanentError, match="apple does not accept model/usdz"):
        apple().fetch_attachment(customer_attachment(mime_type="model/usdz"), CUSTOMER)
    assert len(responses.calls) == 0


@responses.activate
def test_unusable_key_is_permanent():
    with pytest.raises(PermanentError, match="unusable key"):
        apple().fetch_attachment(customer_attachment(extra={"key": "00abc", "owner": "o", "signature": "s"}), CUSTOMER)


@responses.activate
def test_download_url_on_a_private_address_only_in_the_sandbox():
    private = "http://127.0.0.1:8100/apple/mmcs/xyz"
    responses.get(f"{BASE}/v1/preDownload", json={"download-url": private})
    responses.get(private, body=aes_ctr(b"jpeg bytes!", KEY))
    with pytest.raises(PermanentError, match="non-public address"):
        apple().fetch_attachment(customer_attachment(), CUSTOMER)
    assert apple(sandbox=True).fetch_attachment(customer_attachment(), CUSTOMER).data == b"jpeg bytes!"


@pytest.mark.parametrize(("status", "error"), [(500, RetryableError), (403, PermanentError)])
@responses.activate
def test_pre_download_failures(status, error):
    responses.get(f"{BASE}/v1/preDownload", status=status)
    with pytest.raises(error, match="Apple preDownload"):
        apple().fetch_attachment(customer_attachment(), CUSTOMER)
