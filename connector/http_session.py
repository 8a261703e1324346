"""The HTTP session of every call out (ECE, Finesse, the providers' APIs).

requests, with `trust_env` on, re-reads the environment on every request: the proxy variables and
NO_PROXY (several passes over os.environ), REQUESTS_CA_BUNDLE, and a ~/.netrc on disk. That is
about a fifth of a call's CPU on the 2-core reference machine, paid on every relayed message. The
environment does not change while the process runs, so this session reads it once: the proxies per
scheme and host, the CA bundle when the session is made. A ~/.netrc is never read: every call sets
its own Authorization, and requests would replace a Bearer header with the netrc's Basic
credentials for that host.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from connector.settings import Settings

if TYPE_CHECKING:
    # Aliases of the requests stubs (types-requests), not names of requests itself.
    from requests.sessions import _Cert, _Settings, _TextMapping, _Verify

PROXY_CACHE_LIMIT = 256
"""Hosts whose proxy choice is kept; media downloads reach many CDN hosts, so the cache is bounded."""


class CallLatency:
    """How long this process's calls out have been taking lately: a moving average of each call's
    duration, and the calls still open (the drain grows its loops only while calls, not the CPU,
    are what they wait on). The average is updated without a lock: a lost update among racing
    threads only delays it a little."""

    WEIGHT = 0.1
    """Share of the newest call in the average."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._open: dict[int, float] = {}
        self._numbers = itertools.count()

    def record(self, seconds: float) -> None:
        self.seconds += self.WEIGHT * (seconds - self.seconds)

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Time one call: open while it runs, then part of the average."""
        number, began = next(self._numbers), time.monotonic()
        with self._lock:
            self._open[number] = began
        try:
            yield
        finally:
            with self._lock:
                del self._open[number]
            self.record(time.monotonic() - began)

    def slow(self, threshold_seconds: float) -> bool:
        """Calls take `threshold_seconds` or more: on average lately, or a call open that long now.
        The second catches the first slow calls at once: the average learns of a call only when it
        ends, a second late with a provider answering in 1 s."""
        if self.seconds >= threshold_seconds:
            return True
        with self._lock:
            oldest = min(self._open.values(), default=None)
        return oldest is not None and time.monotonic() - oldest >= threshold_seconds


CALL_LATENCY = CallLatency()
"""Of every OutboundSession of this process."""


def pool_size(settings: Settings) -> int:
    """Connections kept open per host: as many calls as one process can have open at once, so a
    burst reuses them. urllib3 closes each connection that does not fit back in the pool, and logs
    a warning for it, so a pool smaller than the calls in flight costs a connect (a TLS handshake)
    per call beyond it. A worker's calls out are made by its drain loops, at most twice
    CONNECTOR_DRAIN_THREADS_MAX at once (a job's own and those its predecessor left finishing,
    relay/drain.py; an integration's `max_in_flight` only lowers that for its calls); a web
    process's by its request threads (CONNECTOR_WEB_THREADS: an agent's Finesse sign-in)."""
    return max(2 * settings.drain_threads_max, settings.web_threads, 1)


class OutboundSession(requests.Session):
    """A requests Session that honours HTTP(S)_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE like requests
    does, read once per host instead of once per request. Redirects keep the first host's proxies.
    `pool_maxsize`: connections kept per host (`pool_size`)."""

    def __init__(self, pool_maxsize: int) -> None:
        super().__init__()
        adapter = HTTPAdapter(pool_maxsize=pool_maxsize)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.trust_env = False  # no per-request reads of the environment, no ~/.netrc
        self.environment_ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._proxies_by_host: dict[tuple[str, str], dict[str, str]] = {}

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        with CALL_LATENCY.timing():
            return super().request(*args, **kwargs)

    def environment_proxies(self, url: str) -> dict[str, str]:
        """What requests would take from the environment for `url` (empty when NO_PROXY matches)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        found = self._proxies_by_host.get(key)
        if found is None:
            found = get_environ_proxies(url)
            if len(self._proxies_by_host) >= PROXY_CACHE_LIMIT:
                self._proxies_by_host.clear()
            self._proxies_by_host[key] = found
        return found

    def merge_environment_settings(  # type: ignore[override]  # requests passes the prepared URL: a str
        self,
        url: str,
        proxies: _TextMapping | None,
        stream: bool | None,
        verify: _Verify | None,
        cert: _Cert | None,
    ) -> _Settings:
        proxies = dict(proxies or {})
        for scheme, proxy in self.environment_proxies(url).items():
            proxies.setdefault(scheme, proxy)
        if (verify is True or verify is None) and self.environment_ca_bundle:
            verify = self.environment_ca_bundle
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


def outbound_session(settings: Settings | None = None) -> requests.Session:
    """A session pooled for the process's calls in flight: `settings`' (a channel's), else the
    environment's, which is where a process's settings come from."""
    return OutboundSession(pool_size(settings or Settings.from_env()))


def retry_after(response: requests.Response, *, now: float | None = None) -> float | None:
    """The server's `Retry-After` in seconds, or None without a readable one. RFC 9110 allows
    delta-seconds or an HTTP-date; a date without a zone is read as UTC (HTTP dates are GMT)."""
    raw = response.headers.get("Retry-After", "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))
