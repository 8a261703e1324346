"""The provider simulators answer as the providers do (docs/protocols/channels.md): accepted sends are
recorded with the right fields; wrong credentials, malformed bodies, closed windows and injected
failures get the provider's status and error JSON. Requests are built here from that page, signed with
PyJWT / hmac and encrypted with `cryptography` directly, never with the simulators' own helpers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from connector.config.loader import load_config
from connector.config.model import Asset, Config
from connector.sandbox.http import serving
from connector.sandbox.providers import ProviderSimulators
from tests.sandbox import CONFIG_DIR

HOUR = 3600


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(CONFIG_DIR)


@pytest.fixture
def sims(config: Config) -> Iterator[ProviderSimulators]:
    with serving() as server:  # the simulators build media URLs from their own address
        providers = ProviderSimulators(config.assets, server.url)
        server.app = providers.create_app()
        yield providers


def asset(config: Config, channel: str) -> Asset:
    return next(a for a in config.assets if a.channel == channel)


# -- Twilio ------------------------------------------------------------------------------------------


def twilio_send(sims: ProviderSimulators, sms: Asset, form: Any, auth: tuple[str, str] | None = None):
    sid = str(sms["account_sid"])
    url = f"{sims.base_url}/twilio/2010-04-01/Accounts/{sid}/Messages.json"
    return requests.post(url, data=form, auth=auth or (sid, str(sms["auth_token"])), timeout=5)


def test_twilio_text_is_accepted_and_recorded(sims: ProviderSimulators, config: Config) -> None:
    sms = asset(config, "sms")
    response = twilio_send(sims, sms, {"To": "+14155550123", "From": sms["number"], "Body": "Hello from the agent"})

    assert response.status_code == 201
    resource = response.json()
    assert resource["sid"].startswith("SM") and len(resource["sid"]) == 34
    assert resource["status"] == "queued"
    assert (resource["to"], resource["from"], resource["body"]) == (
        "+14155550123",
        sms["number"],
        "Hello from the agent",
    )
    [sent] = sims.store.sent("sms")
    assert sent["asset"] == sms.name
    assert sent["customer"] == "+14155550123"
    assert sent["kind"] == "text"
    assert sent["text"] == "Hello from the agent"
    assert sent["provider_id"] == resource["sid"]
    assert sent["file"] is None
    assert abs(sent["at"] - time.time()) < 5


def test_twilio_media_url_is_recorded_as_a_file(sims: ProviderSimulators, config: Config) -> None:
    sms = asset(config, "sms")
    form = [("To", "+14155550123"), ("From", sms["number"]), ("MediaUrl", "https://ece.example.com/files/a.png")]

    response = twilio_send(sims, sms, form)

    assert response.status_code == 201
    assert response.json()["sid"].startswith("MM")
    [sent] = sims.store.sent("sms", "+14155550123")
    assert sent["kind"] == "file"
    assert sent["file"]["url"] == "https://ece.example.com/files/a.png"


def test_twilio_wrong_or_missing_credentials_get_20003(sims: ProviderSimulators, config: Config) -> None:
    sms = asset(config, "sms")
    form = {"To": "+14155550123", "From": sms["number"], "Body": "x"}

    wrong = twilio_send(sims, sms, form, auth=(str(sms["account_sid"]), "not-the-token"))
    missing = requests.post(
        f"{sims.base_url}/twilio/2010-04-01/Accounts/{sms['account_sid']}/Messages.json", data=form, timeout=5
    )

    for response in (wrong, missing):
        assert response.status_code == 401
        assert response.json()["code"] == 20003
        assert response.json()["more_info"] == "https://www.twilio.com/docs/errors/20003"
    assert sims.store.sent() == []


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": "+15550001111", "Body": "x"}, 21604),  # no To
        ({"To": "+14155550123", "Body": "x"}, 21603),  # no From nor MessagingServiceSid
        ({"To": "+14155550123", "From": "+15559999999", "Body": "x"}, 21606),  # not the account's number
        ({"To": "not-a-number", "From": "+15550001111", "Body": "x"}, 21211),
        ({"To": "+14155550123", "From": "+15550001111"}, 21602),  # neither Body nor MediaUrl
        ({"To": "+14155550123", "From": "+15550001111", "Body": "x" * 1601}, 21617),
        ({"To": "+14155550123", "From": "+15550001111", "MediaUrl": [f"https://e.x/{n}" for n in range(11)]}, 21623),
    ],
)
def test_twilio_malformed_sends_get_400_with_twilio_error_json(
    sims: ProviderSimulators, config: Config, form: dict[str, Any], code: int
) -> None:
    response = twilio_send(sims, asset(config, "sms"), form)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["status"] == 400
    assert body["message"]
    assert body["more_info"].endswith(str(code))
    assert sims.store.sent() == []


def test_twilio_json_body_is_not_read(sims: ProviderSimulators, config: Config) -> None:
    # Twilio reads form fields only; a JSON body leaves To empty (error 21604).
    sms = asset(config, "sms")
    url = f"{sims.base_url}/twilio/2010-04-01/Accounts/{sms['account_sid']}/Messages.json"
    response = requests.post(
        url, json={"To": "+14155550123"}, auth=(str(sms["account_sid"]), str(sms["auth_token"])), timeout=5
    )
    assert (response.status_code, response.json()["code"]) == (400, 21604)


def test_twilio_unknown_account_path_is_404(sims: ProviderSimulators, config: Config) -> None:
    sms = asset(config, "sms")
    url = f"{sims.base_url}/twilio/2010-04-01/Accounts/ACother/Messages.json"
    response = requests.post(
        url, data={"To": "+1", "Body": "x"}, auth=(str(sms["account_sid"]), str(sms["auth_token"])), timeout=5
    )
    assert (response.status_code, response.json()["code"]) == (404, 20404)
    assert requests.get(f"{sims.base_url}/twilio/nothing/here", timeout=5).status_code == 404


def test_twilio_fail_next_429_with_retry_after_then_accepts(sims: ProviderSimulators, config: Config) -> None:
    sms = asset(config, "sms")
    form = {"To": "+14155550123", "From": sms["number"], "Body": "x"}
    sims.fail_next("sms", 2, 429, retry_after=7)

    first, second, third = (twilio_send(sims, sms, form) for _ in range(3))

    for response in (first, second):
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.json()["code"] == 20429
    assert third.status_code == 201
    assert len(sims.store.sent("sms")) == 1
    assert [r["status"] for r in sims.store.requests("sms")] == [429, 429, 201]


def test_twilio_permanent_code_and_down(sims: ProviderSimulators, config: Config) -> None:
    sms = asset(config, "sms")
    form = {"To": "+14155550123", "From": sms["number"], "Body": "x"}
    sims.fail_next("sms", 1, 400, error_code=21610)
    unsubscribed = twilio_send(sims, sms, form)
    sims.set_down("sms")
    down = twilio_send(sims, sms, form)
    sims.set_down("sms", down=False)
    up = twilio_send(sims, sms, form)

    assert (unsubscribed.status_code, unsubscribed.json()["code"]) == (400, 21610)
    assert (down.status_code, down.json()["code"]) == (503, 20503)
    assert up.status_code == 201


def test_twilio_media_needs_basic_auth(sims: ProviderSimulators, config: Config) -> None:
    sms = asset(config, "sms")
    file_id = sims.files.put(b"\x89PNG photo", "image/png", "photo.png")
    sid = str(sms["account_sid"])
    url = f"{sims.base_url}/twilio/2010-04-01/Accounts/{sid}/Messages/MM{'0' * 32}/Media/{file_id}"

    ok = requests.get(url, auth=(sid, str(sms["auth_token"])), timeout=5)
    refused = requests.get(url, timeout=5)

    assert ok.status_code == 200
    assert ok.content == b"\x89PNG photo"
    assert ok.headers["Content-Type"] == "image/png"
    assert refused.status_code == 401


# -- Messenger ---------------------------------------------------------------------------------------


def messenger_send(sims: ProviderSimulators, page: Asset, body: Any, token: str | None = None):
    url = f"{sims.base_url}/graph/{page['graph_version']}/{page['page_id']}/messages"
    headers = {"Authorization": f"Bearer {token or page['page_access_token']}"}
    return requests.post(url, json=body, headers=headers, timeout=5)


def text_to(psid: str, text: str = "Hi", **extra: Any) -> dict[str, Any]:
    return {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": {"text": text}, **extra}


def test_messenger_text_is_accepted_and_recorded(sims: ProviderSimulators, config: Config) -> None:
    page = asset(config, "messenger")
    response = messenger_send(sims, page, text_to("6781234567890123", "Bonjour ! 😊"))

    assert response.status_code == 200
    answer = response.json()
    assert answer["recipient_id"] == "6781234567890123"
    assert answer["message_id"].startswith("m_")
    [sent] = sims.store.sent("messenger", "6781234567890123")
    assert (sent["asset"], sent["kind"], sent["text"]) == (page.name, "text", "Bonjour ! 😊")
    assert sent["provider_id"] == answer["message_id"]


def test_messenger_typing_and_attachment(sims: ProviderSimulators, config: Config) -> None:
    page = asset(config, "messenger")
    typing = messenger_send(sims, page, {"recipient": {"id": "42"}, "sender_action": "typing_on"})
    attachment = {"type": "image", "payload": {"url": "https://ece.example.com/f/1.png", "is_reusable": True}}
    file = messenger_send(
        sims, page, {"recipient": {"id": "42"}, "messaging_type": "RESPONSE", "message": {"attachment": attachment}}
    )

    assert typing.status_code == 200
    assert typing.json() == {"recipient_id": "42"}
    assert file.status_code == 200
    kinds = [(s["kind"], s["file"] and s["file"]["url"]) for s in sims.store.sent("messenger", "42")]
    assert kinds == [("typing_on", None), ("file", "https://ece.example.com/f/1.png")]


def test_messenger_wrong_token_401_other_assets_token_403(sims: ProviderSimulators, config: Config) -> None:
    page = asset(config, "messenger")
    whatsapp_token = str(asset(config, "whatsapp")["access_token"])

    wrong = messenger_send(sims, page, text_to("42"), token="bogus")
    other = messenger_send(sims, page, text_to("42"), token=whatsapp_token)

    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == 190
    assert wrong.json()["error"]["type"] == "OAuthException"
    assert other.status_code == 403
    assert other.json()["error"]["code"] == 200
    assert sims.store.sent() == []


@pytest.mark.parametrize(
    "body",
    [
        {"messaging_type": "RESPONSE", "message": {"text": "x"}},  # no recipient
        {"recipient": {"id": "42"}, "messaging_type": "RESPONSE"},  # neither message nor sender_action
        {"recipient": {"id": "42"}, "messaging_type": "SOON", "message": {"text": "x"}},
        {"recipient": {"id": "42"}, "messaging_type": "MESSAGE_TAG", "message": {"text": "x"}},  # no tag
        {"recipient": {"id": "42"}, "messaging_type": "RESPONSE", "message": {"text": "x" * 2001}},
        {"recipient": {"id": "42"}, "sender_action": "dance"},
    ],
)
def test_messenger_malformed_is_400_code_100(sims: ProviderSimulators, config: Config, body: dict[str, Any]) -> None:
    response = messenger_send(sims, asset(config, "messenger"), body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 100
    assert error["message"].startswith("(#100)")
    assert error["fbtrace_id"]


def test_messenger_unknown_page_is_404(sims: ProviderSimulators, config: Config) -> None:
    page = asset(config, "messenger")
    url = f"{sims.base_url}/graph/v21.0/999/messages"
    response = requests.post(
        url, json=text_to("42"), headers={"Authorization": f"Bearer {page['page_access_token']}"}, timeout=5
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 100


def test_messenger_window_2018278_and_human_agent_tag(sims: ProviderSimulators, config: Config) -> None:
    page = asset(config, "messenger")
    tagged = {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}

    sims.store.set_last_inbound("messenger", page.name, "42", time.time() - 2 * HOUR)
    inside = messenger_send(sims, page, text_to("42", "inside 24 h"))
    sims.store.set_last_inbound("messenger", page.name, "42", time.time() - 25 * HOUR)
    closed = messenger_send(sims, page, text_to("42", "after 25 h"))
    human_agent = messenger_send(sims, page, {**text_to("42", "tagged after 25 h"), **tagged})
    sims.store.set_last_inbound("messenger", page.name, "42", time.time() - 8 * 24 * HOUR)
    too_late = messenger_send(sims, page, {**text_to("42", "tagged after 8 days"), **tagged})

    assert inside.status_code == 200
    for response in (closed, too_late):
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["error_subcode"]) == (10, 2018278)
    assert human_agent.status_code == 200
    assert [s["text"] for s in sims.store.sent("messenger", "42")] == ["inside 24 h", "tagged after 25 h"]
    assert sims.store.sent("messenger", "42")[1]["tag"] == "HUMAN_AGENT"


def test_messenger_fail_next_rate_limit(sims: ProviderSimulators, config: Config) -> None:
    page = asset(config, "messenger")
    sims.fail_next("messenger", 1, 429, retry_after=2)
    limited = messenger_send(sims, page, text_to("42"))
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.json()["error"]["code"] == 613
    assert messenger_send(sims, page, text_to("42")).status_code == 200


def test_messenger_cdn_needs_no_auth(sims: ProviderSimulators) -> None:
    file_id = sims.files.put(b"GIF89a", "image/gif", "a.gif")
    response = requests.get(f"{sims.base_url}/graph/cdn/{file_id}", timeout=5)
    assert (response.status_code, response.content, response.headers["Content-Type"]) == (200, b"GIF89a", "image/gif")


# -- WhatsApp ----------------------------------------------------------------------------------------


def whatsapp_send(sims: ProviderSimulators, number: Asset, body: Any, token: str | None = None):
    url = f"{sims.base_url}/graph/{number['graph_version']}/{number['phone_number_id']}/messages"
    return requests.post(
        url, json=body, headers={"Authorization": f"Bearer {token or number['access_token']}"}, timeout=5
    )


def wa_text(to: str, text: str = "Olá") -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": text, "preview_url": False},
    }


def test_whatsapp_text_is_accepted_and_recorded(sims: ProviderSimulators, config: Config) -> None:
    number = asset(config, "whatsapp")
    response = whatsapp_send(sims, number, wa_text("5511987654321", "Seu pedido saiu"))

    assert response.status_code == 200
    answer = response.json()
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": "5511987654321", "wa_id": "5511987654321"}]
    wamid = answer["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    [sent] = sims.store.sent("whatsapp", "5511987654321")
    assert (sent["asset"], sent["kind"], sent["text"], sent["provider_id"]) == (
        number.name,
        "text",
        "Seu pedido saiu",
        wamid,
    )


def test_whatsapp_document_by_link(sims: ProviderSimulators, config: Config) -> None:
    body = {
        "messaging_product": "whatsapp",
        "to": "16315551181",
        "type": "document",
        "document": {"link": "https://ece.example.com/f/inv.pdf", "filename": "inv.pdf", "caption": "Your invoice"},
    }
    assert whatsapp_send(sims, asset(config, "whatsapp"), body).status_code == 200
    [sent] = sims.store.sent("whatsapp")
    assert sent["kind"] == "file"
    assert sent["text"] == "Your invoice"
    assert (sent["file"]["url"], sent["file"]["name"]) == ("https://ece.example.com/f/inv.pdf", "inv.pdf")


def test_whatsapp_window_131047_but_template_allowed(sims: ProviderSimulators, config: Config) -> None:
    number = asset(config, "whatsapp")
    sims.store.set_last_inbound("whatsapp", number.name, "16315551181", time.time() - 25 * HOUR)
    template = {
        "messaging_product": "whatsapp",
        "to": "16315551181",
        "type": "template",
        "template": {"name": "reopen", "language": {"code": "en"}},
    }

    closed = whatsapp_send(sims, number, wa_text("16315551181"))
    reopened = whatsapp_send(sims, number, template)

    assert closed.status_code == 400
    error = closed.json()["error"]
    assert error["code"] == 131047
    assert "24 hours" in error["error_data"]["details"]
    assert reopened.status_code == 200
    assert [s["kind"] for s in sims.store.sent("whatsapp")] == ["template"]


def test_whatsapp_typing_names_the_customers_last_message(sims: ProviderSimulators, config: Config) -> None:
    number = asset(config, "whatsapp")
    sims.store.note_inbound("whatsapp", number.name, "16315551181", message_id="wamid.LAST")
    body = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.LAST",
        "typing_indicator": {"type": "text"},
    }

    response = whatsapp_send(sims, number, body)

    assert (response.status_code, response.json()) == (200, {"success": True})
    [sent] = sims.store.sent("whatsapp", "16315551181")
    assert sent["kind"] == "typing_on"


def test_whatsapp_wrong_token_and_malformed(sims: ProviderSimulators, config: Config) -> None:
    number = asset(config, "whatsapp")
    wrong = whatsapp_send(sims, number, wa_text("1555"), token="bogus")
    no_product = whatsapp_send(sims, number, {"to": "1555", "type": "text", "text": {"body": "x"}})
    no_body = whatsapp_send(sims, number, {"messaging_product": "whatsapp", "to": "1555", "type": "text"})

    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, 190)
    for response in (no_product, no_body):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == 100
        assert error["error_data"]["messaging_product"] == "whatsapp"
    assert sims.store.sent() == []


def test_whatsapp_fail_next_500_is_131000(sims: ProviderSimulators, config: Config) -> None:
    number = asset(config, "whatsapp")
    sims.fail_next("whatsapp", 1, 500)
    failed = whatsapp_send(sims, number, wa_text("1555"))
    assert (failed.status_code, failed.json()["error"]["code"]) == (500, 131000)
    assert whatsapp_send(sims, number, wa_text("1555")).status_code == 200


def test_whatsapp_media_id_to_url_to_bytes_with_bearer(sims: ProviderSimulators, config: Config) -> None:
    number = asset(config, "whatsapp")
    data = os.urandom(300)
    media_id = sims.files.put(data, "image/jpeg", "photo.jpg")
    bearer = {"Authorization": f"Bearer {number['access_token']}"}

    info = requests.get(f"{sims.base_url}/graph/{number['graph_version']}/{media_id}", headers=bearer, timeout=5)
    assert info.status_code == 200
    meta = info.json()
    assert (meta["id"], meta["mime_type"], meta["file_size"]) == (media_id, "image/jpeg", 300)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    download = requests.get(meta["url"], headers=bearer, timeout=5)
    assert (download.status_code, download.content) == (200, data)

    assert requests.get(meta["url"], timeout=5).status_code == 401
    no_auth = requests.get(f"{sims.base_url}/graph/v21.0/{media_id}", timeout=5)
    assert no_auth.status_code == 401
    unknown = requests.get(f"{sims.base_url}/graph/v21.0/123", headers=bearer, timeout=5)
    assert unknown.status_code == 404


# -- Apple ---------------------------------------------------------------------------------------------


def apple_headers(business: Asset, *, secret: str | None = None, iss: str | None = None) -> dict[str, str]:
    # Outbound JWT: HS256 with the base64-decoded secret, iss = MSP id, iat = now
    # (docs/protocols/channels.md, "Apple: JWT authorization").
    claims = {"iss": iss or str(business["msp_id"]), "iat": int(time.time())}
    token = jwt.encode(claims, base64.b64decode(secret or str(business["secret"])), algorithm="HS256")
    return {"Authorization": f"Bearer {token}", "source-id": str(business["business_id"])}


def apple_message(
    sims: ProviderSimulators,
    business: Asset,
    opaque: str,
    fields: dict[str, Any],
    *,
    message_id: str | None = None,
    secret: str | None = None,
    iss: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> tuple[requests.Response, str]:
    """POST /v1/message with the body and headers of docs/protocols/channels.md, "Apple: sending";
    returns (response, the id used)."""
    message_id = message_id or str(uuid.uuid4())
    body = {"v": 1, "id": message_id, "sourceId": str(business["business_id"]), "destinationId": opaque, **fields}
    headers = {
        **apple_headers(business, secret=secret, iss=iss),
        "id": message_id,
        "destination-id": opaque,
        "auto-reply": "false",
        "Content-Type": "application/json",
        **(extra_headers or {}),
    }
    response = requests.post(f"{sims.base_url}/apple/v1/message", data=json.dumps(body), headers=headers, timeout=5)
    return response, message_id


OPAQUE = "urn:mbid:AQAAY5nH0LcN1ixBs0OQ8dEb9lEr4tB4Tj1xJ3mQ0cD"


def test_apple_text_is_accepted_and_recorded(sims: ProviderSimulators, config: Config) -> None:
    business = asset(config, "apple")
    response, message_id = apple_message(sims, business, OPAQUE, {"type": "text", "body": "Your order shipped"})

    assert response.status_code == 200
    assert response.content == b""
    [sent] = sims.store.sent("apple", OPAQUE)
    assert (sent["asset"], sent["kind"], sent["text"]) == (business.name, "text", "Your order shipped")
    assert sent["key"] == message_id


def test_apple_typing_and_system_message(sims: ProviderSimulators, config: Config) -> None:
    business = asset(config, "apple")
    apple_message(sims, business, OPAQUE, {"type": "typing_start"})
    body = {"v": 1, "type": "text", "body": "Welcome", "sourceId": str(business["business_id"])}
    message_id = str(uuid.uuid4())
    headers = {**apple_headers(business), "id": message_id, "destination-id": OPAQUE, "auto-reply": "true"}
    system = requests.post(
        f"{sims.base_url}/apple/v1/message",
        json={**body, "id": message_id, "destinationId": OPAQUE},
        headers=headers,
        timeout=5,
    )
    apple_message(sims, business, OPAQUE, {"type": "typing_end"})

    assert system.status_code == 200
    assert [s["kind"] for s in sims.store.sent("apple", OPAQUE)] == ["typing_on", "system", "typing_off"]


def test_apple_auth_missing_401_wrong_secret_or_iss_403(sims: ProviderSimulators, config: Config) -> None:
    business = asset(config, "apple")
    wrong_secret = base64.b64encode(b"another-secret-of-32-bytes-long!").decode()

    missing = requests.post(
        f"{sims.base_url}/apple/v1/message", json={}, headers={"source-id": str(business["business_id"])}, timeout=5
    )
    bad_key, _ = apple_message(sims, business, OPAQUE, {"type": "text", "body": "x"}, secret=wrong_secret)
    bad_iss, _ = apple_message(sims, business, OPAQUE, {"type": "text", "body": "x"}, iss="another-msp")
    other_business, _ = apple_message(
        sims, business, OPAQUE, {"type": "text", "body": "x"}, extra_headers={"source-id": "not-our-business"}
    )

    assert missing.status_code == 401
    assert bad_key.status_code == 403
    assert bad_iss.status_code == 403
    assert other_business.status_code == 403
    assert sims.store.sent() == []


def test_apple_malformed_is_400(sims: ProviderSimulators, config: Config) -> None:
    business = asset(config, "apple")
    mismatched_id, _ = apple_message(
        sims, business, OPAQUE, {"type": "text", "body": "x"}, extra_headers={"id": str(uuid.uuid4())}
    )
    no_body, _ = apple_message(sims, business, OPAQUE, {"type": "text"})
    unknown_type, _ = apple_message(sims, business, OPAQUE, {"type": "dance"})

    for response in (mismatched_id, no_body, unknown_type):
        assert response.status_code == 400
        assert response.json()["message"]
    assert sims.store.sent() == []


def test_apple_duplicate_id_is_acknowledged_and_recorded_once(sims: ProviderSimulators, config: Config) -> None:
    business = asset(config, "apple")
    first, message_id = apple_message(sims, business, OPAQUE, {"type": "text", "body": "once"})
    again, _ = apple_message(sims, business, OPAQUE, {"type": "text", "body": "once"}, message_id=message_id)

    assert (first.status_code, again.status_code) == (200, 200)
    [sent] = sims.store.sent("apple")
    assert sent["duplicate"] == 1
    assert sent["key"] == message_id


def test_apple_upload_round_trip_stores_the_decrypted_file(sims: ProviderSimulators, config: Config) -> None:
    business = asset(config, "apple")
    plain = os.urandom(5000)
    key = os.urandom(32)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()  # AES-256-CTR, zero IV
    encrypted = encryptor.update(plain) + encryptor.finalize()

    slot = requests.get(
        f"{sims.base_url}/apple/v1/preUpload",
        headers={**apple_headers(business), "size": str(len(encrypted))},
        timeout=5,
    )
    assert slot.status_code == 200
    slot_urls = slot.json()
    upload = requests.post(
        slot_urls["upload-url"],
        data=encrypted,
        headers={"Content-Type": "application/octet-stream"},
        timeout=5,
    )
    assert upload.status_code == 200
    single = upload.json()["singleFile"]
    assert single["fileSize"] == len(encrypted)
    assert single["fileChecksum"] == base64.b64encode(b"\x01" + hashlib.sha1(encrypted).digest()).decode()
    attachment = {
        "name": "receipt.pdf",
        "mimeType": "application/pdf",
        "size": len(plain),
        "signature-base64": single["fileChecksum"],
        "url": slot_urls["mmcs-url"],
        "owner": slot_urls["mmcs-owner"],
        "key": "00" + key.hex(),
    }

    response, _ = apple_message(sims, business, OPAQUE, {"type": "text", "body": "\ufffc", "attachments": [attachment]})

    assert response.status_code == 200
    [sent] = sims.store.sent("apple", OPAQUE)
    assert sent["kind"] == "file"
    assert (sent["file"]["name"], sent["file"]["mime"], sent["file"]["size"]) == (
        "receipt.pdf",
        "application/pdf",
        len(plain),
    )
    assert sent["file"]["data"] == plain
    assert requests.get(slot_urls["mmcs-url"], timeout=5).content == encrypted


def test_apple_upload_size_and_signature_are_checked(sims: ProviderSimulators, config: Config) -> None:
    business = asset(config, "apple")
    slot = requests.get(
        f"{sims.base_url}/apple/v1/preUpload", headers={**apple_headers(business), "size": "10"}, timeout=5
    ).json()
    wrong_size = requests.post(slot["upload-url"], data=b"123", timeout=5)
    assert wrong_size.status_code == 400
    assert requests.post(slot["upload-url"], data=b"0123456789", timeout=5).status_code == 200
    attachment = {
        "name": "a.txt",
        "mimeType": "text/plain",
        "size": 10,
        "signature-base64": base64.b64encode(b"\x01" + bytes(20)).decode(),
        "url": slot["mmcs-url"],
        "owner": slot["mmcs-owner"],
        "key": "00" + bytes(32).hex(),
    }
    response, _ = apple_message(sims, business, OPAQUE, {"type": "text", "body": "\ufffc", "attachments": [attachment]})
    assert response.status_code == 400
    assert "signature" in response.json()["message"]
    no_size = requests.get(f"{sims.base_url}/apple/v1/preUpload", headers=apple_headers(business), timeout=5)
    assert no_size.status_code == 400


def test_apple_pre_download_of_a_customer_file(sims: ProviderSimulators, config: Config) -> None:
    business = asset(config, "apple")
    encrypted = os.urandom(64)
    file_id = sims.files.put(encrypted, "application/octet-stream", "photo.jpg")
    url = f"{sims.base_url}/apple/mmcs/{file_id}"
    signature = base64.b64encode(b"\x01" + hashlib.sha1(encrypted).digest()).decode()
    owner = "com.apple.message.attachments.sandbox"

    ticket = requests.get(
        f"{sims.base_url}/apple/v1/preDownload",
        headers={**apple_headers(business), "url": url, "signature": signature, "owner": owner},
        timeout=5,
    )
    assert ticket.status_code == 200
    download = requests.get(ticket.json()["download-url"], timeout=5)
    assert (download.status_code, download.content) == (200, encrypted)

    unauthenticated = requests.get(
        f"{sims.base_url}/apple/v1/preDownload", headers={"url": url, "signature": signature, "owner": owner}, timeout=5
    )
    assert unauthenticated.status_code == 401


def test_apple_fail_next_and_down(sims: ProviderSimulators, config: Config) -> None:
    business = asset(config, "apple")
    sims.fail_next("apple", 1, 503)
    failed, message_id = apple_message(sims, business, OPAQUE, {"type": "text", "body": "x"})
    retried, _ = apple_message(sims, business, OPAQUE, {"type": "text", "body": "x"}, message_id=message_id)
    sims.set_down()
    down, _ = apple_message(sims, business, OPAQUE, {"type": "text", "body": "y"})

    assert failed.status_code == 503
    assert retried.status_code == 200
    assert down.status_code == 503
    [sent] = sims.store.sent("apple")
    assert sent["duplicate"] == 0


# -- in-app --------------------------------------------------------------------------------------------


def inapp_post(
    sims: ProviderSimulators, app: Asset, body: dict[str, Any], *, secret: str | None = None, at: float | None = None
) -> requests.Response:
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time() if at is None else at))
    key = (secret or str(app["secret"])).encode()
    signature = "sha256=" + hmac.new(key, timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    path = requests.utils.urlparse(str(app["delivery_url"])).path
    headers = {"Content-Type": "application/json", "X-Timestamp": timestamp, "X-Signature": signature}
    return requests.post(f"{sims.base_url}{path}", data=raw, headers=headers, timeout=5)


def inapp_text(message_id: str = "relay-key-1", text: str = "Hello") -> dict[str, Any]:
    return {
        "message_id": message_id,
        "customer_id": "user-48213",
        "type": "text",
        "text": text,
        "sent_at": "2026-01-01T09:30:12Z",
    }


def test_inapp_delivery_is_accepted_and_recorded_once(sims: ProviderSimulators, config: Config) -> None:
    app = asset(config, "inapp")
    first = inapp_post(sims, app, inapp_text())
    again = inapp_post(sims, app, inapp_text())

    assert (first.status_code, again.status_code) == (200, 200)
    [sent] = sims.store.sent("inapp", "user-48213")
    assert (sent["asset"], sent["kind"], sent["text"], sent["key"]) == (app.name, "text", "Hello", "relay-key-1")
    assert sent["duplicate"] == 1


def test_inapp_kinds(sims: ProviderSimulators, config: Config) -> None:
    app = asset(config, "inapp")
    base = {"customer_id": "u1", "sent_at": "2026-01-01T09:30:12+00:00"}
    bodies = [
        {**base, "message_id": "1", "type": "typing_start"},
        {**base, "message_id": "2", "type": "system", "text": "An agent joined"},
        {
            **base,
            "message_id": "3",
            "type": "attachment",
            "attachments": [{"url": "https://e.x/a.pdf", "mime_type": "application/pdf", "size": 10, "name": "a.pdf"}],
        },
        {**base, "message_id": "4", "type": "typing_stop"},
        {**base, "message_id": "5", "type": "close"},
    ]
    for body in bodies:
        assert inapp_post(sims, app, body).status_code == 200
    sent = sims.store.sent("inapp", "u1")
    assert [s["kind"] for s in sent] == ["typing_on", "system", "file", "typing_off", "close"]
    assert sent[2]["file"] == {
        "url": "https://e.x/a.pdf",
        "name": "a.pdf",
        "mime": "application/pdf",
        "size": 10,
        "data": None,
    }


def test_inapp_signature_checks(sims: ProviderSimulators, config: Config) -> None:
    app = asset(config, "inapp")
    wrong = inapp_post(sims, app, inapp_text("a"), secret="not-the-secret-at-all")
    stale = inapp_post(sims, app, inapp_text("b"), at=time.time() - 301)
    missing = requests.post(f"{sims.base_url}/inapp", json=inapp_text("c"), timeout=5)

    assert (wrong.status_code, wrong.json()["error"]) == (403, "invalid_signature")
    assert stale.status_code == 403
    assert (missing.status_code, missing.json()["error"]) == (401, "missing_signature")
    assert sims.store.sent() == []


def test_inapp_malformed_and_unknown_path(sims: ProviderSimulators, config: Config) -> None:
    app = asset(config, "inapp")
    unknown_type = inapp_post(sims, app, {**inapp_text(), "type": "dance"})
    no_text = inapp_post(sims, app, {**inapp_text(), "text": None})
    elsewhere = requests.post(f"{sims.base_url}/inapp/elsewhere", json=inapp_text(), timeout=5)

    assert (unknown_type.status_code, unknown_type.json()["field"]) == (400, "type")
    assert (no_text.status_code, no_text.json()["field"]) == (400, "text")
    assert elsewhere.status_code == 404


def test_inapp_fail_next_429(sims: ProviderSimulators, config: Config) -> None:
    app = asset(config, "inapp")
    sims.fail_next("inapp", 1, 429, retry_after=1)
    limited = inapp_post(sims, app, inapp_text("k"))
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    assert inapp_post(sims, app, inapp_text("k")).status_code == 200
    assert len(sims.store.sent("inapp")) == 1


def test_inapp_files_need_no_auth(sims: ProviderSimulators) -> None:
    file_id = sims.files.put(b"%PDF-1.7", "application/pdf", "s.pdf")
    response = requests.get(f"{sims.base_url}/inapp/files/{file_id}", timeout=5)
    assert (response.status_code, response.content) == (200, b"%PDF-1.7")


# -- store and control surface -------------------------------------------------------------------------


def test_wait_for_and_clear(sims: ProviderSimulators, config: Config) -> None:
    app = asset(config, "inapp")
    with pytest.raises(TimeoutError):
        sims.store.wait_for(lambda: sims.store.sent("inapp"), timeout=0.1)
    inapp_post(sims, app, inapp_text())
    assert sims.store.wait_for(lambda: sims.store.sent("inapp"), timeout=1)[0]["text"] == "Hello"
    sims.store.clear()
    assert sims.store.sent() == []


def test_control_endpoints(sims: ProviderSimulators, config: Config) -> None:
    put = requests.post(
        f"{sims.base_url}/providers/files", data=b"bytes", headers={"Content-Type": "image/png", "X-File-Name": "a.png"}
    )
    assert put.status_code == 201
    assert sims.files.get(put.json()["id"]).data == b"bytes"

    inbound = {"channel": "whatsapp", "asset": "test-whatsapp", "customer": "1555", "message_id": "wamid.X"}
    assert requests.post(f"{sims.base_url}/providers/inbound", json=inbound, timeout=5).status_code == 204
    assert sims.store.last_inbound("whatsapp", "test-whatsapp", "1555").message_id == "wamid.X"

    fail = {"channel": "sms", "count": 1, "status": 500}
    assert requests.post(f"{sims.base_url}/providers/fail", json=fail, timeout=5).status_code == 204
    sms = asset(config, "sms")
    assert twilio_send(sims, sms, {"To": "+14155550123", "From": sms["number"], "Body": "x"}).status_code == 500
    assert twilio_send(sims, sms, {"To": "+14155550123", "From": sms["number"], "Body": "x"}).status_code == 201
    sent = requests.get(f"{sims.base_url}/providers/sent", params={"channel": "sms"}, timeout=5).json()["sent"]
    assert [s["text"] for s in sent] == ["x"]
    bad = requests.post(f"{sims.base_url}/providers/fail", json={"channel": "fax", "status": 500}, timeout=5)
    assert bad.status_code == 400
