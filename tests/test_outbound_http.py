"""The session of every call out reads the environment once and still honours it like requests.

Real HTTP on loopback: a recording server as the destination and another as the proxy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from connector.backends.ece.client import EceClient
from connector.blending.finesse.client import FinesseClient
from connector.channels import channel_class
from connector.config.model import Asset, FinesseConfig
from connector.http_session import OutboundSession, outbound_session
from connector.sandbox.http import LoopbackServer
from connector.settings import Settings

PROXY_VARIABLES = tuple(
    name for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for name in (base, base.upper())
)


class Recorder:
    """A loopback server that answers 200 and keeps the request line's target and Authorization.
    werkzeug's server, as it takes the absolute-form targets a proxy receives."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.seen.append((environ.get("REQUEST_URI", ""), environ.get("HTTP_AUTHORIZATION")))
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*PROXY_VARIABLES, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()


destination = pytest.fixture(_recorder, name="destination")
proxy = pytest.fixture(_recorder, name="proxy")


def test_calls_go_through_the_proxy_the_environment_names(clean_environment, destination, proxy) -> None:
    clean_environment.setenv("HTTP_PROXY", proxy.url)
    url = f"{destination.url}/api/token"

    session = outbound_session()
    assert session.get(url, timeout=5).status_code == 200
    assert session.get(url, timeout=5).status_code == 200  # the second call uses the host's cached choice

    assert proxy.seen == [(url, None), (url, None)]  # absolute-form targets: a proxy request
    assert destination.seen == []


def test_no_proxy_sends_calls_for_its_hosts_direct(clean_environment, destination, proxy) -> None:
    clean_environment.setenv("HTTP_PROXY", proxy.url)
    clean_environment.setenv("NO_PROXY", "127.0.0.1")

    assert outbound_session().get(f"{destination.url}/api/token", timeout=5).status_code == 200

    assert destination.seen == [("/api/token", None)]
    assert proxy.seen == []


def test_a_netrc_entry_never_replaces_the_bearer_header(clean_environment, destination, tmp_path) -> None:
    # requests with trust_env on would send the netrc's Basic credentials instead of the Bearer token.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1\nlogin operator\npassword curl-secret\n")
    netrc.chmod(0o600)
    clean_environment.setenv("NETRC", str(netrc))

    outbound_session().get(f"{destination.url}/x", headers={"Authorization": "Bearer t0ken"}, timeout=5)

    assert destination.seen == [("/x", "Bearer t0ken")]


def test_the_environment_ca_bundle_applies_only_where_tls_is_verified_by_default(clean_environment, tmp_path) -> None:
    bundle = tmp_path / "corporate-ca.pem"
    clean_environment.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    session = outbound_session()
    url = "https://ece.example.com/system/ws/v12/interaction/chat/conversations"

    assert session.merge_environment_settings(url, {}, None, True, None)["verify"] == str(bundle)
    assert session.merge_environment_settings(url, {}, None, None, None)["verify"] == str(bundle)
    # An integration's own ca_bundle, or verify_tls: false, is passed per call and wins.
    assert session.merge_environment_settings(url, {}, None, "/etc/ece-ca.pem", None)["verify"] == "/etc/ece-ca.pem"
    assert session.merge_environment_settings(url, {}, None, False, None)["verify"] is False


def test_explicit_proxies_win_over_the_environment(clean_environment) -> None:
    clean_environment.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    session = outbound_session()
    url = "https://graph.facebook.com/v21.0/me"

    assert session.merge_environment_settings(url, {}, None, True, None)["proxies"] == {
        "https": "http://proxy.example.com:3128"
    }
    merged = session.merge_environment_settings(url, {"https": "http://other:8080"}, None, True, None)
    assert merged["proxies"] == {"https": "http://other:8080"}


def test_every_client_that_calls_out_uses_it(runtime) -> None:
    integration = runtime.config.integrations[0]
    assert isinstance(EceClient(integration, runtime.redis).session, OutboundSession)

    finesse = FinesseConfig(publisher="https://finesse-a.example.com", admin_user="admin", admin_password="secret")
    assert isinstance(FinesseClient(finesse).session, OutboundSession)

    asset: Asset = runtime.config.assets[0]
    channel = channel_class(asset.channel)(asset, runtime.settings)
    assert isinstance(channel.session, OutboundSession)


def test_call_latency_is_slow_on_average_or_while_a_call_is_open_that_long() -> None:
    """The drain grows its loops on `slow`: a provider answering in 1 s must count before its first
    call ends, and fast calls must not."""
    from connector.http_session import CallLatency

    latency = CallLatency()
    assert not latency.slow(0.1)
    with latency.timing():
        assert not latency.slow(0.1), "a call open for less than the threshold"
    with latency.timing():
        time.sleep(0.12)
        assert latency.slow(0.1), "a call open longer than the threshold, before it ends"
    assert not latency.slow(0.1), "one slow call moves the average a tenth of the way only"
    for _ in range(40):
        latency.record(0.5)
    assert latency.slow(0.1), "calls that took long lately"


class KeepAliveCounter:
    """A loopback HTTP/1.1 server with keep-alive, as ECE's and the providers' are (the sandbox's),
    that answers once `together` requests are in (so that many connections are open at once) and
    records the client port of each request: one port, one connection."""

    def __init__(self, together: int) -> None:
        self.ports: list[int] = []
        self.barrier = threading.Barrier(together, timeout=10)
        self.server = LoopbackServer(self.app, threads=together).start()
        self.url = self.server.url

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.ports.append(int(environ["REMOTE_PORT"]))
        self.barrier.wait()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]

    def calls_at_once(self, session: Any, count: int) -> None:
        threads = [
            threading.Thread(target=lambda: session.post(self.url, data=b"{}", timeout=10)) for _ in range(count)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@pytest.mark.parametrize("kept", ["pool sized from the settings", "pool smaller than the calls"])
def test_a_burst_of_calls_as_wide_as_the_drain_loops_reuses_its_connections(clean_environment, caplog, kept) -> None:
    settings = Settings.from_env(drain_threads_max=40, web_threads=8)
    loops_at_once = 2 * settings.drain_threads_max  # a job's loops and those its predecessor left finishing
    session = outbound_session(settings) if kept == "pool sized from the settings" else OutboundSession(10)
    server = KeepAliveCounter(loops_at_once)
    try:
        with caplog.at_level(logging.WARNING, logger="urllib3"):
            server.calls_at_once(session, loops_at_once)
            first_burst = set(server.ports)
            server.calls_at_once(session, loops_at_once)
        second_burst = set(server.ports[loops_at_once:])
    finally:
        server.server.stop()
    assert len(first_burst) == loops_at_once
    if kept == "pool sized from the settings":
        assert second_burst == first_burst  # every call of the second burst on a kept connection
        assert "Connection pool is full" not in caplog.text
    else:  # what a fixed pool smaller than the loops did: connections closed, new ones opened
        assert len(second_burst - first_burst) >= loops_at_once - 10
        assert "Connection pool is full" in caplog.text
