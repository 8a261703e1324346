"""compose.yaml, checked without a container runtime: valid under the Compose Specification's JSON
schema (vendored in tests/fixtures/compose-spec/), its connector commands parsed by the connector's
own CLI, its environment that of the settings, and its Redis command run by a real redis-server."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis as redis_lib
import yaml

from connector.embedded_redis import redis_server_binary
from connector.settings import Settings
from connector.store import connection
from tests.conftest import TESTS
from tests.deploy.conftest import free_port
from tests.deploy.kit import COMPOSE, MissingVariable, connector_command, interpolate
from tests.helpers import wait_for

SCHEMA = TESTS / "fixtures" / "compose-spec" / "compose-spec.json"
ROLES = {"web": "cmd_web", "worker": "cmd_worker", "listener": "cmd_listen"}
ENV = {"REDIS_PASSWORD": "redis-pw", "CONNECTOR_SECRET_KEY": "k" * 64, "PUBLIC_BASE_URL": "https://cc.example.com"}
HA_ENV = {
    **ENV,
    "REDIS_URL": "",
    "REDIS_SENTINELS": "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379",
    "REDIS_SENTINEL_MASTER": "connector",
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def validator() -> jsonschema.protocols.Validator:
    """Draft 2019-09, the draft the file's `$schema` names (spelt `draft/2019-09/schema#`, which
    jsonschema does not look up by that spelling)."""
    schema = json.loads(SCHEMA.read_text())
    assert "2019-09" in schema["$schema"]
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def test_compose_is_valid_under_the_compose_specification_schema():
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(compose())]
    assert not errors


def test_the_schema_check_catches_a_mistake():
    broken = compose()
    broken["services"]["worker"]["replicas"] = 2  # belongs under deploy:
    assert not validator().is_valid(broken)


def test_each_role_is_its_own_service_running_a_real_connector_command():
    services = compose()["services"]
    for service, handler in ROLES.items():
        args = connector_command(services[service]["command"])
        assert args.handler.__name__ == handler, service
        assert "profiles" not in services[service], f"{service} runs in every profile"
    assert connector_command(services["web"]["command"]).port == 8000
    assert services["worker"]["deploy"]["replicas"] >= 2, "workers scale (docker compose up --scale worker=N)"
    assert connector_command(services["listener"]["command"]).wait_for_section


def test_one_image_for_every_role_and_health_checks_only_where_http_is_served():
    services = compose()["services"]
    assert {services[s]["image"] for s in ROLES} == {"channel-connector:latest"}
    assert {services[s]["build"] for s in ROLES} == {"."}
    assert "healthcheck" not in services["web"], "the image's HEALTHCHECK (GET /healthz) applies"
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["listener"]["healthcheck"] == {"disable": True}
    for service in ROLES:
        assert services[service]["read_only"] and services[service]["cap_drop"] == ["ALL"]


def test_the_ha_profile_adds_a_replica_and_three_sentinels():
    services = compose()["services"]
    ha = sorted(name for name, service in services.items() if "ha" in service.get("profiles", ()))
    assert ha == ["redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"]
    assert services["redis-replica"]["command"][1:4] == ["--replicaof", "redis", "6379"]
    script = services["sentinel-1"]["entrypoint"][2]
    assert "sentinel monitor $$MASTER_NAME redis 6379 2" in script, "a quorum of two of the three sentinels"
    assert "--sentinel" in script


def environment(service: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    return {key: interpolate(str(value), env) for key, value in service["environment"].items()}


@pytest.mark.parametrize("env", [ENV, HA_ENV], ids=["single", "ha"])
def test_the_connector_environment_is_the_settings_and_valid_in_both_modes(env, monkeypatch):
    variables = {f.metadata["env"] for f in Settings.__dataclass_fields__.values() if "env" in f.metadata}
    services = compose()["services"]
    for service in ROLES:
        resolved = environment(services[service], env)
        assert set(resolved) <= variables, f"{service}: unknown variables {set(resolved) - variables}"
        for key in variables:
            monkeypatch.delenv(key, raising=False)
        for key, value in resolved.items():
            monkeypatch.setenv(key, value)
        settings = Settings.from_env()
        connection.validate(settings)
        assert connection.configured(settings)
        assert bool(settings.redis_sentinels) == (env is HA_ENV)


def test_secrets_must_be_set():
    with pytest.raises(MissingVariable, match="CONNECTOR_SECRET_KEY"):
        environment(compose()["services"]["web"], {k: v for k, v in ENV.items() if k != "CONNECTOR_SECRET_KEY"})


@pytest.mark.parametrize("fsync", ["everysec", "always"])
def test_the_redis_command_runs_with_aof_on_and_the_chosen_fsync(fsync):
    argv = [
        interpolate(part, {**ENV, "REDIS_APPENDFSYNC": fsync}) for part in compose()["services"]["redis"]["command"]
    ]
    assert argv[0] == "redis-server"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cc-compose-", dir="/tmp") as folder:
        server = subprocess.Popen(
            [redis_server_binary(), *argv[1:], "--port", str(port), "--dir", folder, "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis_lib.Redis(port=port, password=ENV["REDIS_PASSWORD"], decode_responses=True)
        try:
            wait_for(lambda: _pings(client), timeout=10, what="redis-server with compose's arguments")
            config = {str(k): str(v) for k, v in client.config_get("*").items()}
            assert (config["appendonly"], config["appendfsync"]) == ("yes", fsync)
            assert config["maxmemory-policy"] == "noeviction"
            with pytest.raises(redis_lib.AuthenticationError):
                redis_lib.Redis(port=port).ping()
        finally:
            client.close()
            server.terminate()
            server.wait(10)
        assert any(Path(folder).rglob("*.aof*")), "the AOF is written"


def _pings(client: redis_lib.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis_lib.ConnectionError:
        return False
