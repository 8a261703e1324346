"""The `verify` step's client (connector/flows/verify.py) against `responses`: what it sends, how it
signs, and how each answer of the identity service is sorted (docs/protocols/bots.md).

The signature is checked with the sandbox's reading of the contract (connector/sandbox/signing.py),
which shares no code with the connector's, so a pass shows two readings agree.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from werkzeug.serving import make_server

from connector.errors import PermanentError, RetryableError
from connector.flows.service import MAX_ANSWER_BYTES, InvalidAnswer, ServiceRefused, ServiceTimeout, ServiceUnavailable
from connector.flows.verify import VerificationFailed, verify, verify_request
from connector.sandbox.signing import inapp_signature
from tests.helpers import self_signed

URL = "https://identity.example.test/verify"
SECRET = "identity-secret"
BODY = verify_request(
    conversation_id="c-1",
    channel="whatsapp",
    locale="en",
    customer_id="+15551230001",
    customer_name="Ana",
    answers={"order_number": "A1001", "email": "ana@example.com"},
)


def signed_by(request: requests.PreparedRequest, secret: str) -> bool:
    stamp = request.headers["X-Connector-Timestamp"]
    body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
    fresh = abs(time.time() - int(stamp)) < 5
    return fresh and request.headers["X-Connector-Signature"] == inapp_signature(secret, stamp, body)


@responses.activate
def test_a_verified_customer_gets_the_service_attributes_and_verified() -> None:
    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        assert signed_by(request, SECRET)
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.body or b"") == BODY
        return 200, {}, json.dumps({"verified": True, "attributes": {"customer_tier": "gold", "orders": 3}})

    responses.add_callback(responses.POST, URL, callback=answer)

    assert verify(URL, SECRET, BODY, timeout=2) == {"verified": "true", "customer_tier": "gold", "orders": "3"}
    assert len(responses.calls) == 1


def test_the_request_body_is_the_documented_one() -> None:
    assert BODY == {
        "conversation_id": "c-1",
        "channel": "whatsapp",
        "locale": "en",
        "customer": {"id": "+15551230001", "name": "Ana"},
        "answers": {"order_number": "A1001", "email": "ana@example.com"},
    }


@responses.activate
def test_a_signature_with_another_secret_does_not_verify() -> None:
    responses.add(responses.POST, URL, json={"verified": True})
    verify(URL, SECRET, BODY, timeout=2)
    assert not signed_by(responses.calls[0].request, "another-secret")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"verified": False, "reason": "no order A1001 for this customer"}, "no order A1001 for this customer"),
        ({"verified": False}, None),
    ],
)
@responses.activate
def test_a_refused_verification_says_why(answer: dict[str, Any], reason: str | None) -> None:
    responses.add(responses.POST, URL, json=answer)
    with pytest.raises(VerificationFailed) as failed:
        verify(URL, SECRET, BODY, timeout=2)
    assert failed.value.reason == reason


@responses.activate
def test_no_answer_in_time_is_a_retryable_timeout_of_the_service() -> None:
    responses.add(responses.POST, URL, body=requests.ReadTimeout("slow"))
    with pytest.raises(ServiceTimeout) as error:
        verify(URL, SECRET, BODY, timeout=1.5)
    assert isinstance(error.value, RetryableError)
    assert error.value.outage
    assert str(error.value) == "identity service: no answer within 1.5 s"


@responses.activate
def test_a_refused_connection_is_retryable() -> None:
    responses.add(responses.POST, URL, body=requests.ConnectionError("refused"))
    with pytest.raises(ServiceUnavailable) as error:
        verify(URL, SECRET, BODY, timeout=1)
    assert error.value.outage


@pytest.mark.parametrize(
    ("status", "headers", "wait", "outage"),
    [
        (503, {"Retry-After": "7"}, 7.0, True),
        (500, {}, None, True),
        (408, {}, None, True),
        (429, {"Retry-After": "3"}, 3.0, False),
    ],
)
@responses.activate
def test_5xx_408_and_429_are_retryable_with_the_server_wait(
    status: int, headers: dict[str, str], wait: float | None, outage: bool
) -> None:
    responses.add(responses.POST, URL, status=status, headers=headers, json={"error": "x"})
    with pytest.raises(ServiceUnavailable) as error:
        verify(URL, SECRET, BODY, timeout=1)
    assert (error.value.wait, error.value.outage) == (wait, outage)
    assert str(error.value).startswith(f"identity service: HTTP {status}")


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (400, "identity service: HTTP 400: the service refused the request"),
        (401, "identity service: HTTP 401: the service refused the signature: the step's secret differs"),
        (403, "identity service: HTTP 403: the service refused the signature"),
        (404, "identity service: HTTP 404: no such path on the service: check the step's url"),
    ],
)
@responses.activate
def test_other_4xx_are_permanent_and_say_what_to_fix(status: int, says: str) -> None:
    responses.add(responses.POST, URL, status=status)
    with pytest.raises(ServiceRefused) as error:
        verify(URL, SECRET, BODY, timeout=1)
    assert isinstance(error.value, PermanentError)
    assert error.value.status == status
    assert error.value.reason.startswith(says)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "identity service: the answer is not JSON"),
        ("[]", "identity service: the answer must be a JSON object"),
        ("{}", "identity service: verified must be true or false"),
        ('{"verified": "yes"}', "identity service: verified must be true or false"),
        ('{"verified": true, "tier": "gold"}', "identity service: unknown field(s) tier"),
        ('{"verified": false, "reason": 3}', "identity service: reason must be text"),
        ('{"verified": true, "attributes": ["gold"]}', "identity service: attributes must be an object"),
        ('{"verified": true, "attributes": {"tier": {"a": 1}}}', "identity service: attributes.tier must be text"),
        ('{"verified": true, "attributes": {"tier": null}}', "identity service: attributes.tier must be text"),
        ('{"verified": true, "attributes": {"": "x"}}', "identity service: attributes: a name must be 1 to 64"),
        ('{"verified": true, "attributes": {"t": "' + "x" * 1025 + '"}}', "identity service: attributes.t is longer"),
        (
            json.dumps({"verified": True, "attributes": {f"a{i}": "x" for i in range(51)}}),
            "identity service: attributes has 51 entries; at most 50",
        ),
        ('{"verified": true, "pad": "' + "x" * MAX_ANSWER_BYTES + '"}', "identity service: the answer is larger"),
    ],
)
@responses.activate
def test_a_malformed_answer_is_permanent_and_names_what_is_wrong(body: str, says: str) -> None:
    responses.add(responses.POST, URL, body=body, content_type="application/json")
    with pytest.raises(InvalidAnswer) as error:
        verify(URL, SECRET, BODY, timeout=1)
    assert isinstance(error.value, PermanentError)
    assert error.value.reason.startswith(says)


def test_a_malformed_url_is_permanent() -> None:
    with pytest.raises(PermanentError, match="check the step's url"):
        verify("https://", SECRET, BODY, timeout=1)


# -- TLS is verified by default ----------------------------------------------------------------


@pytest.fixture
def untrusted_https(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTPS service answering a positive verification, with a certificate nobody trusts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed(tmp_path, "127.0.0.1"))  # its own CA, which no one trusts

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"verified": true}']

    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_port}/verify"
    finally:
        server.shutdown()


def test_a_certificate_that_does_not_verify_is_a_permanent_tls_error(untrusted_https: str) -> None:
    with pytest.raises(PermanentError) as error:
        verify(untrusted_https, SECRET, BODY, timeout=5)
    assert not isinstance(error.value, RetryableError)
    assert "TLS to https://127.0.0.1:" in error.value.reason
    assert "check the service's certificate" in error.value.reason
