"""Fetching files whose URL arrived inside a message, safely (docs/architecture.md, "Security";
docs/protocols/channels.md, "Inbound media").

A URL in a webhook is chosen by whoever sent the message, so a fetch is allowed only when
- the scheme is http(s) and the host is one the channel expects (its provider's media hosts, the
  operator-configured API host) — exact names or `*.suffix` patterns;
- every address the host resolves to is public (no private, loopback, link-local, reserved,
  shared or unspecified ranges), unless the sandbox runs (`allow_private`): the connector must not
  become a way into the network it runs in;
- each redirect (at most MAX_REDIRECTS) passes the same checks, and credentials are sent only to
  the host they were given for;
- the body stays under `max_bytes`, counted while streaming, so a huge or endless file costs at
  most the cap.

Residual risk, accepted: a host's DNS answer could change between the check and the connection
(rebinding); the host allowlist limits this to hosts whose DNS the provider or operator controls.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from connector.channels.sending import call
from connector.errors import PermanentError, RetryableError
from connector.http_session import retry_after

MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# Where each provider serves customer files (a redirect may lead from the API to its CDN).
TWILIO_MEDIA_HOSTS = ("api.twilio.com", "*.twiliocdn.com", "*.twilio.com")
META_MEDIA_HOSTS = ("*.fbcdn.net", "*.fbsbx.com", "lookaside.fbsbx.com", "*.facebook.com", "*.whatsapp.net")


class TooLarge(PermanentError):
    """The file exceeds the byte cap; the reason names the limit."""


def host_of(url: str) -> str:
    """The lowercased host of a URL ("" when it has none): what allowlists are written in."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def host_allowed(host: str, patterns: Collection[str]) -> bool:
    """`host` equals a pattern, or a pattern `*.suffix` and host is a subdomain of `suffix`."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.strip().lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif pattern and host == pattern:
            return True
    return False


def public_address(address: str) -> bool:
    """True for a globally routable unicast address; IPv4-mapped IPv6 is judged as the IPv4 it maps."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for private, loopback, link-local, reserved, shared (100.64/10) and
    # documentation ranges; multicast is global but never a file server.
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # The host is on an allowlist, so a failed lookup is most likely passing.
        raise RetryableError(f"could not resolve {host} ({exc})") from None
    return sorted({str(info[4][0]) for info in infos})


def check_url(url: str, *, allowed_hosts: Collection[str], allow_private: bool) -> str:
    """The URL's host when the policy allows fetching it; PermanentError naming the reason otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise PermanentError(f"refused to fetch {url!r}: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise PermanentError(f"refused to fetch {url!r}: only http and https URLs are fetched")
    if parts.username is not None or parts.password is not None:
        raise PermanentError(f"refused to fetch a URL with credentials in it (host {parts.hostname})")
    host = (parts.hostname or "").lower()
    if not host or not host_allowed(host, allowed_hosts):
        raise PermanentError(
            f"refused to fetch from {host or 'no host'}: not one of this channel's media hosts "
            f"({', '.join(allowed_hosts)}); a file elsewhere is not fetched"
        )
    if not allow_private:
        for address in _resolve(host, port):
            if not public_address(address):
                raise PermanentError(
                    f"refused to fetch from {host}: it resolves to the non-public address {address} "
                    "(private ranges are fetched only in the sandbox)"
                )
    return host


def fetch(
    url: str,
    *,
    session: requests.Session,
    headers: Mapping[str, str] | None = None,
    auth: Any = None,
    max_bytes: int,
    allowed_hosts: Collection[str],
    allow_private: bool,
) -> tuple[bytes, str | None]:
    """GET `url` under the policy above → (bytes, Content-Type without parameters or None).

    Raises RetryableError (timeouts, connection errors, 5xx, 408, 429 with its wait) or
    PermanentError (policy refusals, TooLarge, other 4xx, too many redirects).
    """
    current = url
    first_host = None
    for _ in range(MAX_REDIRECTS + 1):
        host = check_url(current, allowed_hosts=allowed_hosts, allow_private=allow_private)
        first_host = first_host or host
        same_host = host == first_host  # credentials go only to the host they were given for
        response = call(
            session,
            "GET",
            current,
            what=f"download from {host}",
            headers=dict(headers or {}) if same_host else None,
            auth=auth if same_host else None,
            stream=True,
            allow_redirects=False,
        )
        with response:
            if response.status_code in REDIRECT_STATUSES and response.headers.get("Location"):
                current = urljoin(current, response.headers["Location"])
                continue
            _check_status(response, host)
            data = _read_capped(response, host, max_bytes)
            content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower() or None
            return data, content_type
    raise PermanentError(f"refused to follow more than {MAX_REDIRECTS} redirects from {first_host}")


def _check_status(response: requests.Response, host: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429 or status == 408 or status >= 500:
        raise RetryableError(f"download from {host} answered HTTP {status}", wait=retry_after(response))
    if status in (401, 403):
        raise PermanentError(f"download from {host} refused (HTTP {status}): check the asset's credentials")
    if status in (404, 410):
        raise PermanentError(f"the file is no longer at {host} (HTTP {status}); provider media links expire")
    raise PermanentError(f"download from {host} failed with HTTP {status}")


def _read_capped(response: requests.Response, host: str, max_bytes: int) -> bytes:
    limit = limit_text(max_bytes)
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"the file at {host} is {int(declared)} bytes, over the {limit} limit (max_attachment_bytes)")
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_content(CHUNK_BYTES):
            total += len(chunk)
            if total > max_bytes:  # counted after decoding, so a compressed bomb stops here too
                raise TooLarge(f"the file at {host} is over the {limit} limit (max_attachment_bytes)")
            chunks.append(chunk)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        raise RetryableError(f"download from {host} broke off ({type(exc).__name__})") from None
    except requests.exceptions.ContentDecodingError:
        raise PermanentError(f"the file at {host} is not in the encoding it declares") from None
    return b"".join(chunks)


def limit_text(max_bytes: int) -> str:
    if max_bytes % (1024 * 1024) == 0:
        return f"{max_bytes // (1024 * 1024)} MB"
    return f"{max_bytes}-byte"
