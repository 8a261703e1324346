"""Serving a simulator on loopback: the one small HTTP server every sandbox piece and test uses."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class LoopbackServer:
    """A threaded werkzeug server on a daemon thread. `stop()` refuses connections from then on
    (how a test takes a node down) and `start()` serves again on the same port.

    The app may be set after the port is known (`start()` first, then `.app = ...`): simulators and
    the connector build URLs from each other's addresses. Until then requests get 503.
    """

    def __init__(
        self,
        app: WsgiApp | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        name: str = "sandbox",
        request_handler: type[WSGIRequestHandler] | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self.request_handler = request_handler
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> LoopbackServer:
        if self._server is None:
            server = make_server(
                self.host, self.port, self._dispatch, threaded=True, request_handler=self.request_handler
            )
            self.port = server.server_address[1]
            self._server = server
            # A short poll interval: stop() waits up to one interval.
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{self.name}-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout)

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting"]
        return self.app(environ, start_response)


@contextmanager
def serving(app: WsgiApp | None = None, port: int = 0) -> Iterator[LoopbackServer]:
    """A started LoopbackServer for the `with` block (tests, one-off tools)."""
    server = LoopbackServer(app, port).start()
    try:
        yield server
    finally:
        server.stop()
