"""The XMPP notification transport: agents' passwords never cross the network in clear unless the
operator wrote `finesse.xmpp_tls: false`.

Real sockets on loopback, the simulator's notification service as the peer: STARTTLS by default (the
server records each connection's negotiation steps and the bytes it received before TLS), direct TLS,
refusals (an untrusted certificate, a server without STARTTLS) with no plain fallback, plain TCP only
when configured and then a WARNING, and the configuration's validation."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.blending.finesse.client import FinesseClient
from connector.blending.finesse.xmpp import announce_transport, endpoint_provider, xmpp_port
from connector.config.loader import ConfigError, load_config
from connector.config.model import FinesseConfig
from connector.config.schemas import FinesseSchema
from connector.sandbox.finesse import FinesseSandbox
from tests.blending.finesse_helpers import (
    AGENT,
    AGENT_PASSWORD,
    OTHER,
    OTHER_PASSWORD,
    finesse_config,
    provision,
    running_sandbox,
)
from tests.blending.xmpp_helpers import Listener, connected, endpoint_of, listen, listeners
from tests.helpers import wait_for

__all__ = ["listeners"]  # the fixture

FINESSE_FIELDS = {"admin_user": "admin", "admin_password": "secret"}
SECRETS = (AGENT_PASSWORD, base64.b64encode(f"\x00{AGENT}\x00{AGENT_PASSWORD}".encode()).decode())


@pytest.fixture
def sandbox() -> Iterator[FinesseSandbox]:
    with running_sandbox() as sb:
        provision(sb)
        yield sb


def cleartext(sb: FinesseSandbox) -> str:
    """Everything the server received, on every connection, before TLS."""
    return "".join(bytes(c.cleartext).decode(errors="replace") for c in list(sb.xmpp.connections))


def steps(sb: FinesseSandbox) -> list[list[str]]:
    return [list(c.steps) for c in list(sb.xmpp.connections)]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("connector")]


def refused_attempts(listener: Listener, agent: str, attempts: int = 2) -> None:
    """Wait until the agent's session failed `attempts` times in a row (retries included)."""
    session = listener.source.sessions[agent]
    wait_for(lambda: session.failures >= attempts, timeout=10, what=f"{attempts} refused attempts")
    assert not session.connected and session.sessions_started == 0


# -- STARTTLS, the default ------------------------------------------------------------------------


@pytest.mark.parametrize("required", [True, False], ids=["starttls-required", "starttls-offered"])
def test_starttls_by_default_and_the_password_only_after_tls(
    required: bool, listeners: list[Listener], caplog: pytest.LogCaptureFixture
) -> None:
    """The configuration's defaults (no xmpp_tls written) give STARTTLS; the server sees the TLS
    upgrade before <auth>, and not one byte of the password before TLS, even when it would also
    accept SASL in clear."""
    caplog.set_level(logging.INFO, "connector")
    with running_sandbox(xmpp_starttls_required=required) as sb:
        provision(sb)
        config = finesse_config(sb)
        assert config.xmpp_tls == "starttls"
        endpoint = endpoint_provider(config, FinesseClient(config))()
        assert endpoint is not None and endpoint.tls == "starttls" and endpoint.verified
        listener = listen(listeners, endpoint)
        listener.source.add_agent(AGENT, AGENT_PASSWORD)
        connected(listener)
        sb.switch.start_call(AGENT, "OTHER_IN")
        wait_for(lambda: listener.events, timeout=5, what="an event over STARTTLS")

        assert steps(sb) == [["tcp", "starttls", "tls", "auth", "authenticated", "bound"]]
        before_tls = cleartext(sb)
        assert "<starttls" in before_tls and "<auth" not in before_tls
        assert not any(secret in before_tls for secret in SECRETS)
    subscribed = [r.getMessage() for r in caplog.records if "subscribed on" in r.getMessage()]
    assert subscribed and "over STARTTLS (TLSv1." in subscribed[0] and "certificate verified" in subscribed[0]


def test_the_configured_defaults_are_starttls_on_5222_and_direct_tls_on_5223() -> None:
    minimal = FinesseConfig(publisher="https://finesse-a.example.com:8445")
    assert (minimal.xmpp_tls, xmpp_port(minimal)) == ("starttls", 5222)
    direct = FinesseConfig(publisher="https://finesse-a.example.com:8445", xmpp_tls="direct")
    assert xmpp_port(direct) == 5223
    custom = FinesseConfig(publisher="https://finesse-a.example.com:8445", xmpp_tls="direct", xmpp_port=15223)
    assert xmpp_port(custom) == 15223


# -- direct TLS -----------------------------------------------------------------------------------


def test_direct_tls_verified_against_the_ca_bundle(listeners: list[Listener]) -> None:
    with running_sandbox(xmpp_tls="direct") as sb:
        provision(sb)
        written = {"xmpp_tls": "direct", "xmpp_port": sb.xmpp_port, "ca_bundle": str(sb.xmpp_ca_file)}
        config = FinesseSchema().load({**FINESSE_FIELDS, "publisher": sb.publisher_url, **written})
        endpoint = endpoint_provider(config, FinesseClient(config))()
        assert endpoint is not None and endpoint.tls == "direct" and endpoint.ca_bundle == str(sb.xmpp_ca_file)
        listener = listen(listeners, endpoint)
        listener.source.add_agent(AGENT, AGENT_PASSWORD)
        connected(listener)
        sb.switch.start_call(AGENT, "OTHER_IN")
        wait_for(lambda: listener.events, timeout=5, what="an event over direct TLS")
        assert steps(sb) == [["tls", "auth", "authenticated", "bound"]]
        assert cleartext(sb) == ""


def test_verify_tls_false_connects_but_is_warned_and_a_ca_bundle_still_wins(
    sandbox: FinesseSandbox, listeners: list[Listener], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "connector")
    announce_transport(finesse_config(sandbox, ca_bundle=None, verify_tls=False))
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "NOT verified" in r.getMessage()]
    assert warned and "verify_tls: false" in warned[0].getMessage()
    caplog.clear()
    announce_transport(finesse_config(sandbox, verify_tls=False))  # with the simulator's ca_bundle
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    insecure = listen(listeners, endpoint_of(sandbox, ca_bundle=None, verify_tls=False))
    insecure.source.add_agent(AGENT, AGENT_PASSWORD)
    connected(insecure)
    assert steps(sandbox)[-1][:3] == ["tcp", "starttls", "tls"]
    assert any("certificate NOT verified" in r.getMessage() for r in caplog.records)


# -- refusals: no plain fallback ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "overrides", "expected"),
    [
        ("starttls", {"ca_bundle": None}, "is not trusted (self-signed certificate); set finesse.ca_bundle"),
        ("direct", {"ca_bundle": None}, "is not trusted (self-signed certificate); set finesse.ca_bundle"),
        ("starttls", {"domain": "finesse.elsewhere.example"}, "must name its xmppDomain"),  # trusted CA, wrong name
    ],
    ids=["starttls-untrusted", "direct-untrusted", "starttls-wrong-name"],
)
def test_an_untrusted_certificate_is_refused_with_a_clear_error_and_no_plain_fallback(
    mode: str, overrides: dict[str, object], expected: str, listeners: list[Listener], caplog: pytest.LogCaptureFixture
) -> None:
    with running_sandbox(xmpp_tls=mode) as sb:
        provision(sb)
        listener = listen(listeners, endpoint_of(sb, tls=mode, **overrides))
        listener.source.add_agent(AGENT, AGENT_PASSWORD)
        refused_attempts(listener, AGENT)
        assert sb.xmpp.connected() == []
        assert not any("auth" in attempt for attempt in steps(sb)), "SASL never started on any attempt"
        assert not any(secret in cleartext(sb) for secret in SECRETS)
        if mode == "starttls":
            assert steps(sb)[0] == ["tcp", "starttls", "tls-failed"]
    refusals = [e for e in errors(caplog) if f"agent {AGENT} not connected: TLS refused" in e]
    assert refusals and expected in refusals[0]


def test_a_server_without_starttls_is_refused_when_tls_is_required(
    listeners: list[Listener], caplog: pytest.LogCaptureFixture
) -> None:
    with running_sandbox(xmpp_tls="plain") as sb:  # offers SASL PLAIN in clear, no STARTTLS
        provision(sb)
        listener = listen(listeners, endpoint_of(sb))  # the default: STARTTLS
        listener.source.add_agent(AGENT, AGENT_PASSWORD)
        refused_attempts(listener, AGENT)
        assert sb.xmpp.connected() == []
        assert all(attempt == ["tcp"] for attempt in steps(sb)), steps(sb)
        assert "<auth" not in cleartext(sb)
        assert not any(secret in cleartext(sb) for secret in SECRETS)
    refusals = [e for e in errors(caplog) if "offers no STARTTLS: refusing to log in over plain TCP" in e]
    assert refusals and f"agent {AGENT} not connected" in refusals[0]


def test_direct_tls_to_a_port_without_tls_is_refused(
    sandbox: FinesseSandbox, listeners: list[Listener], caplog: pytest.LogCaptureFixture
) -> None:
    listener = listen(listeners, endpoint_of(sandbox, tls="direct"))  # the STARTTLS port
    listener.source.add_agent(AGENT, AGENT_PASSWORD)
    refused_attempts(listener, AGENT)
    assert all(attempt == ["tcp"] for attempt in steps(sandbox)), steps(sandbox)
    assert not any(secret in cleartext(sandbox) for secret in SECRETS)
    assert any("TLS handshake with" in e and "Finesse's direct TLS port is 5223" in e for e in errors(caplog))


def test_a_ca_bundle_that_is_not_there_yet_is_an_error_and_retried_until_it_is(
    tmp_path: Path, listeners: list[Listener], caplog: pytest.LogCaptureFixture
) -> None:
    """`make run` starts the simulator and the listener side by side: the listener may look for the
    simulator's certificate before it is written, and must connect once it is."""
    bundle = tmp_path / "later" / "finesse-xmpp-ca.pem"
    with running_sandbox(xmpp_cert_path=tmp_path / "now.pem") as sb:
        provision(sb)
        listener = listen(listeners, endpoint_of(sb, ca_bundle=str(bundle)))
        listener.source.add_agent(AGENT, AGENT_PASSWORD)
        refused_attempts(listener, AGENT)
        assert any(f"finesse.ca_bundle {bundle} cannot be read" in e for e in errors(caplog))
        assert steps(sb) == []  # nothing was even tried on the wire
        bundle.parent.mkdir()
        bundle.write_bytes((tmp_path / "now.pem").read_bytes())
        connected(listener)


# -- plain TCP, only when configured --------------------------------------------------------------


def test_plain_tcp_only_with_xmpp_tls_false_and_then_a_warning(
    listeners: list[Listener], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "connector")
    with running_sandbox(xmpp_tls="plain") as sb:
        provision(sb)
        config = finesse_config(sb, xmpp_tls="plain")
        announce_transport(config)
        warnings = [r for r in caplog.records if "plain TCP" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        assert "finesse.xmpp_tls: false" in warnings[0].getMessage()
        endpoint = endpoint_provider(config, FinesseClient(config))()
        assert endpoint is not None and endpoint.tls == "plain"
        listener = listen(listeners, endpoint)
        listener.source.add_agent(AGENT, AGENT_PASSWORD)
        listener.source.add_agent(OTHER, OTHER_PASSWORD)
        connected(listener, AGENT)
        connected(listener, OTHER)
        assert all("tls" not in attempt for attempt in steps(sb))
    assert any("over plain TCP (finesse.xmpp_tls: false)" in r.getMessage() for r in caplog.records)


def test_plain_mode_against_a_server_that_requires_starttls_says_so(
    sandbox: FinesseSandbox, listeners: list[Listener], caplog: pytest.LogCaptureFixture
) -> None:
    listener = listen(listeners, endpoint_of(sandbox, tls="plain"))
    listener.source.add_agent(AGENT, AGENT_PASSWORD)
    refused_attempts(listener, AGENT)
    assert any("requires STARTTLS: set finesse.xmpp_tls: starttls" in e for e in errors(caplog))
    assert not any(secret in cleartext(sandbox) for secret in SECRETS)


# -- configuration ---------------------------------------------------------------------------------

FINESSE = """
finesse:
  publisher: https://finesse-a.example.com:8445
  admin_user: admin
  admin_password: secret
"""


def load_finesse(tmp_path: Path, extra: str) -> FinesseConfig:
    (tmp_path / "finesse.yaml").write_text(FINESSE + extra)
    config = load_config(tmp_path, env={})
    assert config.finesse is not None
    return config.finesse


@pytest.mark.parametrize(
    ("written", "mode", "port"),
    [
        ("", "starttls", 5222),
        ("  xmpp_tls: starttls\n", "starttls", 5222),
        ("  xmpp_tls: direct\n", "direct", 5223),
        ("  xmpp_tls: true\n", "direct", 5223),  # the boolean of older files: direct TLS
        ("  xmpp_tls: false\n", "plain", 5222),
        ("  xmpp_tls: direct\n  xmpp_port: 15223\n", "direct", 15223),
    ],
)
def test_xmpp_tls_modes_and_the_port_that_follows(tmp_path: Path, written: str, mode: str, port: int) -> None:
    config = load_finesse(tmp_path, written)
    assert (config.xmpp_tls, xmpp_port(config)) == (mode, port)


@pytest.mark.parametrize(
    ("written", "field", "message"),
    [
        ("  xmpp_tls: yes please\n", "xmpp_tls", "must be starttls (default), direct or false"),
        ("  xmpp_tls: 5223\n", "xmpp_tls", "must be starttls (default), direct or false"),
        ("  xmpp_tls: startls\n", "xmpp_tls", "must be starttls (default), direct or false"),
    ],
)
def test_a_wrong_xmpp_setting_is_an_error_naming_the_field(
    tmp_path: Path, written: str, field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_finesse(tmp_path, written)
    (problem,) = error.value.problems
    assert (problem.field, problem.file.endswith("finesse.yaml")) == (field, True)
    assert message in problem.message
    assert f"field '{field}'" in str(problem)
