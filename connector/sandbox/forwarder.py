"""A TCP forwarder that can refuse connections: "ECE is down" as the network shows it.

The sandbox serves the ECE simulator under a path prefix on a port it shares with the provider
simulators, and its `down` switch answers 503, which is an answer. A host that is down answers
nothing: the connect is refused (ECONNREFUSED) and connections already open are reset. Point an
integration's `base_url` at a forwarder in front of the simulator to get exactly that, while every
other simulator stays up:

    forwarder = TcpForwarder("127.0.0.1", ece_server.port).start()
    ... the ECE integration's base_url is f"{forwarder.url}/ece" ...
    forwarder.refuse()   # listening socket closed, open connections reset: new connects refused
    forwarder.accept()   # listening again on the same port

Bytes pass through untouched both ways (HTTP keep-alive included), one pair of sockets per client
connection, on an asyncio loop in a daemon thread. While refused, the port is free: another process
could take it, which on loopback with an ephemeral port practically never happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

CHUNK = 64 * 1024
CALL_TIMEOUT = 10.0


class TcpForwarder:
    """Listens on `host:port` (0: a free port, fixed at the first `start()`) and forwards each
    connection to `target_host:target_port`. `refuse()` / `accept()` switch it off and on."""

    def __init__(self, target_host: str, target_port: int, port: int = 0, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.connections = 0
        """Client connections accepted since the start (each opened one to the target)."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def refusing(self) -> bool:
        return self._server is None

    @property
    def open_connections(self) -> int:
        """Sockets open now, client and target sides (two per forwarded connection)."""
        return len(self._open)

    def start(self) -> TcpForwarder:
        """Start the loop and listen; the port is known when this returns."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name=f"forwarder-{self.port}", daemon=True)
            self._thread.start()
        return self.accept()

    def accept(self) -> TcpForwarder:
        """Listen again (on the same port once it is known): connects are forwarded from now."""
        self._call(self._listen())
        return self

    def refuse(self) -> None:
        """Close the listening socket and reset every open connection (RST, both sides): a connect
        from now on is refused, a request in flight or on a kept-alive connection fails."""
        self._call(self._refuse())

    def stop(self) -> None:
        """Refuse, then end the loop and its thread."""
        if self._loop is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(CALL_TIMEOUT)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> TcpForwarder:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- on the loop -------------------------------------------------------------------------------

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the forwarder is not started: call start() first")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        # SO_REUSEADDR (asyncio's default on POSIX): the port is taken back at once after refuse().
        self._server = await asyncio.start_server(self._forward, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _refuse(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # the listening socket closes now: the kernel refuses new connects
        for writer in list(self._open):
            _reset(writer)
        self._open.clear()

    async def _shutdown(self) -> None:
        """Refuse, then end every connection's task, so none is left pending when the loop closes."""
        await self._refuse()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _forward(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        # asyncio's stream server reads each connection task's exception when it ends, and in 3.11 a
        # cancelled task (stop()) raises there: end quietly instead.
        with contextlib.suppress(asyncio.CancelledError):
            await self._forward_connection(client_reader, client)

    async def _forward_connection(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted just before refuse(): reset like the others
            _reset(client)
            return
        self.connections += 1
        self._open.add(client)
        try:
            target_reader, target = await asyncio.open_connection(*self.target)
        except OSError:
            self._open.discard(client)
            _reset(client)  # the target refuses: so does the forwarder's connection
            return
        if client not in self._open:  # refused while connecting to the target
            _reset(target)
            return
        self._open.add(target)
        try:
            await asyncio.gather(_pipe(client_reader, target), _pipe(target_reader, client))
        finally:
            for writer in (client, target):
                if writer in self._open:
                    self._open.discard(writer)
                    writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until the reader's end closes, then half-close the writer (as the peer did)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer gets a RST (ECONNRESET), not an orderly end of stream."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
