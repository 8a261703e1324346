"""Slow-loris and oversized requests against the real web process (gunicorn as `python -m connector
run` starts it, connector/supervisor.py): while many connections dribble their headers a byte at a
time, or send headers and never the body, and others send oversized headers and bodies, a normal
request still gets its answer within ANSWER_WITHIN seconds (docs/operators.md, "Slow and oversized
requests")."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import requests

from connector.settings import PROJECT_ROOT, Settings
from connector.supervisor import Supervisor
from connector.web_worker import REQUEST_SECONDS
from tests.conftest import CONFIG_DIR, PUBLIC_BASE_URL
from tests.helpers import WHATSAPP_ASSET, wait_for, whatsapp_headers, whatsapp_payload

pytestmark = pytest.mark.e2e

WEB_WORKERS = 2
WEB_THREADS = 8
"""A small web tier (16 threads), so the attack that would exhaust it stays cheap on this machine."""
ATTACKERS = 4 * WEB_WORKERS * WEB_THREADS
"""Connections of each kind of attack: four times every thread the web tier has."""
ANSWER_WITHIN = 1.0
ATTACK_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def web(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """The web process alone, started with the supervisor's own gunicorn command line."""
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CONNECTOR_CONFIG_DIR": str(CONFIG_DIR),
        "CONNECTOR_DATA_DIR": str(tmp_path),
        "CONNECTOR_SECRET_KEY": "slow-clients-test",
        "CONNECTOR_WEB_THREADS": str(WEB_THREADS),
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "LOG_LEVEL": "WARNING",
    }
    settings = Settings.from_env(redis_url=redis_url, config_dir=CONFIG_DIR, data_dir=tmp_path, web_threads=WEB_THREADS)
    argv = Supervisor(settings, port=port, web_workers=WEB_WORKERS).gunicorn_argv(sys.executable)
    process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/healthz"), timeout=60, interval=0.2, what="gunicorn to answer /healthz")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


class Attack:
    """Connections that hold the server's attention as long as they can, each on its own socket."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return None
        with self.lock:
            self.sockets.append(sock)
        return sock

    def spawn(self, target, count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)

    def dribble_headers(self) -> None:
        """Slow-loris: a request line and headers, one byte every 200 ms, never finished."""
        sock = self.connect()
        request = f"POST /webhooks/whatsapp/{WHATSAPP_ASSET} HTTP/1.1\r\nHost: x\r\n" + "X-Padding: " + "a" * 10_000
        for byte in request.encode():
            if self.stop.wait(0.2) or sock is None:
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                sock = self.connect()  # the server hung up on us: start over, as an attacker would

    def never_send_the_body(self) -> None:
        """Headers of a webhook with a body announced and never sent (or a byte of it now and then)."""
        while not self.stop.is_set():
            sock = self.connect()
            if sock is None:
                return
            try:
                sock.sendall(
                    f"POST /webhooks/whatsapp/{WHATSAPP_ASSET} HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
                )
                while not self.stop.wait(1.0):
                    sock.send(b" ")
            except OSError:
                continue

    def oversized(self) -> None:
        """Oversized headers and bodies, over and over."""
        while not self.stop.is_set():
            sock = self.connect()
            if sock is None:
                return
            try:
                if time.monotonic_ns() % 2:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
                else:
                    sock.sendall(
                        f"POST /webhooks/whatsapp/{WHATSAPP_ASSET} HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n".encode()
                        + b"x" * 1_000_000
                    )
                sock.recv(1024)
            except OSError:
                pass
            finally:
                sock.close()

    def close(self) -> None:
        self.stop.set()
        with self.lock:
            for sock in self.sockets:
                sock.close()
        for thread in self.threads:
            thread.join(5)


def timed(call: Callable[[], requests.Response]) -> tuple[float, int | str]:
    """(seconds, status code or why it failed) of one normal request."""
    started = time.monotonic()
    try:
        status: int | str = call().status_code
    except requests.RequestException as exc:
        status = f"failed: {type(exc).__name__}"
    return time.monotonic() - started, status


def webhook(web: str, n: int) -> requests.Response:
    body = whatsapp_payload([("15550001234", f"wamid.loris{n}", "still there?")])
    return requests.post(
        f"{web}/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body), timeout=10
    )


def status_of(sock: socket.socket) -> str:
    """The status line of the server's answer (empty if it closed without one)."""
    sock.settimeout(10)
    return sock.recv(4096).split(b"\r\n", 1)[0].decode()


def test_oversized_headers_and_bodies_are_refused(web):
    port = int(web.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        assert status_of(sock).startswith("HTTP/1.1 4"), "a header over gunicorn's 8190-byte limit"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(sock).startswith("HTTP/1.1 4"), "a request line over gunicorn's 4094-byte limit"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST /webhooks/whatsapp/{WHATSAPP_ASSET} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 50000000\r\n\r\n{".encode()
        )
        assert status_of(sock) == "HTTP/1.1 413 REQUEST ENTITY TOO LARGE", "answered without the body"


def test_a_client_waiting_for_100_continue_gets_it_once(web):
    """curl and others send a large body only after "100 Continue": the buffering worker answers it."""
    port = int(web.rsplit(":", 1)[1])
    body = b'{"message_id": "m1"}'
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /webhooks/inapp/test-inapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert status_of(sock) == "HTTP/1.1 100 Continue"
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]  # unsigned: refused, after the body was read
    assert b"100 Continue" not in answer, "one 100 Continue, not a second in front of the answer"


def test_normal_requests_are_answered_while_slow_and_oversized_clients_hang_on(web):
    port = int(web.rsplit(":", 1)[1])
    attack = Attack(port)
    watched = socket.create_connection(("127.0.0.1", port))
    watched.sendall(b"POST /webhooks/sms/test-sms HTTP/1.1\r\nHost: x\r\n")
    watched_since = time.monotonic()
    try:
        attack.spawn(attack.dribble_headers, ATTACKERS)
        attack.spawn(attack.never_send_the_body, ATTACKERS)
        attack.spawn(attack.oversized, 4)
        time.sleep(6.0)  # past gunicorn's 5 s wait for a first byte: unbuffered, the dribblers would hold threads
        answers = []
        deadline = time.monotonic() + ATTACK_SECONDS
        n = 0
        while time.monotonic() < deadline:
            n += 1
            answers.append(("webhook", *timed(partial(webhook, web, n))))
            answers.append(("healthz", *timed(partial(requests.get, f"{web}/healthz", timeout=10))))
            time.sleep(0.2)
        # A request that never completes is dropped once its REQUEST_SECONDS are up.
        watched.settimeout(max(0.1, watched_since + REQUEST_SECONDS + 3 - time.monotonic()))
        try:
            closed = watched.recv(1024) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
    finally:
        watched.close()
        attack.close()
    slow = [a for a in answers if a[1] > ANSWER_WITHIN or a[2] != 200]
    assert len(answers) >= 10
    assert not slow, f"{len(slow)} of {len(answers)} normal requests were slow or failed: {slow[:10]}"
    assert closed, f"a request still unfinished after {REQUEST_SECONDS} s was not dropped"
