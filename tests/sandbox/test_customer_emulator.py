"""The customer emulator against the REAL connector webhook app (served on loopback): every send of
every channel is accepted and lands in the thread's inbox, and the files it sends are retrievable
from the provider simulators the provider's way, with the provider's auth. Also the customer page
and the CLI.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import redis as redis_lib
import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import Flask
from twilio.request_validator import RequestValidator

from connector.channels.base import Attachment, EventKind, InboundEvent, thread_id_for
from connector.config.model import Asset
from connector.runtime import Runtime
from connector.sandbox.customer import CustomerEmulator, customer_blueprint
from connector.sandbox.customer.__main__ import main as cli_main
from connector.sandbox.http import serving
from connector.sandbox.providers import ProviderSimulators
from connector.sandbox.signing import twilio_signature
from connector.store import keys
from tests.conftest import PUBLIC_BASE_URL
from tests.sandbox import CONFIG_DIR

ASSETS = {"sms": "test-sms", "messenger": "test-messenger", "whatsapp": "test-whatsapp", "apple": "test-apple"}
ASSETS["inapp"] = "test-inapp"
CUSTOMERS = {
    "sms": "+14155550123",
    "messenger": "6781234567890123",
    "whatsapp": "5511987654321",
    "apple": "urn:mbid:AQAAY5nH0LcN1ixBs0OQ8dEb9lEr4tB4Tj1xJ3mQ0cD",
    "inapp": "user-48213",
}
CHANNELS = tuple(ASSETS)


@pytest.fixture
def connector(app: Flask) -> Iterator[str]:
    with serving(app) as server:
        yield server.url


@pytest.fixture
def providers(runtime: Runtime) -> Iterator[ProviderSimulators]:
    with serving() as server:  # the simulators build media URLs from their own address
        sims = ProviderSimulators(runtime.config.assets, server.url)
        server.app = sims.create_app()
        yield sims


@pytest.fixture
def emulator(runtime: Runtime, connector: str, providers: ProviderSimulators) -> CustomerEmulator:
    return CustomerEmulator(runtime.config, connector, PUBLIC_BASE_URL, providers)


def inbox(redis: redis_lib.Redis, channel: str, customer: str) -> list[InboundEvent]:
    key = keys.inbox(thread_id_for(channel, ASSETS[channel], customer))
    return [InboundEvent.from_json(raw) for raw in redis.lrange(key, 0, -1)]


def the_asset(runtime: Runtime, channel: str) -> Asset:
    found = runtime.config.asset(channel, ASSETS[channel])
    assert found is not None
    return found


# -- every send of every channel lands in the inbox ------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
def test_send_text_lands_in_the_inbox(
    channel: str, emulator: CustomerEmulator, providers: ProviderSimulators, redis: redis_lib.Redis
) -> None:
    customer = CUSTOMERS[channel]
    response = emulator.send_text(ASSETS[channel], customer, "Où est ma commande ? 📦", profile_name="Ana")

    assert response.status_code == 200
    [event] = inbox(redis, channel, customer)
    assert event.kind is EventKind.MESSAGE
    assert event.text == "Où est ma commande ? 📦"
    assert event.customer == customer
    last = providers.store.last_inbound(channel, ASSETS[channel], customer)
    assert last is not None and abs(last.at - time.time()) < 10
    assert last.message_id == event.provider_id


def test_each_send_has_a_fresh_provider_id(emulator: CustomerEmulator, redis: redis_lib.Redis) -> None:
    for channel in CHANNELS:
        emulator.send_text(ASSETS[channel], CUSTOMERS[channel], "one")
        emulator.send_text(ASSETS[channel], CUSTOMERS[channel], "one")
        events = inbox(redis, channel, CUSTOMERS[channel])
        assert len(events) == 2, channel  # not dropped as a duplicate
        assert events[0].provider_id != events[1].provider_id


@pytest.mark.parametrize("channel", CHANNELS)
def test_send_file_lands_and_is_fetchable_the_providers_way(
    channel: str, emulator: CustomerEmulator, providers: ProviderSimulators, runtime: Runtime, redis: redis_lib.Redis
) -> None:
    customer = CUSTOMERS[channel]
    data = bytes(range(256)) * 40
    response = emulator.send_file(ASSETS[channel], customer, data, "image/jpeg", "photo.jpg", caption="The damage")

    assert response.status_code == 200
    events = inbox(redis, channel, customer)
    [event] = [e for e in events if e.attachments]
    [attachment] = event.attachments
    assert fetch(channel, attachment, the_asset(runtime, channel), providers) == data
    assert "The damage" in " ".join(e.text or "" for e in events)


def fetch(channel: str, attachment: Attachment, asset: Asset, providers: ProviderSimulators) -> bytes:
    """Download a customer's file as the connector must (docs/protocols/channels.md,
    "Inbound media"), checking that
    the provider's auth is required where the provider requires it."""
    base = providers.base_url
    if channel == "sms":
        assert attachment.url.startswith(f"{base}/twilio/2010-04-01/Accounts/{asset['account_sid']}/Messages/MM")
        assert requests.get(attachment.url, timeout=5).status_code == 401
        response = requests.get(attachment.url, auth=(asset["account_sid"], asset["auth_token"]), timeout=5)
    elif channel == "messenger":
        assert attachment.url.startswith(f"{base}/graph/cdn/")
        response = requests.get(attachment.url, timeout=5)
    elif channel == "whatsapp":
        bearer = {"Authorization": f"Bearer {asset['access_token']}"}
        lookup = f"{base}/graph/{asset['graph_version']}/{attachment.media_id}"
        assert requests.get(lookup, timeout=5).status_code == 401
        url = requests.get(lookup, headers=bearer, timeout=5).json()["url"]
        assert requests.get(url, timeout=5).status_code == 401
        response = requests.get(url, headers=bearer, timeout=5)
    elif channel == "apple":
        claims = {"iss": asset["msp_id"], "iat": int(time.time())}
        token = jwt.encode(claims, base64.b64decode(asset["secret"]), algorithm="HS256")
        headers = {
            "source-id": asset["business_id"],
            "url": attachment.url,
            "signature": attachment.extra["signature"],
            "owner": attachment.extra["owner"],
        }
        assert requests.get(f"{base}/apple/v1/preDownload", headers=headers, timeout=5).status_code == 401
        headers["Authorization"] = f"Bearer {token}"
        ticket = requests.get(f"{base}/apple/v1/preDownload", headers=headers, timeout=5)
        encrypted = requests.get(ticket.json()["download-url"], timeout=5).content
        key = bytes.fromhex(attachment.extra["key"][2:])  # hex with a leading "00"
        decryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).decryptor()
        return decryptor.update(encrypted) + decryptor.finalize()
    else:
        assert attachment.url.startswith(f"{base}/inapp/files/")
        response = requests.get(attachment.url, timeout=5)
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize("channel", ["apple", "inapp"])
def test_typing_and_close(channel: str, emulator: CustomerEmulator, redis: redis_lib.Redis) -> None:
    customer = CUSTOMERS[channel]
    emulator.send_typing(ASSETS[channel], customer, True)
    emulator.send_typing(ASSETS[channel], customer, False)
    emulator.send_close(ASSETS[channel], customer)

    kinds = [e.kind for e in inbox(redis, channel, customer)]
    assert kinds == [EventKind.TYPING_START, EventKind.TYPING_END, EventKind.CLOSE]


@pytest.mark.parametrize("channel", ["messenger", "whatsapp"])
def test_postback(channel: str, emulator: CustomerEmulator, redis: redis_lib.Redis) -> None:
    customer = CUSTOMERS[channel]
    assert emulator.send_postback(ASSETS[channel], customer, "TALK_TO_AGENT", "Talk to an agent").status_code == 200

    [event] = inbox(redis, channel, customer)
    assert (event.kind, event.payload, event.text) == (EventKind.POSTBACK, "TALK_TO_AGENT", "Talk to an agent")


def test_what_a_channel_cannot_do_is_a_value_error(emulator: CustomerEmulator) -> None:
    for channel in ("sms", "messenger", "whatsapp"):
        with pytest.raises(ValueError, match="types"):
            emulator.send_typing(ASSETS[channel], CUSTOMERS[channel], True)
        with pytest.raises(ValueError, match="close"):
            emulator.send_close(ASSETS[channel], CUSTOMERS[channel])
    for channel in ("sms", "apple", "inapp"):
        with pytest.raises(ValueError, match="postback"):
            emulator.send_postback(ASSETS[channel], CUSTOMERS[channel], "P", "T")
    with pytest.raises(ValueError, match="wa_id"):
        emulator.send_text("test-whatsapp", "+1 555", "x")
    with pytest.raises(ValueError, match="no asset named"):
        emulator.send_text("nope", "1", "x")


def test_twilio_signature_matches_twilios_own_validator() -> None:
    params = [("Body", "hi & bye"), ("From", "+14155550123"), ("To", "+15550001111"), ("NumMedia", "0")]
    url = "https://connector.example.com/webhooks/sms/test-sms"
    expected = RequestValidator("twilio-test-token").compute_signature(url, dict(params))
    assert twilio_signature("twilio-test-token", url, params) == expected


def test_check_raises_on_refusal_unless_disabled(runtime: Runtime, connector: str, providers: ProviderSimulators):
    # Signed for another public URL: the connector refuses the Twilio signature (403).
    wrong_url = CustomerEmulator(runtime.config, connector, "https://elsewhere.example.com", providers)
    with pytest.raises(requests.HTTPError):
        wrong_url.send_text("test-sms", CUSTOMERS["sms"], "x")
    assert wrong_url.send_text("test-sms", CUSTOMERS["sms"], "x", check=False).status_code == 403
    assert [h["status"] for h in wrong_url.history("test-sms", CUSTOMERS["sms"])] == [403, 403]


# -- the customer page ---------------------------------------------------------------------------------


def test_page_sends_and_shows_the_conversation(
    emulator: CustomerEmulator, providers: ProviderSimulators, redis: redis_lib.Redis
) -> None:
    page = Flask("customer-page-test")
    page.register_blueprint(customer_blueprint(emulator, providers), url_prefix="/customer")
    client = page.test_client()

    html = client.get("/customer/").get_data(as_text=True)
    assert "test-whatsapp (whatsapp)" in html
    assert "/customer/static/customer.js" in html
    assert client.get("/customer/static/customer.js").status_code == 200

    sent = client.post("/customer/send", data={"asset": "test-inapp", "customer": "user-1", "text": "Hello?"})
    assert sent.get_json()["ok"] is True
    assert [e.text for e in inbox(redis, "inapp", "user-1")] == ["Hello?"]

    # The agent side, as the connector would deliver it to the app.
    for kind, text in (("typing_on", None), ("text", "Hi, I am Alice")):
        providers.store.record(channel="inapp", asset="test-inapp", customer="user-1", kind=kind, text=text)
        if kind == "typing_on":
            state = client.get("/customer/conversation?asset=test-inapp&customer=user-1").get_json()
            assert state["typing"] is True
    state = client.get("/customer/conversation?asset=test-inapp&customer=user-1").get_json()
    assert state["typing"] is False
    assert [(e["who"], e["text"]) for e in state["entries"]] == [("customer", "Hello?"), ("agent", "Hi, I am Alice")]


def test_page_links_a_decrypted_apple_file_and_reports_errors(
    emulator: CustomerEmulator, providers: ProviderSimulators
) -> None:
    page = Flask("customer-page-test")
    page.register_blueprint(customer_blueprint(emulator, providers), url_prefix="/customer")
    client = page.test_client()
    opaque = CUSTOMERS["apple"]
    files = [{"url": "x", "name": "r.pdf", "mime": "application/pdf", "size": 3, "data": b"PDF"}]
    providers.store.record(channel="apple", asset="test-apple", customer=opaque, kind="file", files=files)

    state = client.get("/customer/conversation", query_string={"asset": "test-apple", "customer": opaque}).get_json()
    [entry] = state["entries"]
    link = entry["files"][0]["href"]
    assert client.get(link).data == b"PDF"

    missing = client.post("/customer/send", data={"asset": "test-sms", "customer": "+14155550123"})
    assert missing.status_code == 400
    unsupported = client.post(
        "/customer/send", data={"asset": "test-sms", "customer": "+14155550123", "action": "close"}
    )
    assert (unsupported.status_code, unsupported.get_json()["error"]) == (400, "sms has no customer-side close")


# -- the CLI -------------------------------------------------------------------------------------------


def test_cli_sends_a_text_and_a_file(
    connector: str,
    providers: ProviderSimulators,
    redis: redis_lib.Redis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = ["--connector-url", connector, "--public-base-url", PUBLIC_BASE_URL, "--config-dir", str(CONFIG_DIR)]
    common += ["--sandbox-url", providers.base_url]
    document = tmp_path / "invoice.pdf"
    document.write_bytes(b"%PDF-1.7 invoice")

    assert cli_main(["--channel", "whatsapp", "--customer", "15551230001", "hello", *common]) == 0
    assert capsys.readouterr().out.startswith("200 ")
    assert cli_main(["--asset", "test-whatsapp", "--customer", "15551230001", "--file", str(document), *common]) == 0

    events = inbox(redis, "whatsapp", "15551230001")
    assert events[0].text == "hello"
    [attachment] = events[1].attachments
    assert (attachment.name, attachment.mime_type) == ("invoice.pdf", "application/pdf")
    assert providers.files.get(attachment.media_id).data == b"%PDF-1.7 invoice"
    # The CLI told the simulators over HTTP that the customer wrote (the 24 h window opens).
    assert providers.store.last_inbound("whatsapp", "test-whatsapp", "15551230001").message_id == events[1].provider_id


def test_cli_file_without_the_sandbox_says_what_to_do(
    connector: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = tmp_path / "a.txt"
    document.write_text("x")
    args = ["--channel", "inapp", "--customer", "u1", "--file", str(document), "--connector-url", connector]
    args += ["--config-dir", str(CONFIG_DIR), "--sandbox-url", "http://127.0.0.1:9"]

    assert cli_main(args) == 2
    assert "start the sandbox" in capsys.readouterr().err
