"""An agent at the Hybrid Chat agent API over real HTTP, as the desktop or an outside tool is one:
`POST /agent/login`, then the API with the session cookie (+ `X-CSRF-Token`) or a Bearer token, and
the agent's events by long poll (`GET /agent/api/events`) or Server-Sent Events (`GET /agent/api/stream`,
reconnecting with `Last-Event-ID` whenever the server ends a response, as an EventSource does)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from tests.e2e.stack import HYBRID_AGENTS

PASSWORDS = {str(agent["login"]): str(agent["password"]) for agent in HYBRID_AGENTS}
POLL_SECONDS = 5.0
"""The longest one long poll waits here (the API allows 30): a test's wait stays responsive."""

Event = dict[str, Any]


class ApiError(AssertionError):
    """An answer the test did not expect."""


class AgentClient:
    """One logged-in agent. `auth`: "cookie" (the desktop's way: the cookie and the CSRF header) or
    "bearer" (the token of the login answer, no cookie). `sse`: events over Server-Sent Events in a
    background thread, else by long polls made while the test waits."""

    def __init__(
        self,
        base_url: str,
        login: str,
        password: str | None = None,
        *,
        auth: str = "bearer",
        sse: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        answer = self.session.post(
            f"{self.base_url}/agent/login",
            json={"login": login, "password": password or PASSWORDS[login]},
            timeout=15,
        )
        if answer.status_code != 200:
            raise ApiError(f"login of {login}: {answer.status_code} {answer.text}")
        self.login_answer: dict[str, Any] = answer.json()
        self.agent_id: str = self.login_answer["agent_id"]
        self.token: str = self.login_answer["token"]
        if auth == "cookie":
            assert self.session.cookies.get("cc_agent") == self.token, "the session cookie holds the token"
            self.session.headers["X-CSRF-Token"] = self.login_answer["csrf_token"]
        else:
            self.session.cookies.clear()
            self.session.headers["Authorization"] = f"Bearer {self.token}"
        self.events: list[Event] = []
        self.cursor = "0-0"  # Redis is flushed per test: everything on this agent's stream is this test's
        self._changed = threading.Condition()
        self.sse = sse
        self.sse_connections = 0
        self.sse_first_ids: list[str] = []
        self._stop = threading.Event()
        self.sse_errors: list[str] = []
        self._reader: threading.Thread | None = None
        if sse:
            self._start_sse()

    # -- plain calls ------------------------------------------------------------------------------

    def call(self, method: str, path: str, expect: int | None = 200, **kwargs: Any) -> requests.Response:
        answer = self.session.request(method, f"{self.base_url}{path}", timeout=15, **kwargs)
        if expect is not None and answer.status_code != expect:
            raise ApiError(f"{method} {path}: {answer.status_code} {answer.text[:500]} (expected {expect})")
        return answer

    def me(self) -> dict[str, Any]:
        return dict(self.call("GET", "/agent/api/me").json())

    def ready(self) -> dict[str, Any]:
        return dict(self.call("PUT", "/agent/api/me/state", json={"state": "READY"}).json())

    def not_ready(self, reason: str | None = None) -> dict[str, Any]:
        body = {"state": "NOT_READY", **({"reason": reason} if reason else {})}
        return dict(self.call("PUT", "/agent/api/me/state", json=body).json())

    def accept(self, chat_id: str) -> dict[str, Any]:
        return dict(self.call("POST", f"/agent/api/chats/{chat_id}/accept").json())

    def reject(self, chat_id: str) -> dict[str, Any]:
        return dict(self.call("POST", f"/agent/api/chats/{chat_id}/reject").json())

    def say(self, chat_id: str, text: str) -> str:
        return str(self.call("POST", f"/agent/api/chats/{chat_id}/messages", json={"text": text}).json()["message_id"])

    def send_file(self, chat_id: str, name: str, mime_type: str, data: bytes) -> str:
        files = {"file": (name, data, mime_type)}
        return str(self.call("POST", f"/agent/api/chats/{chat_id}/messages", files=files).json()["message_id"])

    def transfer(self, chat_id: str, **target: str) -> dict[str, Any]:
        return dict(self.call("POST", f"/agent/api/chats/{chat_id}/transfer", json=target).json())

    def close(self, chat_id: str, wrap_up: str | None = None) -> dict[str, Any]:
        body = {"wrap_up": wrap_up} if wrap_up is not None else {}
        return dict(self.call("POST", f"/agent/api/chats/{chat_id}/close", json=body).json())

    def chat(self, chat_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/agent/api/chats/{chat_id}").json())

    def file(self, url: str) -> requests.Response:
        """A file as the agent's desktop opens it: the API path the event or transcript names."""
        return self.call("GET", url)

    # -- events -----------------------------------------------------------------------------------

    def mark(self) -> int:
        """Where the events received so far end: `wait_event(..., since=mark)` looks only after it."""
        with self._changed:
            return len(self.events)

    def of_type(self, event_type: str, since: int = 0) -> list[Event]:
        with self._changed:
            return [e for e in self.events[since:] if e.get("type") == event_type]

    def wait_event(
        self,
        event_type: str,
        chat_id: str | None = None,
        *,
        since: int = 0,
        timeout: float = 15.0,
        where: Callable[[Event], bool] | None = None,
        **fields: Any,
    ) -> Event:
        """The first event of `event_type` (of `chat_id`, with these `fields`, passing `where`) after
        `since`, waiting for it up to `timeout` seconds."""

        def matches(event: Event) -> bool:
            return (
                event.get("type") == event_type
                and (chat_id is None or event.get("chat_id") == chat_id)
                and all(event.get(k) == v for k, v in fields.items())
                and (where is None or where(event))
            )

        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                found = next((e for e in self.events[since:] if matches(e)), None)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                with self._changed:
                    seen = [(e.get("type"), e.get("chat_id")) for e in self.events[since:]]
                raise AssertionError(
                    f"{self.agent_id}: no {event_type} event {chat_id or ''} {fields} within {timeout} s; saw {seen}"
                )
            if self.sse:
                with self._changed:
                    self._changed.wait(min(left, 0.2))
            else:
                self.poll(min(left, POLL_SECONDS))

    def poll(self, wait: float = 0.0) -> list[Event]:
        """One long poll from the cursor: `GET /agent/api/events?after=&wait=`."""
        params: dict[str, str | float] = {"after": self.cursor, "wait": round(max(0.0, wait), 2)}
        answer = self.call("GET", "/agent/api/events", params=params).json()
        found: list[Event] = answer["events"]
        with self._changed:
            self.events.extend(found)
            self.cursor = answer["cursor"]
            self._changed.notify_all()
        return found

    def quiet(self, event_type: str, since: int, seconds: float) -> list[Event]:
        """Events of `event_type` that came after `since` within `seconds` (for "nothing happened")."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.sse:
                time.sleep(min(left, 0.2))
            else:
                self.poll(min(left, POLL_SECONDS))
        return self.of_type(event_type, since)

    # -- Server-Sent Events ---------------------------------------------------------------------------

    def _start_sse(self) -> None:
        connected = threading.Event()
        self._reader = threading.Thread(target=self._read_sse, args=(connected,), name=f"sse-{self.agent_id}")
        self._reader.daemon = True
        self._reader.start()
        if not connected.wait(10):
            raise AssertionError(f"{self.agent_id}: the event stream sent no first id: line")

    def _read_sse(self, connected: threading.Event) -> None:
        """Read responses one after the other, as an EventSource does: the first without an id (only
        new events), then each from the last `id:` seen."""
        last_id: str | None = None
        session = requests.Session()  # its own connections: the test's calls go on beside it
        session.headers.update(self.session.headers)
        session.cookies.update(self.session.cookies)
        while not self._stop.is_set():
            headers = {"Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                response = session.get(
                    f"{self.base_url}/agent/api/stream", headers=headers, stream=True, timeout=(5, 30)
                )
                if response.status_code != 200 or not response.headers["Content-Type"].startswith("text/event-stream"):
                    raise ApiError(f"stream: {response.status_code} {response.headers.get('Content-Type')}")
                self.sse_connections += 1
                first = True
                data: list[str] = []
                event_id: str | None = None
                for raw in response.iter_lines(chunk_size=None, decode_unicode=True):
                    line = raw or ""
                    if line.startswith("id:"):
                        event_id = line[3:].strip()
                        last_id = event_id
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "":
                        if first and event_id is not None and not data:
                            self.sse_first_ids.append(event_id)
                            connected.set()
                        if event_id is not None or data:
                            first = False
                        if data:
                            event = json.loads("\n".join(data))
                            assert event.get("id") == event_id, "each event's id: line is its cursor"
                            with self._changed:
                                self.events.append(event)
                                self.cursor = event_id or self.cursor
                                self._changed.notify_all()
                        data, event_id = [], None
                response.close()
            except (requests.RequestException, ValueError) as exc:
                self.sse_errors.append(repr(exc))
                if self._stop.is_set():
                    break
                time.sleep(0.2)
        session.close()

    def stop(self) -> None:
        """Stop reconnecting; the server ends the open response within its (shortened) lifetime."""
        self._stop.set()
        if self._reader is not None:
            self._reader.join(10)
        self.session.close()
