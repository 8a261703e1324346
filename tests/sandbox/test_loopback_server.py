"""The simulators' HTTP server: connections kept alive like the real services', closed on stop."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from connector.sandbox.http import LoopbackServer


def answer(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers with the client's port, so a test sees whether two calls shared a connection."""
    body = environ["REMOTE_PORT"].encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server():
    server = LoopbackServer(answer, name="test").start()
    yield server
    server.stop()


def test_a_client_keeps_its_connection_across_calls(server) -> None:
    with requests.Session() as session:
        first = session.get(f"{server.url}/ece/system/ws/v12/a", timeout=5)
        second = session.post(f"{server.url}/ece/system/ws/v12/b", json={"n": 1}, timeout=5)

    assert first.headers.get("Connection", "").lower() != "close"
    assert first.text == second.text  # the same client port: one connection


def test_without_keep_alive_every_call_has_its_own_connection() -> None:
    server = LoopbackServer(answer, name="node", keep_alive=False).start()
    try:
        with requests.Session() as session:
            first = session.get(f"{server.url}/finesse/api/SystemInfo", timeout=5)
            second = session.get(f"{server.url}/finesse/api/SystemInfo", timeout=5)
    finally:
        server.stop()

    assert first.headers["Connection"].lower() == "close"
    assert first.text != second.text


def test_a_stopped_server_refuses_even_a_kept_alive_client_and_serves_again_on_start(server) -> None:
    with requests.Session() as session:
        assert session.get(f"{server.url}/a", timeout=5).status_code == 200
        server.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(f"{server.url}/a", timeout=5)
        port = server.port
        server.start()
        assert server.port == port
        assert session.get(f"{server.url}/a", timeout=5).status_code == 200


def test_requests_before_the_app_is_set_get_503() -> None:
    server = LoopbackServer(name="early").start()
    try:
        assert requests.get(f"{server.url}/x", timeout=5).status_code == 503
        server.app = answer
        assert requests.get(f"{server.url}/x", timeout=5).status_code == 200
    finally:
        server.stop()
