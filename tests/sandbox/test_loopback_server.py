"""The simulators' HTTP server: connections kept alive like the real services', closed on stop."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

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


def test_hundreds_of_connections_open_at_once_are_all_kept_alive() -> None:
    """A connector with two hundred calls in flight to a slow ECE keeps two hundred connections;
    cheroot's own default kept ten and answered the others `Connection: close`."""
    together = 200
    barrier = threading.Barrier(together, timeout=10)

    def answer_together(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        barrier.wait()  # every connection is open before any is answered
        return answer(environ, start_response)

    server = LoopbackServer(answer_together, name="slow-ece", threads=together).start()
    answers: list[requests.Response] = []
    try:
        with requests.Session() as session:
            session.mount("http://", HTTPAdapter(pool_maxsize=together))
            calls = [
                threading.Thread(target=lambda: answers.append(session.get(server.url, timeout=10)))
                for _ in range(together)
            ]
            for call in calls:
                call.start()
            for call in calls:
                call.join()
    finally:
        server.stop()

    assert len(answers) == together
    assert [a for a in answers if a.headers.get("Connection", "").lower() == "close"] == []
