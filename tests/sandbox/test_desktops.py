"""The sandbox logs its Finesse agents in to the connector as their desktops' gadget would: the connector
then holds each agent's own credentials (media blending acts with them), even before the listener's
first agent sync, and a refused or unreachable login is a warning that says what it means."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from connector.blending.agents import AgentRegistry
from connector.blending.finesse.credentials import CredentialStore
from connector.sandbox.desktops import log_in_agents
from connector.sandbox.finesse import FinesseSandbox
from connector.sandbox.http import serving
from tests.blending.finesse_helpers import AGENT, AGENT_PASSWORD, OTHER, finesse_config, provision, running_sandbox

LOGIN_NAME = "ada"


@pytest.fixture
def sandbox() -> Iterator[FinesseSandbox]:
    with running_sandbox() as sandbox:
        provision(sandbox)
        sandbox.model.agents[AGENT].login_name = LOGIN_NAME
        yield sandbox


@pytest.fixture
def connector_url(app, runtime, sandbox) -> Iterator[str]:
    """The connector with the finesse: section pointing at the simulator, on loopback."""
    runtime._config = replace(runtime.provisioned, finesse=finesse_config(sandbox))
    with serving(app) as server:
        yield server.url


def test_each_agent_is_logged_in_with_their_own_credentials_before_any_sync(runtime, connector_url, caplog):
    assert AgentRegistry(runtime.redis).agent_id_for_login(LOGIN_NAME) is None, "no agent sync has run"
    agents = [(AGENT, LOGIN_NAME, AGENT_PASSWORD), (OTHER, "bob", "not-bobs-password")]
    with caplog.at_level(logging.INFO, logger="connector.sandbox.desktops"):
        done = log_in_agents(connector_url, agents, threading.Event(), deadline_seconds=10)
    assert done == [LOGIN_NAME]
    credentials = CredentialStore(runtime.redis, runtime.settings.secret_key)
    assert credentials.get(AGENT) == (LOGIN_NAME, AGENT_PASSWORD)
    assert credentials.get(OTHER) is None
    [refused] = [r for r in caplog.records if r.name == "connector.sandbox.desktops" and r.levelno == logging.WARNING]
    assert refused.login == "bob" and "401" in refused.getMessage() and "log in at /agent/" in refused.getMessage()


def test_a_connector_that_never_answers_is_a_warning_at_the_deadline(caplog):
    with serving() as server:
        url = server.url  # a port that was ours a moment ago: nothing listens there now
    with caplog.at_level(logging.WARNING, logger="connector.sandbox.desktops"):
        done = log_in_agents(url, [(AGENT, LOGIN_NAME, AGENT_PASSWORD)], threading.Event(), deadline_seconds=1.5)
    assert done == []
    [warning] = [r for r in caplog.records if r.name == "connector.sandbox.desktops"]
    assert "did not take the sandbox agents' logins in time" in warning.getMessage()
    assert warning.logins == [LOGIN_NAME]
