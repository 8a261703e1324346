"""When the web worker hands a buffered request to a thread (connector/web_worker.py): only once it
is whole, or once waiting longer would not change the answer."""

from __future__ import annotations

import pytest

from connector.web_worker import HEAD_BYTES, expects_continue, request_complete, without_expect

LIMIT = 1000
HEAD = b"POST /webhooks/sms/a HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"", False),
        (b"GET /healthz HTTP/1.1\r\nHost: x", False),  # headers still arriving
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),  # no body
        (HEAD + b"Content-Length: 5\r\n\r\nabc", False),  # body still arriving
        (HEAD + b"Content-Length: 5\r\n\r\nabcde", True),
        (HEAD + b"content-length:5\r\n\r\nabcdeGET / HTTP/1.1", True),  # pipelined: the rest waits its turn
        (HEAD + b"Content-Length: 1001\r\n\r\n", True),  # over the limit: refused (413) without reading it
        # Not a length anyone sends: handed over at once, gunicorn's parser refuses it (400).
        (HEAD + b"Content-Length: 99999999999999999999999\r\n\r\n", True),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n", False),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", True),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"x" * (LIMIT + 1), True),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * HEAD_BYTES, True),  # headers too long: gunicorn refuses them
    ],
)
def test_request_complete(data, complete):
    assert request_complete(data, LIMIT) is complete


EXPECTING = HEAD + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"


def test_a_head_expecting_100_continue_is_recognised_and_the_expectation_removed_once_answered():
    assert expects_continue(EXPECTING) and expects_continue(EXPECTING.replace(b"Expect: 100", b"expect:100"))
    assert not expects_continue(EXPECTING[:-2]), "the head is not complete yet"
    assert not expects_continue(HEAD + b"Content-Length: 5\r\n\r\n")
    assert without_expect(EXPECTING + b"abcde") == HEAD + b"Content-Length: 5\r\n\r\nabcde"
    assert (
        without_expect(EXPECTING + b"Expect: 100-continue") == HEAD + b"Content-Length: 5\r\n\r\nExpect: 100-continue"
    )
