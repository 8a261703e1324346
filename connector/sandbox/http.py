"""Serving a simulator on loopback: the one small HTTP server every sandbox piece and test uses.

cheroot (CherryPy's WSGI server) rather than werkzeug's development server: werkzeug closes the
connection after every answer, so each simulated ECE or provider call cost the connector a new TCP
connection and the simulator a new thread, about twice the CPU of a kept-alive call on the 2-core
reference machine. ECE, Meta, Twilio and Apple keep connections alive; the simulators do too.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from cheroot import wsgi

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

log = logging.getLogger(__name__)

THREADS = 8
"""Requests served at once per simulator (kept-alive idle connections hold no thread)."""
LISTEN_BACKLOG = 1024
"""Connections waiting to be accepted. cheroot's default is 5: a connector opening a few hundred
connections at once (its calls in flight growing with a slow ECE) overflowed it, connections were
dropped, and the simulator looked unreachable where a real ECE or provider, behind a web server or
load balancer with a backlog of hundreds, is not. The kernel caps it at net.core.somaxconn."""


KEEP_ALIVE_LIMIT = 1024
"""Idle kept-alive connections held open. cheroot's default is 10: with more than ten connections
open, it answered `Connection: close`, so a connector holding two hundred calls to a slow ECE
opened a new connection for nearly every call, where ECE, behind a web server, keeps them."""


class _Server(wsgi.Server):
    """cheroot's server with its error lines in the logging system instead of on stderr."""

    @staticmethod
    def bind_socket(socket_: socket.socket, bind_addr: Any) -> Any:
        # cheroot sets SO_REUSEADDR only for a fixed port; without it on the first (port 0) socket,
        # start() after stop() cannot take the port back while the closed connections wind down.
        socket_.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return wsgi.Server.bind_socket(socket_, bind_addr)

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        log.log(level if level >= logging.WARNING else logging.DEBUG, "%s", msg, exc_info=traceback)


class LoopbackServer:
    """A threaded HTTP/1.1 server with keep-alive on a daemon thread. `stop()` closes every
    connection and refuses new ones from then on (how a test takes a node down), and `start()`
    serves again on the same port.

    The app may be set after the port is known (`start()` first, then `.app = ...`): simulators and
    the connector build URLs from each other's addresses. Until then requests get 503.

    `keep_alive=False` answers one request per connection, so a client's next call after `stop()`
    meets a refused connection rather than a socket the server has just closed. `threads`: requests
    answered at once (a simulator that answers slowly needs as many as the calls it should hold).
    """

    def __init__(
        self,
        app: WsgiApp | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        name: str = "sandbox",
        keep_alive: bool = True,
        threads: int = THREADS,
    ) -> None:
        self.app = app
        self.threads = threads
        self.host = host
        self.port = port
        self.name = name
        self.keep_alive = keep_alive
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> LoopbackServer:
        if self._server is None:
            server = _Server((self.host, self.port), self._dispatch, numthreads=self.threads, server_name=self.name)
            # The serve loop wakes this often to notice stop(): werkzeug's server polled as often.
            server.expiration_interval = 0.05
            server.request_queue_size = LISTEN_BACKLOG
            server.keep_alive_conn_limit = KEEP_ALIVE_LIMIT
            server.prepare()  # binds now, so the port is known when start() returns
            self.port = server.bind_addr[1]
            self._server = server
            self._thread = threading.Thread(target=server.serve, name=f"{self.name}-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.stop()
        if thread is not None:
            thread.join(timeout)

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.keep_alive:
            start_response = _closing(start_response)
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting"]
        return self.app(environ, start_response)


def _closing(start_response: Callable[..., Any]) -> Callable[..., Any]:
    def with_close(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        kept = [(k, v) for k, v in headers if k.lower() != "connection"]
        return start_response(status, [*kept, ("Connection", "close")], exc_info)

    return with_close


@contextmanager
def serving(app: WsgiApp | None = None, port: int = 0) -> Iterator[LoopbackServer]:
    """A started LoopbackServer for the `with` block (tests, one-off tools)."""
    server = LoopbackServer(app, port).start()
    try:
        yield server
    finally:
        server.stop()
