"""The entry point indicators: colours from readings (a table), storage in Redis, refreshes against
ECE mocked with `responses` (the profile's answers) and against the ECE simulator."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import responses

from connector.backends import Availability, indicators
from connector.backends.indicators import Reading
from connector.config.model import EntryPoint, Integration
from connector.sandbox.ece import EceSimulator
from connector.sandbox.http import LoopbackServer
from connector.sandbox.server import ece_app
from connector.store import keys

BASE = "https://ece.example.com"
CHAT = f"{BASE}/system/egain/chat/entrypoint"
SUPPORT = EntryPoint(name="Support", id="1001", max_wait_seconds=60)


def integration(base_url: str = BASE, entry_points: tuple[EntryPoint, ...] = (SUPPORT,)) -> Integration:
    return Integration(
        name="ece-ind", type="ece", base_url=base_url, client_key="k", client_secret="s", entry_points=entry_points
    )


def availability(**overrides) -> Availability:
    fields = {
        "chat_allowed": True,
        "agents_available": True,
        "capacity": 3,
        "eligibility": 0,
        "queue_depth": 1,
        "wait_seconds": 20,
    }
    fields.update(overrides)
    return Availability(**fields)


def colours(entry_point: EntryPoint, reading: Reading | None) -> dict[str, str]:
    return {name: i.state for name, i in indicators.indicators_of(entry_point, reading).items()}


# -- colours: the reference's four indicators, row by row ---------------------------------------------

ALL_GREEN = {"agent": "green", "depth": "green", "wait": "green", "status": "green"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, ALL_GREEN),
        (
            {"agents_available": False, "capacity": 0, "eligibility": 1, "chat_allowed": False},
            {"agent": "red", "depth": "red", "wait": "green", "status": "red"},
        ),
        ({"capacity": 0, "eligibility": 2, "chat_allowed": False}, {**ALL_GREEN, "depth": "red", "status": "red"}),
        ({"wait_seconds": 61}, {**ALL_GREEN, "wait": "red"}),
        ({"wait_seconds": 60}, ALL_GREEN),
        ({"wait_seconds": None}, {**ALL_GREEN, "wait": "unknown"}),
        ({"capacity": None, "eligibility": None}, {**ALL_GREEN, "depth": "unknown"}),
        ({"chat_allowed": False}, {**ALL_GREEN, "status": "red"}),
    ],
)
def test_colours_from_a_reading(overrides, expected):
    reading = Reading("1001", time.time(), availability(**overrides))
    assert colours(SUPPORT, reading) == expected


def test_the_detail_names_the_number_behind_each_colour():
    reading = Reading("1001", time.time(), availability(capacity=2, queue_depth=4, wait_seconds=45))
    shown = indicators.indicators_of(EntryPoint(name="Support", id="1001", max_wait_seconds=120), reading)
    assert shown["agent"].detail == "an agent can take chats: 2 slots free"
    assert shown["depth"].detail == "2 slots free, 4 waiting"
    assert shown["wait"].detail == "wait 45 s, threshold 120 s"
    assert "the contact center and the connector both take chats" in shown["status"].detail


def test_disabled_in_the_connector_is_red_status_even_without_a_reading():
    disabled = EntryPoint(name="Support", id="1001", enabled=False)
    assert colours(disabled, Reading("1001", time.time(), availability()))["status"] == "red"
    assert colours(disabled, None) == {"agent": "unknown", "depth": "unknown", "wait": "unknown", "status": "red"}


def test_a_failed_reading_is_unknown_naming_the_error_never_red():
    reading = Reading("1001", time.time(), error="cannot reach ECE at ece:443")
    shown = indicators.indicators_of(SUPPORT, reading)
    assert {i.state for i in shown.values()} == {"unknown"}
    assert all("reading failed: cannot reach ECE at ece:443" in i.detail for i in shown.values())


def test_a_new_threshold_shows_without_asking_ece_again():
    reading = Reading("1001", time.time(), availability(wait_seconds=90))
    assert colours(EntryPoint(name="S", id="1001", max_wait_seconds=60), reading)["wait"] == "red"
    assert colours(EntryPoint(name="S", id="1001", max_wait_seconds=120), reading)["wait"] == "green"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "checked 0 s ago"), (12, "checked 12 s ago"), (150, "checked 2 min ago"), (7300, "checked 2 h ago")],
)
def test_age(seconds, text):
    assert indicators.age(1000.0, now=1000.0 + seconds) == text


# -- storage ------------------------------------------------------------------------------------------


def test_readings_round_trip_through_redis_and_expire(redis):
    reading = Reading("1001", 1234.5, availability())
    indicators.store(redis, "ece-ind", reading)
    assert indicators.read(redis, "ece-ind", "1001") == reading
    assert 0 < redis.ttl(keys.indicator_reading("ece-ind", "1001")) <= indicators.READING_TTL_SECONDS
    assert indicators.read_all(redis, "ece-ind", ["1001", "1002"]) == {"1001": reading, "1002": None}
    redis.set(keys.indicator_reading("ece-ind", "1002"), "{not json")
    assert indicators.read(redis, "ece-ind", "1002") is None, "an unreadable record is as if never checked"


# -- refresh with ECE mocked (profile answers) ---------------------------------------------------------


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def answer_availability(mocked, ep: str = "1001", *, available: bool = True, count: int = 3, wait: int = 20) -> None:
    mocked.get(f"{CHAT}/chatAllowed/{ep}", json={"allowed": available})
    mocked.get(f"{CHAT}/agentAvailability/{ep}", json={"available": available})
    mocked.get(f"{CHAT}/capacity/{ep}", json={"count": count})
    mocked.get(f"{CHAT}/checkEligibility/{ep}", json={"responseType": 0 if available else 1})
    mocked.get(f"{CHAT}/liveSessionStatus/{ep}", json={"queueDepth": 2, "waitTime": wait})


def test_refresh_reads_availability_and_stores_it(mocked, redis):
    answer_availability(mocked, available=False, count=0, wait=75)
    reading = indicators.refresh(integration(), SUPPORT, redis)
    assert reading.availability == Availability(False, False, 0, 1, 2, 75)
    assert indicators.read(redis, "ece-ind", "1001") == reading
    assert colours(SUPPORT, reading) == {"agent": "red", "depth": "red", "wait": "red", "status": "red"}
    assert all(call.request.headers.get("Authorization") is None for call in mocked.calls), "family A: no auth"


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        ({"status": 503}, "ECE answered 503 to chat_allowed"),
        ({"body": requests.ConnectionError("refused")}, "cannot reach ECE at ece.example.com:443"),
    ],
)
def test_a_failed_refresh_stores_the_error(mocked, redis, failure, words):
    mocked.get(f"{CHAT}/chatAllowed/1001", **failure)
    reading = indicators.refresh(integration(), SUPPORT, redis)
    assert reading.availability is None and words in reading.error
    assert indicators.read(redis, "ece-ind", "1001").error == reading.error


def test_refresh_all_reads_every_entry_point(mocked, redis):
    eps = tuple(EntryPoint(name=f"EP{i}", id=str(2000 + i)) for i in range(6))
    for ep in eps:
        answer_availability(mocked, ep.id, count=int(ep.id) - 2000)
    readings = indicators.refresh_all(integration(entry_points=eps), redis)
    assert sorted(readings) == [ep.name for ep in eps]
    assert {name: r.availability.capacity for name, r in readings.items()} == {f"EP{i}": i for i in range(6)}
    stored = indicators.read_all(redis, "ece-ind", [ep.id for ep in eps])
    assert all(r is not None and r.availability is not None for r in stored.values())


def test_an_availability_check_makes_its_five_calls_at_once(redis):
    """ECE answering each call in 0.3 s: one after another the check would take 1.5 s."""

    def slow(request):
        time.sleep(0.3)
        return 200, {}, '{"allowed": true, "available": true, "count": 3, "responseType": 0}'

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.GET, re.compile(f"{CHAT}/.*"), callback=slow)
        started = time.monotonic()
        reading = indicators.refresh(integration(), SUPPORT, redis)
        elapsed = time.monotonic() - started
    assert reading.availability is not None and reading.availability.capacity == 3
    assert elapsed < 1.0, f"the five calls took {elapsed:.2f} s"


def test_refresh_all_runs_side_by_side_within_its_deadline(redis):
    """Six entry points whose ECE takes 1.2 s an answer (5 calls each, made at once): one after
    another is 7 s; side by side the deadline of 1 s ends the wait, the late ones say why, and what
    the threads learn afterwards is stored all the same."""
    eps = tuple(EntryPoint(name=f"EP{i}", id=str(3000 + i)) for i in range(6))

    def slow(request):
        time.sleep(1.2)
        return 200, {}, '{"allowed": true, "available": true, "count": 1, "responseType": 0}'

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.GET, re.compile(f"{CHAT}/.*"), callback=slow)
        started = time.monotonic()
        readings = indicators.refresh_all(integration(entry_points=eps), redis, deadline=1.0)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0
        assert {r.error for r in readings.values()} == {"ece-ind did not answer within 1 s"}
        deadline = time.monotonic() + 10
        while any(t.name.startswith("indicators") for t in threading.enumerate()) and time.monotonic() < deadline:
            time.sleep(0.05)
    stored = indicators.read_all(redis, "ece-ind", [ep.id for ep in eps])
    assert all(r.availability is not None and r.availability.capacity == 1 for r in stored.values())


# -- against the ECE simulator -------------------------------------------------------------------------


@pytest.fixture
def simulator() -> Iterator[tuple[EceSimulator, str]]:
    sim = EceSimulator(client_key="k", client_secret="s", entry_points=("1001", "1002"))
    server = LoopbackServer(ece_app(sim)).start()
    try:
        yield sim, f"{server.url}/ece"
    finally:
        server.stop()


def test_the_simulator_turns_agent_red_and_back_green(simulator, redis):
    sim, base_url = simulator
    item = integration(base_url)
    assert colours(SUPPORT, indicators.refresh(item, SUPPORT, redis)) == ALL_GREEN
    sim.model.set_entry_point("1001", agents_available=False)
    shown = indicators.indicators_of(SUPPORT, indicators.refresh(item, SUPPORT, redis))
    assert shown["agent"].state == "red" and shown["agent"].detail == "no agent available: 0 slots free"
    sim.model.set_entry_point("1001", agents_available=True, wait_seconds=90)
    shown = indicators.indicators_of(SUPPORT, indicators.refresh(item, SUPPORT, redis))
    assert (shown["agent"].state, shown["wait"].state) == ("green", "red")
    assert shown["wait"].detail == "wait 90 s, threshold 60 s"
