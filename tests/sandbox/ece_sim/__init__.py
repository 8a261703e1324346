"""Shared set-up for the ECE simulator tests: the simulator's blueprint served on a loopback werkzeug
server, a small callback receiver on another one, and plain-HTTP helpers (`requests`, not the
connector's client), so the tests check the wire."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import Flask, Response, request

from connector.sandbox.ece import EceSimulator
from connector.sandbox.http import serving as loopback

KEY, SECRET = "connector-app", "connector-secret"
OTHER_KEY, OTHER_SECRET = "other-app", "other-secret"
TIMEOUT = 5


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve `app` on 127.0.0.1, any free port; yields its base URL."""
    with loopback(app) as server:
        yield server.url


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    status: int


@dataclass
class Receiver:
    """The connector's callback endpoint, played by a Flask app: records every POST and answers the
    queued statuses first (then 200)."""

    url: str = ""
    posts: list[Received] = field(default_factory=list)
    answers: deque[int] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("ece-callback-receiver")

        @app.post("/callback")
        def callback() -> Response:
            with self.lock:
                status = self.answers.popleft() if self.answers else 200
                self.posts.append(Received(dict(request.headers), request.get_json(force=True), status))
            return Response(status=status)

        return app

    def accepted(self) -> list[list[dict[str, Any]]]:
        """The `message` lists of the POSTs answered 2xx, in arrival order."""
        with self.lock:
            return [p.body["message"] for p in self.posts if p.status < 300]

    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.accepted() for e in batch]

    def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver never got what was expected; posts: {self.posts}")
            time.sleep(0.02)

    def wait_events(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        self.wait_for(lambda r: len(r.events()) >= count, timeout)
        return self.events()


@dataclass
class Ece:
    """A running simulator and plain-HTTP helpers against it."""

    sim: EceSimulator
    base: str  # includes the /ece mount prefix

    @property
    def apps(self) -> str:
        return f"{self.base}/system/ws/v19/clientapplications"

    @property
    def conversations(self) -> str:
        return f"{self.apps}/messaging/conversations"

    def token_response(self, key: str = KEY, secret: str = SECRET, **data: str) -> requests.Response:
        form = {"grant_type": "client_credentials", **data}
        return requests.post(f"{self.apps}/authentication/oauth2/token", auth=(key, secret), data=form, timeout=TIMEOUT)

    def token(self, key: str = KEY, secret: str = SECRET) -> str:
        answer = self.token_response(key, secret)
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def bearer(self, key: str = KEY, secret: str = SECRET) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(key, secret)}"}

    def configuration(self, ep: str, headers: dict[str, str]) -> requests.Response:
        return requests.get(
            f"{self.apps}/messaging/configuration", params={"entrypoint": ep}, headers=headers, timeout=TIMEOUT
        )

    def last_modified(self, ep: str, headers: dict[str, str]) -> str:
        answer = self.configuration(ep, headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["entryPointConfiguration"][0]["lastModified"]

    def start_response(self, headers: dict[str, str], body: dict[str, Any]) -> requests.Response:
        return requests.post(self.conversations, json=body, headers=headers, timeout=TIMEOUT)

    def start(self, headers: dict[str, str], ep: str = "1001", **extra: Any) -> str:
        body = {"entryPoint": {"id": ep, "lastModified": self.last_modified(ep, headers)}, **extra}
        answer = self.start_response(headers, body)
        assert answer.status_code == 201, answer.text
        return answer.json()["conversation"]["id"]

    def send(self, headers: dict[str, str], conv: str, text: str, kind: str = "text/plain") -> requests.Response:
        body = {"type": {"value": kind}, "content": text}
        return requests.post(f"{self.conversations}/{conv}/messages", json=body, headers=headers, timeout=TIMEOUT)

    def end(self, headers: dict[str, str], conv: str) -> requests.Response:
        return requests.post(f"{self.conversations}/{conv}/end", headers=headers, timeout=TIMEOUT)

    def check(self, name: str, ep: str, as_json: bool = True) -> requests.Response:
        headers = {"Accept": "application/json"} if as_json else {}
        return requests.get(f"{self.base}/system/egain/chat/entrypoint/{name}/{ep}", headers=headers, timeout=TIMEOUT)

    def control(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return requests.post(f"{self.base}/control/{path}", json=body or {}, timeout=TIMEOUT)

    def act(self, conv: str, action: str, **body: Any) -> dict[str, Any]:
        answer = self.control(f"conversations/{conv}/{action}", body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def state(self) -> dict[str, Any]:
        return requests.get(f"{self.base}/control/state", timeout=TIMEOUT).json()


@contextmanager
def running_ece(**options: Any) -> Iterator[Ece]:
    """An EceSimulator (client app KEY, other app OTHER_KEY) mounted at /ece, emitter started."""
    options.setdefault("other_apps", {OTHER_KEY: OTHER_SECRET})
    sim = EceSimulator(client_key=KEY, client_secret=SECRET, **options)
    app = Flask("ece-sim-under-test")
    app.register_blueprint(sim.blueprint(), url_prefix="/ece")
    with serving(app) as base:
        sim.start()
        try:
            yield Ece(sim, f"{base}/ece")
        finally:
            sim.stop()


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with serving(receiver.app()) as base:
        receiver.url = f"{base}/callback"
        yield receiver
