"""The one Redis connection factory (REDIS_URL or Sentinel) and CONNECTOR_DURABILITY, on real
redis-server processes (the embedded binary: masters, replicas, sentinels)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from redis.connection import SSLConnection, UnixDomainSocketConnection
from redis.sentinel import SentinelConnectionPool

from connector import create_app
from connector.channels.base import thread_id_for
from connector.embedded_redis import EmbeddedRedis, SentinelGroup, free_port
from connector.runtime import Runtime
from connector.settings import Settings
from connector.store import connection, keys
from connector.store.connection import RedisNotConfigured, RedisSettingsError
from connector.store.durability import Durability, Mode, NotReplicated
from connector.supervisor import Supervisor
from tests.conftest import CONFIG_DIR, PUBLIC_BASE_URL
from tests.helpers import WHATSAPP_ASSET, whatsapp_headers, whatsapp_payload

CUSTOMER = "15557771234"
THREAD = thread_id_for("whatsapp", WHATSAPP_ASSET, CUSTOMER)


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cc-conn-", dir="/tmp"))  # short: unix socket path limit
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")  # only its existence is checked before connecting
    return path


# -- the factory: which client for which settings ------------------------------------------------------


def test_redis_url_gives_a_plain_client_with_the_shared_timeouts():
    client = connection.connect(Settings(redis_url="redis://127.0.0.1:6390/2"))
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 2)
    assert kwargs["socket_timeout"] == connection.SOCKET_TIMEOUT_SECONDS
    assert kwargs["health_check_interval"] == connection.HEALTH_CHECK_SECONDS
    assert "password" not in kwargs or kwargs["password"] is None


def test_redis_password_and_username_apply_over_the_url():
    client = connection.connect(
        Settings(redis_url="redis://u:old@127.0.0.1:6390", redis_username="app", redis_password="s3cret")
    )
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("app", "s3cret")


def test_a_unix_socket_url_stays_a_unix_socket():
    client = connection.connect(Settings(redis_url="unix:///tmp/r.sock"))
    assert client.connection_pool.connection_class is UnixDomainSocketConnection


def test_a_rediss_url_verifies_with_the_given_ca(ca_file):
    client = connection.connect(Settings(redis_url="rediss://redis.example:6380", redis_tls_ca_file=ca_file))
    pool = client.connection_pool
    assert pool.connection_class is SSLConnection
    assert pool.connection_kwargs["ssl_ca_certs"] == str(ca_file)
    assert pool.connection_kwargs["ssl_cert_reqs"] == "required"


def test_sentinels_give_a_master_client_that_asks_them(ca_file):
    settings = Settings(
        redis_sentinels=("s1.example:26379", "s2.example:26380"),
        redis_sentinel_master="prod",
        redis_username="app",
        redis_password="master-pw",
        redis_sentinel_password="sentinel-pw",
        redis_tls=True,
        redis_tls_ca_file=ca_file,
    )
    client = connection.connect(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "prod" and pool.is_master
    assert pool.connection_class is connection.MasterSSLConnection
    assert pool.connection_kwargs["password"] == "master-pw"
    assert pool.connection_kwargs["username"] == "app"
    assert pool.connection_kwargs["ssl_ca_certs"] == str(ca_file)
    assert pool.connection_kwargs["retry"] is not None, "a command is retried through a failover"
    sentinels = pool.sentinel_manager.sentinels
    assert [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"]) for s in sentinels
    ] == [
        ("s1.example", 26379),
        ("s2.example", 26380),
    ]
    sentinel_kwargs = sentinels[0].connection_pool.connection_kwargs
    assert sentinel_kwargs["password"] == "sentinel-pw", "the sentinels' own password, not the master's"
    assert sentinels[0].connection_pool.connection_class is SSLConnection


def test_sentinels_without_tls_use_plain_connections():
    client = connection.connect(Settings(redis_sentinels=("127.0.0.1:26379",), redis_sentinel_master="m"))
    assert client.connection_pool.connection_class is connection.MasterConnection
    assert "password" not in client.connection_pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs or (
        client.connection_pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs["password"] is None
    )


def test_from_env_reads_the_sentinel_variables(monkeypatch):
    monkeypatch.setenv("REDIS_SENTINELS", " a:26379 , b:26380 ,")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "prod")
    monkeypatch.setenv("REDIS_TLS", "1")
    monkeypatch.setenv("CONNECTOR_DURABILITY", "replicated")
    monkeypatch.setenv("CONNECTOR_REPLICA_WAIT_MS", "250")
    settings = Settings.from_env()
    assert settings.redis_sentinels == ("a:26379", "b:26380")
    assert connection.sentinel_addresses(settings) == [("a", 26379), ("b", 26380)]
    assert settings.redis_tls
    assert Durability.from_settings(settings) == Durability(Mode.REPLICATED, 250)


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        (
            Settings(redis_url="redis://x", redis_sentinels=("a:1",), redis_sentinel_master="m"),
            "REDIS_URL or REDIS_SENTINELS",
        ),
        (Settings(redis_sentinels=("a:26379",)), "REDIS_SENTINEL_MASTER"),
        (Settings(redis_sentinel_master="m"), "REDIS_SENTINELS"),
        (Settings(redis_sentinels=("a:26379", "b"), redis_sentinel_master="m"), "REDIS_SENTINELS entry 'b'"),
        (Settings(redis_sentinels=("a:port",), redis_sentinel_master="m"), "REDIS_SENTINELS entry 'a:port'"),
        (Settings(redis_sentinels=("a:70000",), redis_sentinel_master="m"), "REDIS_SENTINELS entry 'a:70000'"),
        (Settings(redis_url="http://x"), "REDIS_URL"),
        (Settings(redis_url="redis://x", redis_tls=True), "REDIS_TLS=1 with REDIS_URL needs a rediss://"),
        (Settings(redis_url="redis://x", redis_tls_ca_file=Path("/etc/hostname")), "REDIS_TLS_CA_FILE"),
        (
            Settings(
                redis_sentinels=("a:1",),
                redis_sentinel_master="m",
                redis_tls=True,
                redis_tls_ca_file=Path("/no/such.pem"),
            ),
            "REDIS_TLS_CA_FILE '/no/such.pem'",
        ),
    ],
)
def test_bad_redis_settings_name_the_variable(settings, names):
    with pytest.raises(RedisSettingsError, match=names):
        connection.connect(settings)


def test_no_redis_at_all_says_how_to_get_one():
    with pytest.raises(RedisNotConfigured, match=r"REDIS_URL .*REDIS_SENTINELS.*python -m connector run"):
        connection.connect(Settings())
    assert not connection.configured(Settings())
    assert connection.configured(Settings(redis_sentinels=("a:1",), redis_sentinel_master="m"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(durability="fsync"), "CONNECTOR_DURABILITY must be one of everysec, always, replicated; got 'fsync'"),
        (Settings(durability="replicated", replica_wait_ms=0), "CONNECTOR_REPLICA_WAIT_MS"),
    ],
)
def test_bad_durability_settings_name_the_variable(settings, message):
    with pytest.raises(ValueError, match=message):
        Durability.from_settings(settings)


def test_describe_hides_the_password():
    assert connection.describe(Settings(redis_url="redis://app:pw@h:6379/0")) == "redis://app:***@h:6379/0"
    sentinel = Settings(redis_sentinels=("a:1", "b:2"), redis_sentinel_master="m")
    assert connection.describe(sentinel) == "master 'm' via sentinels a:1,b:2"


def test_the_runtime_reaches_a_real_master_through_real_sentinels(folder):
    group = SentinelGroup(folder, replicas=1, sentinels=1).start()
    try:
        settings = Settings(redis_sentinels=(group.sentinel_list,), redis_sentinel_master=group.master_name)
        runtime = Runtime(settings)
        runtime.redis.set("written", "through sentinel")
        master = redis_lib.Redis(host="127.0.0.1", port=group.servers[0].port)
        assert master.get("written") == b"through sentinel"
        assert runtime.redis.connection_pool.connection_kwargs  # the pool found the master by asking
    finally:
        group.stop()


class Interrupted(Exception):
    pass


def test_a_read_interrupted_on_a_sentinel_connection_leaves_no_reply_for_the_next_command(folder):
    """RQ's warm shutdown raises in the middle of its blocking dequeue; the next command on that
    pooled connection must get its own reply, at once (redis/redis-py#4292)."""
    group = SentinelGroup(folder, replicas=0, sentinels=1).start()
    previous = signal.getsignal(signal.SIGALRM)

    def interrupt(_signum: int, _frame: object) -> None:
        raise Interrupted

    try:
        client = connection.connect(
            Settings(redis_sentinels=(group.sentinel_list,), redis_sentinel_master=group.master_name)
        )
        client.set("probe", "mine")
        signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            client.blpop(["nothing"], timeout=2)
        started = time.monotonic()
        assert client.get("probe") == b"mine"
        assert time.monotonic() - started < 1, "not queued behind the interrupted BLPOP"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        group.stop()


# -- durability: always ------------------------------------------------------------------------------


def test_always_starts_the_embedded_redis_fsyncing_before_each_answer(folder):
    supervisor = Supervisor(Settings(durability="always", data_dir=folder))
    server = supervisor.start_embedded_redis()
    try:
        client = redis_lib.Redis.from_url(server.url)
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        server.stop()


def test_everysec_starts_the_embedded_redis_as_before(folder):
    server = Supervisor(Settings(data_dir=folder)).start_embedded_redis()
    try:
        assert redis_lib.Redis.from_url(server.url).config_get("appendfsync") == {"appendfsync": "everysec"}
    finally:
        server.stop()


def test_replicated_refuses_the_embedded_redis_which_has_no_replica(folder):
    with pytest.raises(SystemExit, match="replicated needs a Redis with a replica"):
        Supervisor(Settings(durability="replicated", data_dir=folder)).start_embedded_redis()


def test_always_on_an_everysec_redis_logs_an_error_at_start(redis, caplog):
    caplog.set_level(logging.WARNING, logger="connector.store.durability")
    Durability(Mode.ALWAYS).check_server(redis)  # the suite's embedded Redis runs everysec
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "appendfsync everysec" in errors[0].getMessage()


def test_always_on_an_always_redis_is_quiet(folder, caplog):
    server = EmbeddedRedis(folder, appendfsync="always").start()
    try:
        caplog.set_level(logging.WARNING, logger="connector.store.durability")
        Durability(Mode.ALWAYS).check_server(redis_lib.Redis.from_url(server.url))
        assert not caplog.records
    finally:
        server.stop()


def test_always_where_config_is_disabled_warns_it_cannot_check(folder, caplog):
    server = EmbeddedRedis(folder, extra_args=("--rename-command", "CONFIG", "")).start()
    try:
        caplog.set_level(logging.WARNING, logger="connector.store.durability")
        Durability(Mode.ALWAYS).check_server(redis_lib.Redis.from_url(server.url))
        [record] = caplog.records
        assert record.levelno == logging.WARNING and "cannot check" in record.getMessage()
    finally:
        server.stop()


# -- durability: replicated --------------------------------------------------------------------------


def replicated_client(master: EmbeddedRedis, tmp_path: Path):
    settings = Settings.from_env(
        redis_url=master.url,
        config_dir=CONFIG_DIR,
        public_base_url=PUBLIC_BASE_URL,
        secret_key="test-secret-key",
        data_dir=tmp_path,
        durability="replicated",
        replica_wait_ms=100,
    )
    app = create_app(runtime=Runtime(settings))
    app.config["TESTING"] = True
    return app.test_client()


def post_message(client, wamid: str):
    body = whatsapp_payload([(CUSTOMER, wamid, "hello")])
    return client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))


def test_replicated_answers_503_when_no_replica_confirms_and_keeps_the_message(folder, tmp_path, caplog):
    master = EmbeddedRedis(folder / "master", port=free_port()).start()
    try:
        client = replicated_client(master, tmp_path)
        logging.getLogger().addHandler(caplog.handler)  # create_app's logs.configure replaced the root's handlers
        answer = post_message(client, "wamid.alone")
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "1"
        assert answer.get_json()["error"] == "unavailable"
        assert any("no replica confirmed" in r.getMessage() for r in caplog.records)
        store = redis_lib.Redis.from_url(master.url)
        assert store.llen(keys.inbox(THREAD)) == 1, "stored anyway: the 503 loses nothing"

        retry = post_message(client, "wamid.alone")  # the provider retries: a duplicate, still unconfirmed
        assert retry.status_code == 503
        assert store.llen(keys.inbox(THREAD)) == 1, "the retry is deduplicated"
    finally:
        master.stop()


def test_replicated_answers_200_once_a_replica_holds_the_message(folder, tmp_path):
    master = EmbeddedRedis(folder / "master", port=free_port()).start()
    replica = EmbeddedRedis(
        folder / "replica", port=free_port(), extra_args=("--replicaof", "127.0.0.1", str(master.port))
    ).start()
    try:
        SentinelGroup.wait_for_replicas(master, 1)
        client = replicated_client(master, tmp_path)
        assert post_message(client, "wamid.safe").status_code == 200
        copy = redis_lib.Redis.from_url(replica.url)
        assert copy.llen(keys.inbox(THREAD)) == 1, "the replica had it before the 200"
    finally:
        replica.stop()
        master.stop()


def test_the_probe_makes_wait_cover_writes_of_other_connections(folder):
    """WAIT counts replicas up to its own connection's last write: on a pooled connection that wrote
    nothing, it "confirms" a write made on another one that no replica has. The probe prevents that."""
    master = EmbeddedRedis(folder / "master", port=free_port()).start()
    replica = EmbeddedRedis(
        folder / "replica", port=free_port(), extra_args=("--replicaof", "127.0.0.1", str(master.port))
    ).start()
    assert replica.process is not None
    try:
        SentinelGroup.wait_for_replicas(master, 1)
        writer = redis_lib.Redis.from_url(master.url)
        waiter = redis_lib.Redis.from_url(master.url)
        waiter.ping()
        os.kill(replica.process.pid, signal.SIGSTOP)  # the replica stops acknowledging
        writer.rpush("item", "x")
        assert waiter.wait(1, 100) == 1, "WAIT alone on another connection claims the write is replicated"
        with pytest.raises(NotReplicated):
            Durability(Mode.REPLICATED, replica_wait_ms=100).confirm(waiter)
    finally:
        if replica.process.poll() is None:
            os.kill(replica.process.pid, signal.SIGCONT)
        replica.stop()
        master.stop()


def test_everysec_and_always_confirm_without_a_round_trip(redis):
    for mode in (Mode.EVERYSEC, Mode.ALWAYS):
        Durability(mode).confirm(redis)
    assert redis.get(keys.durability_probe()) is None


def test_replicated_ece_callback_answers_503_without_a_replica_and_keeps_the_event(folder, tmp_path):
    import json

    from connector.store.boxes import Box
    from tests.e2e.stack import INTEGRATION, write_config

    master = EmbeddedRedis(folder / "master", port=free_port()).start()
    try:
        config = write_config(tmp_path / "config", "http://127.0.0.1:9", "http://127.0.0.1:9")
        settings = Settings.from_env(
            redis_url=master.url,
            config_dir=config,
            secret_key="x",
            data_dir=tmp_path,
            durability="replicated",
            replica_wait_ms=100,
        )
        client = create_app(runtime=Runtime(settings)).test_client()
        store = redis_lib.Redis.from_url(master.url)
        thread = "0" * 32
        store.set(keys.ece_conversation(INTEGRATION, "conv-1"), json.dumps({"thread": thread, "sequence": 1}))
        batch = {
            "message": [{"id": "7", "conversation": {"id": "conv-1"}, "type": {"value": "text/plain"}, "content": "hi"}]
        }
        for _ in range(2):  # ECE retries the batch it got no 200 for
            answer = client.post(
                f"/ece/{INTEGRATION}/callback", json=batch, headers={"Authorization": "Bearer e2e-callback-token"}
            )
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
            assert store.llen(Box.OUT.key(thread)) == 1, "stored once, kept, the retry deduplicated"
    finally:
        master.stop()


# -- Redis unreachable: the intake answers 503, so the provider retries --------------------------------


def intake_on(settings: Settings):
    app = create_app(runtime=Runtime(settings))
    app.config["TESTING"] = True
    return app.test_client()


def test_the_intake_answers_503_when_redis_is_down(folder, tmp_path):
    server = EmbeddedRedis(folder).start()
    client = intake_on(
        Settings.from_env(
            redis_url=server.url, config_dir=CONFIG_DIR, public_base_url=PUBLIC_BASE_URL, data_dir=tmp_path
        )
    )
    server.kill()
    answer = post_message(client, "wamid.down")
    assert answer.status_code == 503 and answer.get_json()["error"] == "unavailable"


def test_through_sentinels_a_master_gone_for_good_is_503_after_the_failover_retries(folder, tmp_path):
    group = SentinelGroup(folder, replicas=0, sentinels=1).start()  # no replica: no failover can happen
    try:
        settings = Settings.from_env(
            redis_sentinels=(group.sentinel_list,),
            redis_sentinel_master=group.master_name,
            config_dir=CONFIG_DIR,
            public_base_url=PUBLIC_BASE_URL,
            data_dir=tmp_path,
        )
        client = intake_on(settings)
        assert post_message(client, "wamid.before").status_code == 200
        group.servers[0].kill()
        started = time.monotonic()
        answer = post_message(client, "wamid.after")
        waited = time.monotonic() - started
        assert answer.status_code == 503
        assert waited >= connection.FAILOVER_RETRY_SECONDS * 0.8, "it waited for a failover before giving up"
    finally:
        group.stop()
