"""The refusing TCP forwarder (connector/sandbox/forwarder.py): ECE "down" as a refused connection,
in front of the real ECE simulator, while the simulator itself stays up."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from flask import Flask

from connector.sandbox.forwarder import TcpForwarder
from connector.sandbox.http import LoopbackServer, serving
from tests.conftest import ECE_CLIENT

TOKEN_PATH = "/ece/system/ws/v19/clientapplications/authentication/oauth2/token"


@pytest.fixture
def ece_behind_forwarder(ece_simulator) -> Iterator[tuple[TcpForwarder, str]]:
    """(the forwarder, the simulator's own base URL); the forwarder listens on a port of its own."""
    _simulator, base_url = ece_simulator
    port = int(base_url.rsplit(":", 1)[1].split("/", 1)[0])
    with TcpForwarder("127.0.0.1", port) as forwarder:
        yield forwarder, base_url.removesuffix("/ece")


def token(base: str, session: requests.Session | None = None) -> requests.Response:
    return (session or requests).post(
        f"{base}{TOKEN_PATH}", data={"grant_type": "client_credentials"}, auth=ECE_CLIENT, timeout=5
    )


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=2)


def test_it_forwards_requests_on_kept_alive_connections(ece_behind_forwarder) -> None:
    forwarder, _direct = ece_behind_forwarder
    session = requests.Session()
    answers = [token(forwarder.url, session) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["token_type"] == "Bearer"
    assert forwarder.connections == 1, "one kept-alive connection carried the three calls"


def test_refused_a_connect_gets_connection_refused_and_the_simulator_stays_up(ece_behind_forwarder) -> None:
    forwarder, direct = ece_behind_forwarder
    port = forwarder.port
    forwarder.refuse()

    with pytest.raises(ConnectionRefusedError):
        connect(port)
    with pytest.raises(requests.ConnectionError) as failed:
        token(forwarder.url)
    assert "Connection refused" in str(failed.value)
    assert token(direct).status_code == 200, "only the path through the forwarder is down"

    forwarder.accept()
    assert forwarder.port == port, "it listens again on the same port"
    assert token(forwarder.url).status_code == 200


def test_refuse_resets_open_connections(ece_behind_forwarder) -> None:
    forwarder, _direct = ece_behind_forwarder
    session = requests.Session()
    assert token(forwarder.url, session).status_code == 200
    raw = connect(forwarder.port)
    raw.sendall(b"POST /ece HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")  # half a request
    # Open means taken by the forwarder: a connection still being accepted by asyncio when the
    # listening socket closes is not one this test is about.
    deadline = time.monotonic() + 5
    while forwarder.connections < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    forwarder.refuse()

    with pytest.raises(ConnectionResetError):
        raw.recv(1024)  # a RST, not an orderly end of stream
    raw.close()
    with pytest.raises(requests.ConnectionError):
        token(forwarder.url, session)  # the kept-alive connection is gone, and a new one is refused
    assert forwarder.open_connections == 0


def test_a_request_in_flight_when_refused_fails_on_the_client() -> None:
    began, release = threading.Event(), threading.Event()
    app = Flask("slow")

    @app.get("/slow")
    def slow() -> str:
        began.set()
        release.wait(5)
        return "late"

    with serving(app) as server, TcpForwarder("127.0.0.1", server.port) as forwarder:
        outcome: list[BaseException | int] = []

        def call() -> None:
            try:
                outcome.append(requests.get(f"{forwarder.url}/slow", timeout=5).status_code)
            except requests.RequestException as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        assert began.wait(5)
        forwarder.refuse()
        caller.join(5)
        release.set()

    assert len(outcome) == 1 and isinstance(outcome[0], requests.ConnectionError), outcome


def test_a_target_that_refuses_makes_the_forwarder_reset_the_client() -> None:
    target = LoopbackServer().start()
    port = target.port
    target.stop()  # nothing listens there now
    with TcpForwarder("127.0.0.1", port) as forwarder, pytest.raises(requests.ConnectionError):
        requests.get(f"{forwarder.url}/", timeout=5)
