"""The web process's gunicorn worker: gthread, except that a connection gets a thread only once its
whole request has arrived (docs/operators.md, "Slow and oversized requests").

gunicorn's gthread worker hands a connection to a thread as soon as its first byte arrives, and the
thread then blocks reading the rest. A client that sends its headers a byte at a time (slow-loris),
or announces a body and never sends it, holds that thread for as long as it likes; a few dozen such
connections hold every thread, and providers' webhooks wait behind them. Here the worker's event
loop (which already watches idle keep-alive connections) reads each request into a buffer without
blocking, and submits it to the thread pool complete: headers, and a body up to
CONNECTOR_MAX_BODY_BYTES. A request not complete within REQUEST_SECONDS is dropped. A body announced
larger than the limit goes to a thread at once (the application refuses it with 413 before reading
it, except on routes that take more, such as the agent's authenticated file upload).
Connections over TLS or HTTP/2 terminated in gunicorn itself are left to gthread as they were.
"""

from __future__ import annotations

import contextlib
import re
import selectors
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.http2 import negotiation
from gunicorn.workers import gthread

from connector.settings import Settings

REQUEST_SECONDS = 15.0
"""A client's time to send one whole request, from its connection being ready to read."""
HEAD_BYTES = 64 * 1024
"""Headers longer than this are handed over as they are: gunicorn's limits then refuse them (400/431)."""
BUFFER_BUDGET = 64 * 1024 * 1024
"""Bytes one worker holds for requests still arriving; past it, connections go to threads unbuffered."""
READ_BYTES = 256 * 1024

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,19})[ \t]*(?=\r\n|$)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:[^\r\n]*chunked", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue[ \t]*(?=\r\n)", re.IGNORECASE)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass
class _Arriving:
    """A request still arriving on a connection, and when the client's time is up."""

    conn: Any  # gthread.TConn: gunicorn ships no type hints
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    head_done: bool = False
    continued: bool = False


def expects_continue(data: bytes | bytearray) -> bool:
    """A whole head that asks for "100 Continue" before its body (RFC 9110 §10.1.1; curl does for
    large bodies): the client waits for it, so the event loop must answer it, not the thread."""
    head_end = data.find(b"\r\n\r\n")
    return head_end >= 0 and _EXPECT_CONTINUE.search(bytes(data[:head_end])) is not None


def without_expect(data: bytes | bytearray) -> bytes:
    """The request with its `Expect: 100-continue` removed once the event loop answered it, so that
    gunicorn does not send a second 100 in front of the final answer."""
    head_end = data.find(b"\r\n\r\n")
    return _EXPECT_CONTINUE.sub(b"", bytes(data[:head_end]), count=1) + bytes(data[head_end:])


def request_complete(data: bytes | bytearray, max_body: int) -> bool:
    """Whether `data` holds a whole request head and its body (Content-Length, or a chunked body's
    last chunk), or enough that the parser or the application will refuse it without waiting."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return len(data) > HEAD_BYTES
    head = bytes(data[:head_end])
    body = len(data) - head_end - 4
    if _CHUNKED.search(head):
        return data.endswith(b"\r\n0\r\n\r\n") or body > max_body
    match = _CONTENT_LENGTH.search(head)
    length = int(match.group(1)) if match else 0
    return length > max_body or body >= length


class BufferingWorker(gthread.ThreadWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """`--worker-class connector.web_worker.BufferingWorker` (the supervisor passes it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_body = Settings.from_env().max_body_bytes
        self.arriving: dict[int, _Arriving] = {}
        self.buffered_bytes = 0

    def enqueue_req(self, conn: Any) -> None:
        """gthread's one door to the thread pool (new, kept-alive and deferred connections alike)."""
        if getattr(conn, "request_buffered", False) or not self._bufferable(conn):
            super().enqueue_req(conn)
            return
        conn.sock.setblocking(False)
        arriving = _Arriving(conn, time.monotonic() + REQUEST_SECONDS)
        self.arriving[id(conn)] = arriving
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, arriving))

    def _bufferable(self, conn: Any) -> bool:
        if self.cfg.is_ssl or self.buffered_bytes > BUFFER_BUDGET:
            return False
        if conn.parser is None:
            return not negotiation.prior_knowledge_allowed(self.cfg, conn.client)
        # A kept-alive HTTP/1.1 connection, unless the client already sent more (pipelining).
        return not conn.is_http2 and not conn.parser.unreader.buf.getvalue()

    def _on_readable(self, arriving: _Arriving, _fileobj: Any) -> None:
        try:
            chunk = arriving.conn.sock.recv(READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away before finishing its request
            self._forget(arriving, close=True)
            return
        arriving.data += chunk
        self.buffered_bytes += len(chunk)
        if not arriving.head_done:
            # Only the new bytes (and the three before them) can end the head: a client that sends a
            # byte at a time must not make each byte cost a scan of all it sent before.
            arriving.head_done = arriving.data.find(b"\r\n\r\n", max(0, len(arriving.data) - len(chunk) - 3)) >= 0
            if not arriving.head_done and len(arriving.data) <= HEAD_BYTES:
                return
        if not arriving.continued and expects_continue(arriving.data):
            arriving.continued = True
            if not request_complete(arriving.data, self.max_body):
                with contextlib.suppress(OSError):  # a few bytes into an empty send buffer
                    arriving.conn.sock.send(CONTINUE)
            else:
                arriving.continued = False  # the thread (gunicorn) answers it, as without buffering
        if request_complete(arriving.data, self.max_body):
            self._forget(arriving, close=False)
            self._hand_over(arriving)

    def _hand_over(self, arriving: _Arriving) -> None:
        conn = arriving.conn
        conn.sock.setblocking(True)
        conn.init()  # the HTTP/1 parser for a new connection; nothing for a kept-alive one
        conn.parser.unreader.unread(without_expect(arriving.data) if arriving.continued else bytes(arriving.data))
        conn.data_ready = True
        conn.request_buffered = True
        super().enqueue_req(conn)

    def _forget(self, arriving: _Arriving, *, close: bool) -> None:
        if self.arriving.pop(id(arriving.conn), None) is None:
            return
        self.buffered_bytes -= len(arriving.data)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(arriving.conn.sock)
        if close:
            self.nr_conns -= 1
            arriving.conn.close()

    def finish_request(self, conn: Any, fs: Any) -> None:
        conn.request_buffered = False  # its next request (keep-alive) is buffered again
        super().finish_request(conn, fs)

    def murder_pending(self) -> None:
        """Run by gthread's loop about every second: also drop requests whose time is up."""
        super().murder_pending()
        now = time.monotonic()
        for arriving in [a for a in self.arriving.values() if a.deadline <= now]:
            self._forget(arriving, close=True)
