"""Fetching customer files safely: host allowlist, no private addresses outside the sandbox,
redirects re-checked, a byte cap counted while streaming, HTTP outcomes as Retryable / Permanent.

DNS is answered by `fake_dns` (tests/channels/senders.py): every name is public, except the names
in PRIVATE_NAMES.
"""

from __future__ import annotations

import pytest
import requests
import responses

from connector.channels import media
from connector.errors import PermanentError, RetryableError

from .senders import UNRESOLVABLE

pytestmark = pytest.mark.usefixtures("fake_dns")

CDN = ("*.fbcdn.net", "lookaside.fbsbx.com")


def fetch(url: str, *, hosts=CDN, allow_private: bool = False, max_bytes: int = 1000, **kwargs):
    return media.fetch(
        url,
        session=requests.Session(),
        max_bytes=max_bytes,
        allowed_hosts=hosts,
        allow_private=allow_private,
        **kwargs,
    )


@responses.activate
def test_fetches_bytes_and_type_from_an_allowed_host():
    responses.get("https://scontent.xx.fbcdn.net/v/photo.jpg", body=b"\xff\xd8jpeg", content_type="image/jpeg")
    assert fetch("https://scontent.xx.fbcdn.net/v/photo.jpg") == (b"\xff\xd8jpeg", "image/jpeg")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("scontent.xx.fbcdn.net", True),
        ("a.b.fbcdn.net", True),
        ("FBCDN.example.fbcdn.net", True),
        ("lookaside.fbsbx.com", True),
        ("fbcdn.net", False),  # the pattern names subdomains only
        ("evilfbcdn.net", False),
        ("fbcdn.net.evil.example", False),
        ("other.fbsbx.com", False),
    ],
)
def test_host_patterns(host, allowed):
    assert media.host_allowed(host, CDN) is allowed


@responses.activate
def test_host_not_allowed_is_refused_without_a_request():
    with pytest.raises(PermanentError, match=r"evil\.example: not one of this channel's media hosts"):
        fetch("https://evil.example/x.jpg")
    assert len(responses.calls) == 0


@pytest.mark.parametrize("url", ["ftp://a.fbcdn.net/x", "file:///etc/passwd", "https://user:pw@a.fbcdn.net/x"])
def test_only_plain_http_urls(url):
    with pytest.raises(PermanentError, match="refused"):
        fetch(url)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.0.0.8",
        "[::1]",
        "files.internal.test",
        "metadata.internal.test",
        "mixed.internal.test",
        "mapped.internal.test",
    ],
)
@responses.activate
def test_private_addresses_are_refused_outside_the_sandbox(host):
    name = host.strip("[]")
    with pytest.raises(PermanentError, match="non-public address"):
        fetch(f"http://{host}/file.pdf", hosts=(name,))
    assert len(responses.calls) == 0


@responses.activate
def test_private_addresses_are_fetched_in_the_sandbox():
    responses.get("http://127.0.0.1:8100/graph/cdn/f1", body=b"pdf", content_type="application/pdf")
    responses.get("http://files.internal.test/f2", body=b"png", content_type="image/png; charset=binary")
    assert fetch("http://127.0.0.1:8100/graph/cdn/f1", hosts=("127.0.0.1",), allow_private=True) == (
        b"pdf",
        "application/pdf",
    )
    assert fetch("http://files.internal.test/f2", hosts=("files.internal.test",), allow_private=True) == (
        b"png",
        "image/png",
    )


@responses.activate
def test_redirect_is_followed_and_credentials_stay_with_their_host():
    start = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    cdn = "https://s3-external-1.twiliocdn.com/AC1/abc"
    responses.get(start, status=302, headers={"Location": cdn})
    responses.get(cdn, body=b"gif", content_type="image/gif")
    data = fetch(start, hosts=media.TWILIO_MEDIA_HOSTS, auth=("AC1", "token"), headers={"X-Extra": "1"})
    assert data == (b"gif", "image/gif")
    first, second = responses.calls
    assert first.request.headers["Authorization"].startswith("Basic ")
    assert first.request.headers["X-Extra"] == "1"
    assert "Authorization" not in second.request.headers  # the CDN is another host
    assert "X-Extra" not in second.request.headers


@responses.activate
def test_relative_redirect_on_the_same_host_keeps_credentials():
    responses.get("https://a.fbcdn.net/one", status=307, headers={"Location": "/two"})
    responses.get("https://a.fbcdn.net/two", body=b"ok")
    assert fetch("https://a.fbcdn.net/one", headers={"Authorization": "Bearer t"}) == (b"ok", "text/plain")
    assert responses.calls[1].request.headers["Authorization"] == "Bearer t"


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("https://evil.example/x", "not one of this channel's media hosts"),
        ("http://files.internal.test/x", "not one of this channel's media hosts"),
        ("http://127.0.0.1/x", "not one of this channel's media hosts"),
    ],
)
@responses.activate
def test_redirects_are_checked_again(location, reason):
    responses.get("https://a.fbcdn.net/one", status=302, headers={"Location": location})
    with pytest.raises(PermanentError, match=reason):
        fetch("https://a.fbcdn.net/one")
    assert len(responses.calls) == 1


@responses.activate
def test_redirect_to_an_allowed_host_with_a_private_address_is_refused():
    responses.get("https://a.fbcdn.net/one", status=302, headers={"Location": "http://files.internal.test/x"})
    with pytest.raises(PermanentError, match=r"non-public address 10\.1\.2\.3"):
        fetch("https://a.fbcdn.net/one", hosts=(*CDN, "files.internal.test"))
    assert len(responses.calls) == 1


@responses.activate
def test_at_most_three_redirects():
    for n in range(4):
        responses.get(f"https://a.fbcdn.net/{n}", status=302, headers={"Location": f"https://a.fbcdn.net/{n + 1}"})
    responses.get("https://a.fbcdn.net/4", body=b"never")
    with pytest.raises(PermanentError, match="more than 3 redirects"):
        fetch("https://a.fbcdn.net/0")
    assert len(responses.calls) == 4


@responses.activate
def test_three_redirects_are_followed():
    for n in range(3):
        responses.get(f"https://a.fbcdn.net/{n}", status=301, headers={"Location": f"https://a.fbcdn.net/{n + 1}"})
    responses.get("https://a.fbcdn.net/3", body=b"done")
    assert fetch("https://a.fbcdn.net/0") == (b"done", "text/plain")


@responses.activate
def test_declared_length_over_the_cap_is_refused():
    responses.get("https://a.fbcdn.net/big", body=b"x" * 10, headers={"Content-Length": "5000000"})
    with pytest.raises(media.TooLarge, match="5000000 bytes, over the 1000-byte limit"):
        fetch("https://a.fbcdn.net/big")


@responses.activate
def test_streamed_body_over_the_cap_is_refused():
    responses.get("https://a.fbcdn.net/big", body=b"x" * 1001)  # no Content-Length: counted while read
    with pytest.raises(media.TooLarge, match="is over the 1000-byte limit"):
        fetch("https://a.fbcdn.net/big")


@responses.activate
def test_body_at_the_cap_is_accepted():
    responses.get("https://a.fbcdn.net/exact", body=b"x" * 1000)
    assert fetch("https://a.fbcdn.net/exact")[0] == b"x" * 1000


def test_limit_is_named_in_megabytes():
    assert media.limit_text(5 * 1024 * 1024) == "5 MB"


@pytest.mark.parametrize("status", [500, 502, 503, 408])
@responses.activate
def test_server_errors_are_retryable(status):
    responses.get("https://a.fbcdn.net/f", status=status)
    with pytest.raises(RetryableError):
        fetch("https://a.fbcdn.net/f")


@responses.activate
def test_429_waits_as_told():
    responses.get("https://a.fbcdn.net/f", status=429, headers={"Retry-After": "17"})
    with pytest.raises(RetryableError) as caught:
        fetch("https://a.fbcdn.net/f")
    assert caught.value.wait == 17


@pytest.mark.parametrize(
    "error", [requests.ConnectionError("refused"), requests.ReadTimeout("slow"), requests.ConnectTimeout("slow")]
)
@responses.activate
def test_transport_failures_are_retryable(error):
    responses.get("https://a.fbcdn.net/f", body=error)
    with pytest.raises(RetryableError):
        fetch("https://a.fbcdn.net/f")


def test_unresolvable_host_is_retryable():
    with pytest.raises(RetryableError, match="could not resolve"):
        fetch(f"https://{UNRESOLVABLE}/f", hosts=(UNRESOLVABLE,))


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, "no longer at"), (410, "no longer at"), (401, "credentials"), (403, "credentials"), (400, "HTTP 400")],
)
@responses.activate
def test_client_errors_are_permanent(status, reason):
    responses.get("https://a.fbcdn.net/f", status=status)
    with pytest.raises(PermanentError, match=reason) as caught:
        fetch("https://a.fbcdn.net/f")
    assert not isinstance(caught.value, RetryableError)
