"""Shared fixtures: a real Redis server for the whole run (the embedded one, or REDIS_URL), flushed
before each test, and the app built on the test configuration in `tests/config/`."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from connector import create_app
from connector.embedded_redis import EmbeddedRedis
from connector.runtime import Runtime
from connector.settings import Settings

TESTS = Path(__file__).resolve().parent

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE: "ci" (the default, `make test`) keeps the fuzzers
# of tests/fuzz/ within their time budget; "fuzz" (`make fuzz`) runs them long. Tests that set their
# own max_examples keep it under both.
_FUZZ_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
hypothesis_settings.register_profile("ci", max_examples=100, deadline=None, suppress_health_check=_FUZZ_HEALTH)
hypothesis_settings.register_profile(
    "fuzz", max_examples=2000, deadline=None, suppress_health_check=_FUZZ_HEALTH, print_blob=True
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
CONFIG_DIR = TESTS / "config"
PUBLIC_BASE_URL = "https://connector.example.com"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server: REDIS_URL if given, else the embedded one in a private folder."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    # Unix socket paths are limited to ~100 bytes: keep the folder short.
    folder = Path(tempfile.mkdtemp(prefix="cc-redis-", dir="/tmp"))
    server = EmbeddedRedis(folder).start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis(redis_url: str) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()


def settings_for(redis_url: str, config_dir: Path, data_dir: Path) -> Settings:
    """The tests' settings over `config_dir`: tests that need their own configuration folder (flows,
    simulators' URLs) build it and call this, so every test runs with the same secret and base URL."""
    return Settings.from_env(
        redis_url=redis_url,
        config_dir=config_dir,
        public_base_url=PUBLIC_BASE_URL,
        secret_key="test-secret-key",
        data_dir=data_dir,
    )


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return settings_for(redis_url, CONFIG_DIR, tmp_path)


@pytest.fixture
def runtime(settings: Settings, redis: redis_lib.Redis) -> Runtime:
    return Runtime(settings)


@pytest.fixture
def app(runtime: Runtime):
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


# -- operators: logged-in UI clients and API clients by role (tests/admin, tests/api, browser tests) --

OPERATOR_PASSWORD = "operator-password-1"


@pytest.fixture(scope="session")
def operator_password_hash() -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(OPERATOR_PASSWORD)  # once: scrypt costs ~0.1 s a hash


def add_operator(redis: redis_lib.Redis, name: str, role: str, password_hash: str) -> None:
    """Write an account the way Users.save stores it, without paying for a fresh hash per test."""
    import json
    import time

    from connector.store import keys

    redis.hset(
        keys.users(), name, json.dumps({"role": role, "password_hash": password_hash, "created_at": time.time()})
    )


def csrf_of(client) -> str:
    """The CSRF token of the client's session, as every page carries it in <meta name="csrf-token">."""
    page = client.get("/admin/").get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert match, "the page carries no CSRF token"
    return match.group(1)


@pytest.fixture
def operator(app, runtime, operator_password_hash):
    """operator(role) → a test client logged in through the login form as user <role>, with `.csrf`."""

    def login(role: str = "admin", name: str | None = None):
        name = name or role
        add_operator(runtime.redis, name, role, operator_password_hash)
        client = app.test_client()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/admin/login").get_data(True))
        assert token, "the login form carries no CSRF token"
        answer = client.post("/admin/login", data={"name": name, "password": OPERATOR_PASSWORD, "csrf_token": token[1]})
        assert answer.status_code == 302, answer.get_data(as_text=True)
        client.csrf = csrf_of(client)
        return client

    return login


@pytest.fixture
def api_client(app, runtime, operator_password_hash):
    """api_client(role) → a test client that sends an API token of user <role> (no session, no CSRF)."""
    from connector.auth.tokens import ApiTokens

    def make(role: str = "admin", name: str | None = None):
        name = name or f"api-{role}"
        add_operator(runtime.redis, name, role, operator_password_hash)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ApiTokens(runtime.redis).issue(name, 'tests')}"
        return client

    return make


# -- items the operator tests build on (tests/admin, tests/api) -------------------------------------

ECE_CLIENT = ("lab-client-key", "lab-client-secret")
"""The client application the `ece_simulator` accepts."""


@pytest.fixture
def ece_simulator():
    """The ECE simulator on loopback (entry points 1001, 1002): (simulator, base_url of its API)."""
    from connector.sandbox.ece import EceSimulator
    from connector.sandbox.http import LoopbackServer
    from connector.sandbox.server import ece_app

    simulator = EceSimulator(client_key=ECE_CLIENT[0], client_secret=ECE_CLIENT[1], entry_points=("1001", "1002"))
    server = LoopbackServer(ece_app(simulator)).start()
    try:
        yield simulator, f"{server.url}/ece"
    finally:
        server.stop()


@pytest.fixture
def helpdesk(runtime):
    """A UI-made hybrid integration "Helpdesk" with one entry point "Billing" (2001)."""
    runtime.overrides.save(
        "integrations",
        {
            "name": "Helpdesk",
            "type": "hybrid",
            "base_url": "http://127.0.0.1:9/router",
            "entry_points": [{"name": "Billing", "id": "2001"}],
        },
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()


# -- the fast lane: `make test-fast` runs what is not marked e2e ------------------------------------

E2E_FOLDERS = ("e2e", "sandbox")
"""Tests under these folders run real worker processes, simulators or a browser."""
E2E_FIXTURES = frozenset(
    {"ece_simulator", "start_worker", "live_server", "stack", "stack_factory", "sandbox", "sims", "listener", "wired"}
)
"""Fixtures that start a simulator, a worker process or a listener on loopback."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts real processes or simulators `e2e`, so `-m "not e2e"` is the unit
    suite (`make test-fast`) without each module having to remember its marker. Tests marked `long`
    go first: collected last, the two-way parallel run ended with one process idle while the other
    ran the two-minute soak alone."""
    for item in items:
        folder = Path(str(item.path)).relative_to(TESTS).parts[0]
        if folder in E2E_FOLDERS or E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: the rest keep their order
