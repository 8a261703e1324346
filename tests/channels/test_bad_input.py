"""What the webhooks answer to requests they must refuse, and to repeats they must absorb
(docs/architecture.md, "Webhook answers")."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest

from .signing import (
    apple_fixture,
    apple_token,
    fixture_bytes,
    fixture_json,
    signed_apple,
    signed_inapp,
    signed_meta,
    signed_sms,
)

SMS = "/webhooks/sms/test-sms"
MESSENGER = "/webhooks/messenger/test-messenger"
WHATSAPP = "/webhooks/whatsapp/test-whatsapp"
APPLE = "/webhooks/apple/test-apple"
INAPP = "/webhooks/inapp/test-inapp"

# One valid request per channel: (path, keyword arguments of client.post).
VALID: dict[str, Callable[[], tuple[str, dict[str, Any]]]] = {
    "sms": lambda: (SMS, signed_sms(SMS, fixture_json("sms", "text.json"))),
    "messenger": lambda: (MESSENGER, signed_meta("test-messenger", fixture_bytes("messenger", "text.json"))),
    "whatsapp": lambda: (WHATSAPP, signed_meta("test-whatsapp", fixture_bytes("whatsapp", "text.json"))),
    "apple": lambda: (APPLE, apple_fixture("text.json")),
    "inapp": lambda: (INAPP, signed_inapp(fixture_bytes("inapp", "text.json"))),
}
SIGNATURE_HEADERS = {
    "sms": ("X-Twilio-Signature",),
    "messenger": ("X-Hub-Signature-256",),
    "whatsapp": ("X-Hub-Signature-256",),
    "apple": ("Authorization",),
    "inapp": ("X-Signature", "X-Timestamp"),
}


def refused(response, status: int, error: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert body["error"] == error
    assert body["message"]
    if field is not None:
        assert body.get("field") == field
    return body


def without(headers: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in names}


# -- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", sorted(VALID))
def test_missing_signature(client, stored, channel):
    path, request = VALID[channel]()
    request["headers"] = without(request["headers"], *SIGNATURE_HEADERS[channel])
    refused(client.post(path, **request), 401, "missing_signature")
    assert stored() == []


@pytest.mark.parametrize("header", ["X-Signature", "X-Timestamp"])
def test_inapp_needs_both_headers(client, header):
    path, request = VALID["inapp"]()
    request["headers"] = without(request["headers"], header)
    refused(client.post(path, **request), 401, "missing_signature")


def test_wrong_signature_sms(client):
    request = signed_sms(SMS, fixture_json("sms", "text.json"), token="not-the-auth-token")
    refused(client.post(SMS, **request), 403, "invalid_signature")


@pytest.mark.parametrize(
    ("path", "asset", "fixture"), [(MESSENGER, "messenger", "text.json"), (WHATSAPP, "whatsapp", "text.json")]
)
def test_wrong_signature_meta(client, path, asset, fixture):
    request = signed_meta(f"test-{asset}", fixture_bytes(asset, fixture))
    request["headers"]["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    refused(client.post(path, **request), 403, "invalid_signature")


def test_meta_secret_of_another_asset(client):
    # A body signed with the WhatsApp app's secret is not the Messenger app's.
    body = fixture_bytes("messenger", "text.json")
    request = signed_meta("test-whatsapp", body)
    refused(client.post(MESSENGER, **request), 403, "invalid_signature")


def test_wrong_signature_inapp(client):
    request = signed_inapp(fixture_bytes("inapp", "text.json"), secret="another-secret-0123456789")
    refused(client.post(INAPP, **request), 403, "invalid_signature")


def test_wrong_secret_apple(client):
    other = base64.b64encode(b"a-different-secret-of-another-msp").decode()
    request = apple_fixture("text.json", token=apple_token(secret=other))
    refused(client.post(APPLE, **request), 403, "invalid_signature", field="Authorization")


def test_unsigned_apple_token(client):
    # alg "none" must never pass, whatever the claims say.
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    claims = base64.urlsafe_b64encode(b'{"aud":"msp-test-id"}').rstrip(b"=").decode()
    request = apple_fixture("text.json", token=f"{header}.{claims}.")
    refused(client.post(APPLE, **request), 403, "invalid_signature")


def test_body_changed_after_signing_sms(client):
    request = signed_sms(SMS, fixture_json("sms", "text.json"))
    request["data"] = request["data"].replace("SALES", "REFUND")
    refused(client.post(SMS, **request), 403, "invalid_signature")


@pytest.mark.parametrize(("path", "asset"), [(MESSENGER, "messenger"), (WHATSAPP, "whatsapp")])
def test_body_changed_after_signing_meta(client, path, asset):
    request = signed_meta(f"test-{asset}", fixture_bytes(asset, "text.json"))
    # Re-serialising the JSON changes the bytes (escapes, spacing) even though the data is the same.
    request["data"] = json.dumps(json.loads(request["data"])).encode()
    refused(client.post(path, **request), 403, "invalid_signature")


def test_body_changed_after_signing_inapp(client):
    request = signed_inapp(fixture_bytes("inapp", "text.json"))
    request["data"] = request["data"].replace(b"charged twice", b"charged once")
    refused(client.post(INAPP, **request), 403, "invalid_signature")


@pytest.mark.parametrize(
    "signed_url",
    [
        "http://10.0.3.7:8000/webhooks/sms/test-sms",  # the internal URL behind the proxy
        "https://connector.example.com/webhooks/sms/another-number",
        "https://connector.example.com:8443/webhooks/sms/test-sms",  # a non-default port is a different URL
        "https://connector.example.com/webhooks/sms/test-sms?extra=1",
    ],
)
def test_twilio_signature_for_another_url(client, signed_url):
    request = signed_sms(SMS, fixture_json("sms", "text.json"), url=signed_url)
    refused(client.post(SMS, **request), 403, "invalid_signature")


@pytest.mark.parametrize("offset", [-301 - 30, 301 + 30])
def test_inapp_timestamp_outside_skew(client, offset):
    import time

    request = signed_inapp(fixture_bytes("inapp", "text.json"), timestamp=time.time() + offset)
    refused(client.post(INAPP, **request), 403, "invalid_signature", field="X-Timestamp")


def test_inapp_timestamp_not_a_number(client):
    body = fixture_bytes("inapp", "text.json")
    request = signed_inapp(body)
    request["headers"]["X-Timestamp"] = "yesterday"
    refused(client.post(INAPP, **request), 403, "invalid_signature", field="X-Timestamp")


def test_apple_wrong_audience(client):
    request = apple_fixture("text.json", token=apple_token(audience="another-msp"))
    body = refused(client.post(APPLE, **request), 403, "invalid_signature", field="Authorization")
    assert "aud" in body["message"]


def test_apple_expired_token(client):
    request = apple_fixture("text.json", token=apple_token(expires_in=-3600))
    refused(client.post(APPLE, **request), 403, "invalid_signature", field="Authorization")


def test_apple_destination_of_another_business(client, stored):
    request = apple_fixture("text.json")
    request["headers"]["destination-id"] = "9e9e9e9e-0000-1111-2222-333333333333"
    refused(client.post(APPLE, **request), 403, "invalid_signature", field="destination-id")
    assert stored() == []


# -- malformed bodies -----------------------------------------------------------------------------


def test_malformed_json_meta(client):
    refused(
        client.post(MESSENGER, **signed_meta("test-messenger", b'{"object": "page", "entry": [')),
        400,
        "invalid_payload",
    )


def test_malformed_json_apple(client):
    refused(
        client.post(APPLE, **signed_apple(b"{not json", {"destination-id": "3f2a9c1e-1111-2222-3333-444455556666"})),
        400,
        "invalid_payload",
    )


def test_malformed_gzip_apple(client):
    request = signed_apple(b"{}", {"destination-id": "3f2a9c1e-1111-2222-3333-444455556666"}, compress=False)
    request["headers"]["Content-Encoding"] = "gzip"
    refused(client.post(APPLE, **request), 400, "invalid_payload")


def test_malformed_json_inapp(client):
    refused(client.post(INAPP, **signed_inapp(b'{"message_id": ')), 400, "invalid_payload")


def test_json_of_the_wrong_shape(client):
    refused(client.post(WHATSAPP, **signed_meta("test-whatsapp", b"[1, 2, 3]")), 400, "invalid_payload")
    refused(
        client.post(WHATSAPP, **signed_meta("test-whatsapp", b'{"object": "page", "entry": []}')),
        400,
        "invalid_payload",
        field="object",
    )


def test_missing_field_is_named_whatsapp(client):
    body = fixture_json("whatsapp", "text.json")
    del body["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    response = client.post(WHATSAPP, **signed_meta("test-whatsapp", json.dumps(body).encode()))
    refused(response, 400, "invalid_payload", field="entry[0].changes[0].value.messages[0].from")


def test_another_page_messenger(client, stored):
    body = fixture_json("messenger", "text.json")
    body["entry"][0]["id"] = "999"
    response = client.post(MESSENGER, **signed_meta("test-messenger", json.dumps(body).encode()))
    refused(response, 400, "invalid_payload", field="entry[0].id")
    body["entry"][0]["id"] = "1234567890"
    body["entry"][0]["messaging"][0]["recipient"]["id"] = "999"
    response = client.post(MESSENGER, **signed_meta("test-messenger", json.dumps(body).encode()))
    refused(response, 400, "invalid_payload", field="entry[0].messaging[0].recipient.id")
    assert stored() == []


def test_wrong_types_messenger(client):
    body = fixture_json("messenger", "text.json")
    body["entry"][0]["messaging"][0]["timestamp"] = "yesterday"
    response = client.post(MESSENGER, **signed_meta("test-messenger", json.dumps(body).encode()))
    refused(response, 400, "invalid_payload", field="entry[0].messaging[0].timestamp")


def test_sms_to_another_number(client):
    params = fixture_json("sms", "text.json") | {"To": "+15559999999"}
    refused(client.post(SMS, **signed_sms(SMS, params)), 400, "invalid_payload", field="To")


def test_sms_media_count_without_urls(client):
    params = fixture_json("sms", "text.json") | {"NumMedia": "2"}
    refused(client.post(SMS, **signed_sms(SMS, params)), 400, "invalid_payload", field="MediaUrl0")


def test_sms_status_without_status(client):
    path = f"{SMS}/status"
    params = fixture_json("sms", "status_delivered.json")
    del params["MessageStatus"]
    refused(client.post(path, **signed_sms(path, params)), 400, "invalid_payload", field="MessageStatus")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer": {"name": "No Id"}}, "customer.id"),
        ({"type": "video_call"}, "type"),
        ({"text": None}, "text"),
        ({"sent_at": "last tuesday"}, "sent_at"),
        ({"type": "attachment", "attachments": [{"url": "https://x.example/a.png"}]}, "attachments[0].mime_type"),
    ],
)
def test_inapp_invalid_fields(client, change, field):
    body = fixture_json("inapp", "text.json") | change
    refused(client.post(INAPP, **signed_inapp(json.dumps(body).encode())), 400, "invalid_payload", field=field)


def test_apple_attachment_without_key(client):
    case = fixture_json("apple", "attachment.json")
    del case["body"]["attachments"][0]["key"]
    request = signed_apple(json.dumps(case["body"]).encode(), case["headers"])
    refused(client.post(APPLE, **request), 400, "invalid_payload", field="attachments[0].key")


# -- content type and size ------------------------------------------------------------------------


def test_wrong_content_type_sms(client):
    request = signed_sms(SMS, fixture_json("sms", "text.json"))
    request["content_type"] = "application/json"
    refused(client.post(SMS, **request), 415, "unsupported_media_type")


def test_wrong_content_type_meta(client):
    request = signed_meta("test-messenger", fixture_bytes("messenger", "text.json"), content_type="text/plain")
    refused(client.post(MESSENGER, **request), 415, "unsupported_media_type")


def test_wrong_content_type_inapp(client):
    request = signed_inapp(fixture_bytes("inapp", "text.json"), content_type="application/x-www-form-urlencoded")
    refused(client.post(INAPP, **request), 415, "unsupported_media_type")


@pytest.mark.parametrize("channel", sorted(VALID))
def test_oversized_body(client, settings, channel):
    path, request = VALID[channel]()
    request["data"] = b"x" * (settings.max_body_bytes + 1)
    refused(client.post(path, **request), 413, "body_too_large")


def test_apple_gzip_bomb(client, settings):
    # A few kilobytes that inflate past the limit are refused without inflating them all.
    bomb = gzip.compress(b"{" + b" " * (settings.max_body_bytes * 4) + b"}")
    assert len(bomb) < settings.max_body_bytes // 100
    request = signed_apple(bomb, {"destination-id": "3f2a9c1e-1111-2222-3333-444455556666"}, compress=False)
    request["headers"]["Content-Encoding"] = "gzip"
    refused(client.post(APPLE, **request), 413, "body_too_large")


# -- addressing -----------------------------------------------------------------------------------


def test_unknown_asset(client):
    _, request = VALID["messenger"]()
    refused(client.post("/webhooks/messenger/no-such-page", **request), 404, "unknown_asset")
    # An asset of another channel is not found under this channel either.
    refused(client.post("/webhooks/messenger/test-whatsapp", **request), 404, "unknown_asset")


def test_unknown_channel(client):
    refused(
        client.post("/webhooks/telegram/test-sms", data=b"{}", content_type="application/json"), 404, "unknown_asset"
    )


# -- Meta's verify handshake ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "token"), [(MESSENGER, "messenger-verify-token"), (WHATSAPP, "whatsapp-verify-token")]
)
def test_handshake_right_token(client, path, token):
    query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
    response = client.get(path, query_string=query)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "1158201444"


@pytest.mark.parametrize("path", [MESSENGER, WHATSAPP])
def test_handshake_wrong_token(client, path):
    query = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"}
    body = refused(client.get(path, query_string=query), 403, "invalid_signature", field="hub.verify_token")
    assert "1158201444" not in json.dumps(body)


def test_handshake_on_a_channel_without_one(client):
    refused(client.get(SMS), 405, "method_not_allowed")


# -- redelivery -----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", sorted(VALID))
def test_same_message_five_times_is_stored_once(client, stored, channel):
    for _ in range(5):
        path, request = VALID[channel]()  # fresh signature / token / timestamp each time
        assert client.post(path, **request).status_code == 200
    events = stored()
    assert len(events) == 1
    assert events[0].channel == channel
