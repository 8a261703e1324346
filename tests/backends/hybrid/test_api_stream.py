"""The agent's Server-Sent Events over a real HTTP server on loopback: ids are the stream's cursor,
`Last-Event-ID` resumes, comments keep the connection alive, a response ends after a bounded time
and gives back its thread slot (also when the client goes away). And the web process's threads:
configurable, enough for the agents' streams besides the webhooks."""

from __future__ import annotations

import threading
import time

import gunicorn.util
import pytest
import requests
from gunicorn.workers import gthread

from connector import live
from connector.backends.hybrid import stream
from connector.sandbox.http import serving
from connector.settings import Settings
from connector.supervisor import Supervisor
from tests.backends.hybrid.agent_api_helpers import bearer, login, with_local_agents
from tests.helpers import wait_for

AGENT = "local:zoe"


@pytest.fixture
def site(app, runtime, monkeypatch):
    with_local_agents(runtime)
    monkeypatch.setattr(live, "STREAM_SECONDS", 1.5)
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.4)
    monkeypatch.setattr(live, "SLOTS", live.Slots())
    token = login(app.test_client())["token"]
    with serving(app) as server:
        yield server.url, token


def read_sse(response: requests.Response) -> list[tuple[str, str]]:
    """(field, value) of every line, comments as ("", text), until the server ends the response."""
    lines = []
    for raw in response.iter_lines(chunk_size=1, decode_unicode=True):
        if raw:
            name, _, value = raw.partition(":")
            lines.append((name, value.strip()))
    return lines


def data_events(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(id, data) of each event that carries data."""
    found, last_id = [], None
    for name, value in lines:
        if name == "id":
            last_id = value
        elif name == "data":
            found.append((last_id, value))
    return found


def test_events_arrive_with_their_ids_and_last_event_id_resumes(site, runtime):
    url, token = site
    first = stream.publish(runtime.redis, AGENT, "note", text="one")
    second = stream.publish(runtime.redis, AGENT, "note", text="two")

    started = time.monotonic()
    with requests.get(f"{url}/agent/api/stream?after=0-0", headers=bearer(token), stream=True, timeout=10) as answer:
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        assert answer.headers["Cache-Control"] == "no-store"
        lines = read_sse(answer)
    assert time.monotonic() - started < 5, "the response ends after a bounded time"
    assert lines[0] == ("retry", str(live.RETRY_MS))
    events = data_events(lines)
    assert [event_id for event_id, _ in events] == [first, second]
    assert '"text":"one"' in events[0][1] and f'"id":"{first}"' in events[0][1]
    assert ("", "keep-alive") in lines, "a comment heartbeat while nothing happens"

    resumed_headers = {**bearer(token), "Last-Event-ID": first}
    with requests.get(f"{url}/agent/api/stream?after=0-0", headers=resumed_headers, stream=True, timeout=10) as again:
        assert [event_id for event_id, _ in data_events(read_sse(again))] == [second], "Last-Event-ID wins"
    assert live.SLOTS.used == 0, "each response gave its slot back"


def test_a_new_stream_gets_what_arrives_and_names_the_cursor_first(site, runtime):
    url, token = site
    old = stream.publish(runtime.redis, AGENT, "note", text="old")
    timer = threading.Timer(0.5, lambda: stream.publish(runtime.redis, AGENT, "note", text="new"))
    timer.start()
    with requests.get(f"{url}/agent/api/stream", headers=bearer(token), stream=True, timeout=10) as answer:
        lines = read_sse(answer)
    timer.join()
    events = data_events(lines)
    assert len(events) == 1 and '"text":"new"' in events[0][1], "only new events without a cursor"
    ids = [value for name, value in lines if name == "id"]
    assert ids == [old, events[0][0]], "the cursor first (the browser keeps it as Last-Event-ID), then the event's"


def test_a_client_that_goes_away_gives_its_slot_back(site, runtime, monkeypatch):
    url, token = site
    monkeypatch.setattr(live, "STREAM_SECONDS", 30.0)
    answer = requests.get(f"{url}/agent/api/stream", headers=bearer(token), stream=True, timeout=10)
    assert next(answer.iter_lines(chunk_size=1)).startswith(b"retry:")
    wait_for(lambda: live.SLOTS.used == 1, timeout=5, what="the stream holds a slot")
    answer.close()
    wait_for(lambda: live.SLOTS.used == 0, timeout=10, what="the slot given back after the client left")


def test_with_no_slot_free_the_stream_sends_what_is_there_and_asks_for_a_slower_retry(site, runtime, monkeypatch):
    url, token = site
    monkeypatch.setattr(live, "STREAM_SECONDS", 30.0)
    limit = live.stream_slots(runtime.settings.web_threads)
    assert all(live.SLOTS.take(limit) for _ in range(limit))
    waiting = stream.publish(runtime.redis, AGENT, "note", text="waiting")
    started = time.monotonic()
    with requests.get(f"{url}/agent/api/stream?after=0-0", headers=bearer(token), stream=True, timeout=10) as answer:
        lines = read_sse(answer)
    assert time.monotonic() - started < 3, "answered at once, holding no thread"
    assert lines[0] == ("retry", str(live.BUSY_RETRY_MS))
    assert [event_id for event_id, _ in data_events(lines)] == [waiting]
    assert live.SLOTS.used == limit


def test_the_stream_needs_a_session_and_a_valid_cursor(site):
    url, token = site
    assert requests.get(f"{url}/agent/api/stream", timeout=10).status_code == 401
    bad = requests.get(f"{url}/agent/api/stream", headers={**bearer(token), "Last-Event-ID": "x"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_cursor"


# -- the web process's threads ---------------------------------------------------------------------


def test_web_threads_come_from_the_environment_and_reach_gunicorn(monkeypatch):
    monkeypatch.delenv("CONNECTOR_WEB_THREADS", raising=False)
    assert Settings.from_env().web_threads == 48
    monkeypatch.setenv("CONNECTOR_WEB_THREADS", "32")
    settings = Settings.from_env()
    assert settings.web_threads == 32
    argv = Supervisor(settings).gunicorn_argv("python")
    # gunicorn's threaded worker (connector/web_worker.py buffers requests in front of its threads)
    worker_class = gunicorn.util.load_class(argv[argv.index("--worker-class") + 1])
    assert issubclass(worker_class, gthread.ThreadWorker)
    assert argv[argv.index("--threads") + 1] == "32"
    monkeypatch.setenv("CONNECTOR_WEB_THREADS", "many")
    with pytest.raises(ValueError, match="CONNECTOR_WEB_THREADS"):
        Settings.from_env()


def test_waiting_agents_leave_threads_for_webhooks():
    assert live.stream_slots(48) == 36, "the default: ~100 agents over three web processes"
    assert live.stream_slots(32) == 24
    assert live.stream_slots(4) == 1
    assert live.stream_slots(1) == 1
