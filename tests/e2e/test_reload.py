"""Reloading the provisioned files across real processes: a web app and a real worker process
follow a good edit (a new rule routes what was unrouted), a broken file leaves every process as it
was, a worker that cannot load the files keeps its configuration and the API says why, SIGHUP to a
real `python -m connector run` reloads web processes, workers and the listener, and a listener
restarts to apply a changed `finesse:` section (connector/config/reload.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psutil
import pytest
import redis as redis_lib
import requests

from connector.auth.tokens import ApiTokens
from connector.channels.base import thread_id_for
from connector.settings import PROJECT_ROOT
from connector.store import threads
from tests.config import reload_files
from tests.config.reload_files import BROKEN_FIELD, BROKEN_MESSAGE, NEW_ASSET
from tests.conftest import add_operator
from tests.e2e.test_supervisor import free_port, ready
from tests.helpers import WHATSAPP_ASSET, wait_for, whatsapp_headers, whatsapp_payload

pytestmark = pytest.mark.e2e

FINESSE = {
    "publisher": "http://127.0.0.1:9",  # the discard port: the listener waits for Finesse, which is enough here
    "admin_user": "admin",
    "admin_password": "secret",
    "events": "poll",
    "liveness_interval_seconds": 30,
}


@pytest.fixture
def files(tmp_path) -> Path:
    return reload_files.copy_of_the_test_configuration(tmp_path / "entrypoints", without_rules=("whatsapp",))


@pytest.fixture
def settings(settings, files):
    return replace(settings, config_dir=files)


def webhook(post, asset: str, customer: str, wamid: str):
    body = whatsapp_payload([(customer, wamid, "hello")])
    return post(f"/webhooks/whatsapp/{asset}", data=body, headers=whatsapp_headers(body))


def drained(redis, asset: str, customer: str) -> threads.Thread:
    """The thread once a worker has handled its first message."""
    thread_id = thread_id_for("whatsapp", asset, customer)
    wait_for(lambda: threads.timeline(redis, thread_id), timeout=20, what=f"a worker to drain {customer}'s message")
    return threads.load(redis, thread_id)


def process_status(status: dict, pid: int) -> dict | None:
    return next((p for p in status["processes"] if p["pid"] == pid), None)


def at_generation(get_status, pid: int, generation: int) -> dict | None:
    found = process_status(get_status(), pid)
    return found if found is not None and found["generation"] == generation else None


def test_a_good_edit_reaches_the_web_app_and_a_real_worker(client, api_client, start_worker, files, redis):
    worker = start_worker(CONNECTOR_CONFIG_DIR=str(files))
    admin = api_client("admin")
    status = lambda: admin.get("/api/v1/config/reload").get_json()  # noqa: E731
    assert webhook(client.post, WHATSAPP_ASSET, "15550001001", "wamid.r1").status_code == 200
    assert drained(redis, WHATSAPP_ASSET, "15550001001").state.value == "unrouted", "no rule for WhatsApp yet"
    assert webhook(client.post, NEW_ASSET, "15550001002", "wamid.r2").status_code == 404, "no such asset yet"

    reload_files.add_whatsapp_routing(files)
    answer = admin.post("/api/v1/config/reload")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["generation"] == 1

    applied = wait_for(lambda: at_generation(status, worker.process.pid, 1), timeout=10, what="the worker to apply it")
    assert applied["ok"] and applied["role"] == "worker" and applied["error"] is None
    assert webhook(client.post, WHATSAPP_ASSET, "15550001003", "wamid.r3").status_code == 200
    routed = drained(redis, WHATSAPP_ASSET, "15550001003")
    # routed by the new rule (no agent is READY on its Hybrid Chat queue: the customer is told so)
    assert (routed.state.value, routed.entry_point, routed.rule) == ("unavailable", "Sales", "whatsapp-sales")
    assert webhook(client.post, NEW_ASSET, "15550001004", "wamid.r4").status_code == 200, "the web app has the asset"
    assert drained(redis, NEW_ASSET, "15550001004").rule == "whatsapp-2"


def test_a_broken_file_leaves_every_process_on_the_old_configuration(client, api_client, start_worker, files, redis):
    worker = start_worker(CONNECTOR_CONFIG_DIR=str(files))
    admin = api_client("admin")
    reload_files.break_with_a_good_part(files)

    answer = admin.post("/api/v1/config/reload")

    assert answer.status_code == 422
    label = str(files / reload_files.FILE)
    assert answer.get_json()["errors"]["files"] == {
        label: [f"{label}: rules[7] ('broken'): field '{BROKEN_FIELD}': {BROKEN_MESSAGE}"]
    }
    time.sleep(1.5)  # longer than a configuration check: a process that were told would have moved
    status = admin.get("/api/v1/config/reload").get_json()
    assert status["generation"] == 0
    assert process_status(status, worker.process.pid)["generation"] == 0
    assert webhook(client.post, NEW_ASSET, "15550002001", "wamid.b1").status_code == 404
    assert webhook(client.post, WHATSAPP_ASSET, "15550002002", "wamid.b2").status_code == 200
    assert drained(redis, WHATSAPP_ASSET, "15550002002").state.value == "unrouted", "the worker kept its rules"


def test_a_worker_that_cannot_load_the_files_keeps_its_configuration_and_the_api_says_why(
    client, api_client, start_worker, files, redis, monkeypatch
):
    worker = start_worker(CONNECTOR_CONFIG_DIR=str(files))  # started without the variable below
    monkeypatch.setenv("RELOAD_E2E_WA_TOKEN", "only-the-web-process-has-it")
    reload_files.add_whatsapp_routing(files, access_token="${RELOAD_E2E_WA_TOKEN}")
    admin = api_client("admin")
    status = lambda: admin.get("/api/v1/config/reload").get_json()  # noqa: E731

    assert admin.post("/api/v1/config/reload").status_code == 200, "the trigger's environment has the variable"

    failed = wait_for(lambda: at_generation(status, worker.process.pid, 1), timeout=10, what="the worker's outcome")
    label = str(files / reload_files.FILE)
    assert failed["ok"] is False
    assert failed["error"] == (
        f"{label}: assets[5] ('{NEW_ASSET}'): field 'access_token': "
        "environment variable RELOAD_E2E_WA_TOKEN is not set (written ${RELOAD_E2E_WA_TOKEN})"
    )
    assert worker.process.poll() is None, "the worker keeps running"
    assert webhook(client.post, WHATSAPP_ASSET, "15550003001", "wamid.e1").status_code == 200
    assert drained(redis, WHATSAPP_ASSET, "15550003001").state.value == "unrouted", "it kept its old rules"


# -- SIGHUP to `python -m connector run` ------------------------------------------------------------


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def logged(self) -> str:
        return self.log.read_text(errors="replace")

    def listener_pids(self) -> set[int]:
        found = set()
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if "listen" in child.cmdline() and child.is_running():
                    found.add(child.pid)
            except psutil.NoSuchProcess:
                continue
        return found


@pytest.fixture
def run(files) -> Iterator[Run]:
    (files / "finesse.yaml").write_text(reload_files.yaml_text({"finesse": FINESSE}))
    data_dir = Path(tempfile.mkdtemp(prefix="cc-reload-", dir="/tmp"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        CONNECTOR_CONFIG_DIR=str(files),
        CONNECTOR_DATA_DIR=str(data_dir),
        PUBLIC_BASE_URL="https://connector.example.com",
        LOG_LEVEL="INFO",
    )
    log = data_dir / "run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "connector", "run", "--port", str(port), "--workers", "1", "--web-workers", "2"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Run(process, port, data_dir, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_sighup_to_run_reloads_web_workers_and_the_listener(run, files, operator_password_hash):
    wait_for(lambda: ready(run.port), timeout=60, interval=0.2, what="/readyz to answer 200")
    redis = redis_lib.Redis(unix_socket_path=str(run.data_dir / "redis" / "redis.sock"))
    add_operator(redis, "ops", "admin", operator_password_hash)
    headers = {"Authorization": f"Bearer {ApiTokens(redis).issue('ops', 'reload test')}"}

    def status() -> dict:
        return requests.get(run.url("/api/v1/config/reload"), headers=headers, timeout=5).json()

    def post(path: str, **kwargs) -> requests.Response:
        return requests.post(run.url(path), timeout=5, **kwargs)

    listeners = wait_for(run.listener_pids, timeout=20, what="the listener to start")
    assert webhook(post, NEW_ASSET, "15550004001", "wamid.h1").status_code == 404
    workers = [p for p in status()["processes"] if p["role"] == "worker"]
    assert workers and all(p["generation"] == 0 for p in workers)

    reload_files.add_whatsapp_routing(files)
    reload_files.edit_finesse(files, liveness_interval_seconds=29)
    run.process.send_signal(signal.SIGHUP)

    def workers_applied() -> bool:
        found = status()
        mine = [p for p in found["processes"] if p["role"] == "worker"]
        return found["generation"] == 1 and bool(mine) and all(p["generation"] == 1 and p["ok"] for p in mine)

    wait_for(workers_applied, timeout=15, interval=0.2, what="the workers to apply generation 1")
    assert (status()["requested_by"], status()["via"]) == ("SIGHUP", "signal")
    wait_for(
        lambda: webhook(post, NEW_ASSET, "15550004002", "wamid.h2").status_code == 200,
        timeout=10,
        interval=0.2,
        what="the web processes to know the new asset",
    )
    routed = drained(redis, NEW_ASSET, "15550004002")
    assert (routed.entry_point, routed.rule) == ("Sales", "whatsapp-2")
    wait_for(
        lambda: "listener exited to apply reloaded configuration" in run.logged(),
        timeout=20,
        what="the listener to exit for the changed finesse: section",
    )
    wait_for(
        lambda: run.listener_pids() and not (run.listener_pids() & listeners),
        timeout=10,
        what="the supervisor to start a listener with the changed section at once",
    )

    reload_files.add_a_broken_rule(files)
    run.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in run.logged(), timeout=10, what="the refusal in the log")
    assert f"rules[7] ('broken'): field '{BROKEN_FIELD}': {BROKEN_MESSAGE}" in run.logged()
    time.sleep(1.5)
    assert status()["generation"] == 1, "a broken file starts no generation"
    assert run.process.poll() is None, "SIGHUP does not stop the supervisor"
    redis.close()

    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(60) == 0
    assert "Logging error" not in run.logged(), "gunicorn's own lines format cleanly at shutdown"


# -- the listener and the finesse: section ------------------------------------------------------------


@pytest.fixture
def listen(files, redis_url, tmp_path):
    """start() → `python -m connector listen` on `files` (with a finesse: section) and its log file."""
    (files / "finesse.yaml").write_text(reload_files.yaml_text({"finesse": FINESSE}))
    started: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "listener.log"

    def start() -> tuple[subprocess.Popen[bytes], Path]:
        env = {**os.environ, "REDIS_URL": redis_url, "CONNECTOR_CONFIG_DIR": str(files), "LOG_LEVEL": "INFO"}
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "connector", "listen"], cwd=PROJECT_ROOT, env=env, stdout=output, stderr=output
            )
        started.append(process)
        return process, log

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_listener_restarts_only_for_a_changed_finesse_section(api_client, files, listen):
    admin = api_client("admin")
    status = lambda: admin.get("/api/v1/config/reload").get_json()  # noqa: E731
    listener, log = listen()
    wait_for(lambda: at_generation(status, listener.pid, 0), timeout=20, what="the listener to start")

    reload_files.add_whatsapp_routing(files)
    assert admin.post("/api/v1/config/reload").status_code == 200
    assert wait_for(lambda: at_generation(status, listener.pid, 1), timeout=10, what="the listener to apply it")["ok"]
    time.sleep(1.5)
    assert listener.poll() is None, "a reload that leaves finesse: as it was leaves the listener running"

    reload_files.edit_finesse(files, liveness_interval_seconds=29)
    assert admin.post("/api/v1/config/reload").status_code == 200
    assert listener.wait(15) == 3, "EXIT_TO_RELOAD: the supervisor restarts it with the new section"
    assert "the finesse: section changed" in log.read_text()


def test_a_listener_whose_finesse_section_is_removed_idles_until_one_returns(api_client, files, listen):
    admin = api_client("admin")
    status = lambda: admin.get("/api/v1/config/reload").get_json()  # noqa: E731
    listener, log = listen()
    wait_for(lambda: at_generation(status, listener.pid, 0), timeout=20, what="the listener to start")

    (files / "finesse.yaml").unlink()
    assert admin.post("/api/v1/config/reload").status_code == 200
    wait_for(lambda: "media blending stops" in log.read_text(), timeout=10, what="the listener to stop blending")
    time.sleep(1.5)
    assert listener.poll() is None, "without a section it idles instead of exiting into a restart loop"

    (files / "finesse.yaml").write_text(reload_files.yaml_text({"finesse": FINESSE}))
    assert admin.post("/api/v1/config/reload").status_code == 200
    assert listener.wait(15) == 3
    assert "a finesse: section was added" in log.read_text()
