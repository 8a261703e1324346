"""Shared fixtures: a real Redis server for the whole run (the embedded one, or REDIS_URL), flushed
before each test, and the app built on the test configuration in `tests/config/`."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from connector import create_app
from connector.embedded_redis import EmbeddedRedis
from connector.runtime import Runtime
from connector.settings import Settings

TESTS = Path(__file__).resolve().parent
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


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env(
        redis_url=redis_url,
        config_dir=CONFIG_DIR,
        public_base_url=PUBLIC_BASE_URL,
        secret_key="test-secret-key",
        data_dir=tmp_path,
    )


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
