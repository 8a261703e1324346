""" "Test and save" of an ECE integration: one finding per check, each failure in operator words.

ECE's answers come from `responses`; the unreachable host and the untrusted certificate are real
sockets on loopback, so the words are checked against what `requests` really raises."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis as redis_lib
import requests
import responses

from connector.backends import Finding
from connector.backends.ece import checks
from connector.config.model import EntryPoint, Integration
from tests.helpers import self_signed

BASE = "https://ece.example.com:9443"
WS = f"{BASE}/system/ws/v19/clientapplications"
TOKEN_URL = f"{WS}/authentication/oauth2/token"
CHAT = f"{BASE}/system/egain/chat/entrypoint"


def config_url(ep: str) -> str:
    return f"{WS}/messaging/configuration?entrypoint={ep}"


def integration(**overrides: object) -> Integration:
    fields: dict[str, object] = {
        "name": "ece-prod",
        "type": "ece",
        "base_url": BASE,
        "client_key": "key",
        "client_secret": "secret",
        "entry_points": (EntryPoint(name="Support", id="1001"), EntryPoint(name="Sales", id="1002")),
    }
    fields.update(overrides)
    return Integration(**fields)  # type: ignore[arg-type]


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def ece_answers(mocked: responses.RequestsMock, *, sales_config: dict[str, object] | None = None) -> None:
    mocked.post(TOKEN_URL, json={"access_token": "t", "expires_in": 86400, "token_type": "Bearer"})
    for ep in ("1001", "1002"):
        config = {"entryPointConfiguration": [{"entryPoint": {"id": int(ep)}, "lastModified": f"lm-{ep}"}]}
        if ep == "1002" and sales_config is not None:
            mocked.get(config_url(ep), **sales_config)  # type: ignore[arg-type]
        else:
            mocked.get(config_url(ep), json=config)
        mocked.get(f"{CHAT}/chatAllowed/{ep}", json={"allowed": True})


def test_everything_fine(mocked: responses.RequestsMock, redis: redis_lib.Redis) -> None:
    ece_answers(mocked)
    assert checks.test_integration(integration(), redis) == [
        Finding("token", True, "ECE accepted the client key and secret of integration ece-prod"),
        Finding(
            "entry point Support (1001): configuration",
            True,
            "entry point 1001 is bound to the client app (last modified lm-1001)",
        ),
        Finding("entry point Support (1001): active", True, "entry point 1001 is active and accepts chats"),
        Finding(
            "entry point Sales (1002): configuration",
            True,
            "entry point 1002 is bound to the client app (last modified lm-1002)",
        ),
        Finding("entry point Sales (1002): active", True, "entry point 1002 is active and accepts chats"),
    ]


def test_the_token_is_really_tried_even_when_one_is_cached(
    mocked: responses.RequestsMock, redis: redis_lib.Redis
) -> None:
    ece_answers(mocked)
    mocked.post(TOKEN_URL, status=401)
    checks.test_integration(integration(), redis)  # caches the token
    findings = checks.test_integration(integration(), redis)  # the key was revoked meanwhile
    assert findings == [
        Finding(
            "token",
            False,
            "ECE rejected the client key/secret of integration ece-prod: check them in ECE's client application",
        )
    ]


def test_wrong_key_or_secret_stops_the_run(mocked: responses.RequestsMock, redis: redis_lib.Redis) -> None:
    mocked.post(TOKEN_URL, status=401)
    [finding] = checks.test_integration(integration(), redis)
    assert finding == Finding(
        "token",
        False,
        "ECE rejected the client key/secret of integration ece-prod: check them in ECE's client application",
    )


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            {"status": 403},
            "entry point 1002 is not bound to the client app in ECE: add it to the messaging adapter",
        ),
        ({"status": 404}, "no entry point 1002 in ECE"),
        ({"body": requests.ReadTimeout("slow")}, "ECE at ece.example.com:9443 did not answer within 10 s"),
        ({"status": 500}, "ECE answered 500 to configuration (integration ece-prod)"),
    ],
)
def test_entry_point_configuration_failures(
    mocked: responses.RequestsMock, redis: redis_lib.Redis, answer: dict[str, object], message: str
) -> None:
    mocked.assert_all_requests_are_fired = False  # no chatAllowed for the failed entry point
    ece_answers(mocked, sales_config=answer)
    findings = checks.test_integration(integration(), redis)
    assert [f.ok for f in findings] == [True, True, True, False]  # the other entry point is still checked
    assert findings[-1].check == "entry point Sales (1002): configuration"
    assert findings[-1].message.startswith(message)


def test_inactive_entry_point(mocked: responses.RequestsMock, redis: redis_lib.Redis) -> None:
    ece_answers(mocked)
    mocked.replace(responses.GET, f"{CHAT}/chatAllowed/1002", json={"allowed": False})
    findings = checks.test_integration(integration(), redis)
    assert findings[-1] == Finding(
        "entry point Sales (1002): active",
        False,
        "entry point 1002 is not active in ECE (chatAllowed is false): activate it in ECE's administration",
    )


def test_token_timeout(mocked: responses.RequestsMock, redis: redis_lib.Redis) -> None:
    mocked.post(TOKEN_URL, body=requests.ConnectTimeout("connect timed out"))
    [finding] = checks.test_integration(integration(), redis)
    assert not finding.ok
    assert finding.message == (
        "ECE at ece.example.com:9443 did not accept a connection within 3.05 s (integration ece-prod): "
        "check base_url and firewall"
    )


# -- real sockets ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_host_names_host_and_port(redis: redis_lib.Redis) -> None:
    port = free_port()  # nothing listens there: connection refused
    [finding] = checks.test_integration(integration(base_url=f"https://127.0.0.1:{port}"), redis)
    assert finding == Finding(
        "token",
        False,
        f"cannot reach ECE at 127.0.0.1:{port} (integration ece-prod): check base_url, DNS and firewall",
    )


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on loopback with a self-signed certificate nobody trusts."""
    cert_file, key_file = self_signed(tmp_path, "ece.sandbox")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert_file
    finally:
        server.shutdown()
        server.server_close()


def test_untrusted_certificate(redis: redis_lib.Redis, self_signed_server: tuple[str, Path]) -> None:
    url, _ = self_signed_server
    [finding] = checks.test_integration(integration(base_url=url), redis)
    assert not finding.ok
    assert finding.message == (
        "the certificate of host 127.0.0.1 is not trusted: set ca_bundle or fix the certificate "
        "(self-signed certificate)"
    )


def test_ca_bundle_trusts_the_certificate(redis: redis_lib.Redis, self_signed_server: tuple[str, Path]) -> None:
    url, cert_file = self_signed_server
    [finding] = checks.test_integration(integration(base_url=url, ca_bundle=str(cert_file)), redis)
    assert finding.message.startswith("ECE answered 500 to token")  # TLS passed; the server's answer is next
