"""Two `python -m connector listen` processes against the Finesse simulator (as on two hosts sharing
one Redis): the lease lets one drive the agents; the other stays a standby that calls Finesse not
once, and takes over within seconds when the first is killed -9."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from connector.blending.chat_events import publish_chat_assigned, publish_chat_ended
from connector.settings import PROJECT_ROOT
from connector.store import keys
from tests.blending.finesse_helpers import ADMIN, AGENT, CHAT_REASON, provision, running_sandbox
from tests.conftest import CONFIG_DIR
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

LEASE_SECONDS = 3
STARTED = "routing listener started"
STANDBY = "standby: another listener drives the Finesse agents"
FINESSE_CALL = '"finesse '  # the client's DEBUG line for every request it makes ("finesse GET /... -> 200")


@pytest.fixture
def sandbox():
    # Polled events and the administrator's account: no agent needs to log in to the connector.
    with running_sandbox(admin_may_change_states=True) as sandbox:
        provision(sandbox)
        yield sandbox


@pytest.fixture
def config_dir(tmp_path, sandbox) -> Path:
    folder = tmp_path / "entrypoints"
    shutil.copytree(CONFIG_DIR, folder)
    section = {
        "publisher": sandbox.publisher_url,
        "subscriber": sandbox.subscriber_url,
        "admin_user": ADMIN[0],
        "admin_password": ADMIN[1],
        "events": "poll",
        "liveness_interval_seconds": 0.5,
        "sync_interval_seconds": 1,
    }
    (folder / "finesse.yaml").write_text(yaml.safe_dump({"finesse": section}))
    return folder


class ListenProcess:
    def __init__(self, name: str, log: Path, env: dict[str, str]) -> None:
        self.name, self.log = name, log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "connector", "listen"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def listen(redis_url, redis, config_dir, tmp_path) -> Iterator[Callable[[str], ListenProcess]]:
    started: list[ListenProcess] = []
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CONNECTOR_CONFIG_DIR": str(config_dir),
        "CONNECTOR_SECRET_KEY": "lease-e2e-secret",
        "CONNECTOR_LISTENER_LEASE_SECONDS": str(LEASE_SECONDS),
        "LOG_LEVEL": "DEBUG",
    }

    def start(name: str) -> ListenProcess:
        process = ListenProcess(name, tmp_path / f"{name}.log", env)
        started.append(process)
        return process

    yield start
    for each in started:
        if each.process.poll() is None:
            os.killpg(each.process.pid, signal.SIGKILL)
            each.process.wait(10)


def voice(sandbox, agent: str = AGENT) -> tuple[str, str | None]:
    found = sandbox.model.agents[agent]
    return found.state, found.reason_code_id


def test_a_standby_listener_takes_over_within_seconds_of_the_holders_death(listen, sandbox, redis):
    first = listen("first")
    wait_for(lambda: STARTED in first.logged(), timeout=30, what="the first listener to start driving agents")
    second = listen("second")
    wait_for(lambda: STANDBY in second.logged(), timeout=30, what="the second listener to wait as a standby")
    assert redis.get(keys.listener_lease()).decode().startswith(f"listener:{os.uname().nodename}:{first.process.pid}:")

    publish_chat_assigned(redis, AGENT, "chat-1")
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), timeout=15, what="the holder to set NOT_READY")
    time.sleep(LEASE_SECONDS + 1)  # several renewals: the standby stays one
    standby_log = second.logged()
    assert second.process.poll() is None
    assert STARTED not in standby_log
    assert FINESSE_CALL in first.logged(), "the holder's requests are logged this way"
    assert FINESSE_CALL not in standby_log, "the standby made no Finesse request at all"
    assert standby_log.count(STANDBY) == 1, "logged once, not at every retry"

    os.killpg(first.process.pid, signal.SIGKILL)
    killed = time.monotonic()
    first.process.wait(10)
    wait_for(lambda: STARTED in second.logged(), timeout=LEASE_SECONDS + 10, what="the standby to take over")
    took_over = time.monotonic() - killed
    assert took_over < LEASE_SECONDS + 3, f"taken over {took_over:.1f} s after the kill"
    assert "listener lease taken over" in second.logged()
    assert redis.get(keys.listener_lease()).decode().startswith(f"listener:{os.uname().nodename}:{second.process.pid}:")

    publish_chat_ended(redis, AGENT, "chat-1")
    wait_for(lambda: voice(sandbox)[0] == "READY", timeout=15, what="the new holder to restore READY")
    publish_chat_assigned(redis, AGENT, "chat-2")
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), timeout=15, what="the new holder to set NOT_READY")


def test_a_holder_whose_lease_is_taken_stops_driving_agents_and_stands_by(listen, sandbox, redis):
    only = listen("only")
    wait_for(lambda: STARTED in only.logged(), timeout=30, what="the listener to start driving agents")
    redis.set(keys.listener_lease(), "listener:elsewhere:1:other", px=60_000)  # e.g. it lapsed in a long pause
    wait_for(lambda: "listener lease lost" in only.logged(), timeout=LEASE_SECONDS + 5, what="the loss")
    wait_for(lambda: STANDBY in only.logged(), timeout=10, what="the listener to stand by")
    assert only.process.poll() is None
    stopped_at = len(only.logged())
    time.sleep(1.5)
    assert FINESSE_CALL not in only.logged()[stopped_at:], "a standby again: no Finesse request"
    publish_chat_assigned(redis, AGENT, "chat-1")
    time.sleep(1.5)
    assert voice(sandbox)[0] == "READY", "nobody drives the agents while the other holder has the lease"

    redis.delete(keys.listener_lease())  # the other holder released it
    wait_for(lambda: only.logged().count(STARTED) == 2, timeout=10, what="the listener to take the lease back")
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), timeout=15, what="the pending chat to be blended")


def test_a_holder_cut_off_from_redis_falls_silent_before_its_lease_can_lapse(listen, sandbox, redis):
    only = listen("only")
    wait_for(lambda: STARTED in only.logged(), timeout=30, what="the listener to start driving agents")
    before = len(sandbox.model.requests)
    time.sleep(1.0)
    assert len(sandbox.model.requests) > before, "the holder probes Finesse's nodes twice a second"

    paused = time.monotonic()
    redis.execute_command("CLIENT", "PAUSE", 6000, "ALL")  # Redis unreachable for 6 s: no renewal answers
    time.sleep(LEASE_SECONDS - (time.monotonic() - paused))  # the earliest a standby could take over
    silent_from = len(sandbox.model.requests)
    time.sleep(2.0)
    assert len(sandbox.model.requests) == silent_from, "no Finesse request once the lease may have lapsed"

    wait_for(lambda: "listener lease lost" in only.logged(), timeout=15, what="the loss to be logged")
    wait_for(lambda: only.logged().count(STARTED) == 2, timeout=15, what="the lease taken again once Redis answers")
    publish_chat_assigned(redis, AGENT, "chat-1")
    wait_for(lambda: voice(sandbox) == ("NOT_READY", CHAT_REASON), timeout=15, what="agents driven again")
