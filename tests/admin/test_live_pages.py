"""The operators' live streams (`/admin/live/...`, admin/live.py over connector/live.py): a login is
needed, a page names its stream from the version it was rendered from, a change arrives as an event
whose `id:` is the new version, `Last-Event-ID` resumes, and past the operators' share of the slots a
stream answers at once with a slower retry."""

from __future__ import annotations

import json
import re
import time

import pytest

from connector import live
from connector.backends import indicators
from connector.backends.indicators import Reading
from connector.relay.drain import drain_thread
from connector.store import dead_letters
from connector.store.boxes import Box
from tests.operations.test_conversations import post_whatsapp

ECE = {
    "name": "Lab",
    "type": "ece",
    "base_url": "http://127.0.0.1:9/ece",
    "client_key": "k",
    "client_secret": "s",
    "entry_points": [{"name": "Support", "id": "1001", "max_wait_seconds": 60}],
}


@pytest.fixture(autouse=True)
def short_streams(monkeypatch):
    """A response lasts half a second here (a minute in the product); pages are polled every 50 ms."""
    monkeypatch.setattr(live, "STREAM_SECONDS", 0.5)
    monkeypatch.setattr(live, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(live, "SLOTS", live.Slots())


def stream_of(page: str) -> str:
    found = re.search(r'data-live-stream="([^"]+)"', page)
    assert found, "the page names its stream"
    return found.group(1).replace("&amp;", "&")


def sse(client, url: str, **headers: str) -> list[tuple[str, str]]:
    """(field, value) of each line of a whole response (it ends after STREAM_SECONDS)."""
    with client.get(url, headers=headers) as answer:  # a server closes the body: the slot goes back
        assert answer.status_code == 200, answer.status_code
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        assert answer.headers["Cache-Control"] == "no-store"
        body = answer.get_data(as_text=True)
    lines = []
    for raw in body.splitlines():
        if raw:
            name, _, value = raw.partition(":")
            lines.append((name, value.strip()))
    return lines


def events(lines: list[tuple[str, str]]) -> list[tuple[str, dict]]:
    found, last_id = [], None
    for name, value in lines:
        if name == "id":
            last_id = value
        elif name == "data":
            found.append((last_id, json.loads(value)))
    return found


def test_every_stream_needs_an_operator_login(client):
    for url in (
        "/admin/live/conversations",
        "/admin/live/conversations/t1",
        "/admin/live/dead-letters",
        "/admin/live/integrations/TestRouter/indicators",
    ):
        answer = client.get(url)
        assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"], url


def test_the_list_hears_of_a_new_conversation_and_resumes_from_its_last_id(operator, client):
    viewer = operator("viewer")
    url = stream_of(viewer.get("/admin/conversations/").get_data(as_text=True))
    assert url.startswith("/admin/live/conversations?after=")
    rendered = url.split("after=")[1]

    lines = sse(viewer, url)
    assert lines[0] == ("retry", str(live.RETRY_MS))
    assert events(lines) == [], "nothing changed since the page was rendered"
    assert ("id", rendered) in lines, "the browser keeps the version as its Last-Event-ID"
    assert live.SLOTS.used == 0, "the response gave its slot back"

    drain_thread(post_whatsapp(client, "15551239001", "wamid.L1", "hello"))
    [(event_id, data)] = events(sse(viewer, url))
    assert event_id != rendered and re.fullmatch(r"[0-9a-f]{16}", event_id)
    assert data == {"topic": "conversations", "id": event_id}
    assert "hello" not in json.dumps(data), "an event never carries a message's text"

    assert events(sse(viewer, url, **{"Last-Event-ID": event_id})) == [], "Last-Event-ID wins over ?after="
    page = viewer.get("/admin/conversations/").get_data(as_text=True)
    assert stream_of(page).endswith(f"after={event_id}"), "a fresh page starts from what it shows"


def test_a_conversation_hears_of_its_new_timeline_entries_only(operator, client):
    thread_id = post_whatsapp(client, "15551239002", "wamid.L2", "first")
    drain_thread(thread_id)
    viewer = operator("viewer")
    url = stream_of(viewer.get(f"/admin/conversations/{thread_id}").get_data(as_text=True))
    assert url.startswith(f"/admin/live/conversations/{thread_id}?after=")

    drain_thread(post_whatsapp(client, "15551239003", "wamid.L3", "someone else"))
    assert events(sse(viewer, url)) == [], "another conversation's message is not this page's news"
    drain_thread(post_whatsapp(client, "15551239002", "wamid.L4", "second"))
    [(_, data)] = events(sse(viewer, url))
    assert data["topic"] == "conversation" and data["thread"] == thread_id


def test_the_dead_letters_hear_of_a_new_letter(operator, redis):
    viewer = operator("viewer")
    url = stream_of(viewer.get("/admin/dead-letters/").get_data(as_text=True))
    dead_letters.add(redis, "t1", Box.OUT, '{"text": "x"}', "the provider refused it")
    [(_, data)] = events(sse(viewer, url))
    assert data["topic"] == "dead_letters" and data["total"] == 1


def test_the_lights_stream_carries_each_new_reading(operator, runtime):
    runtime.overrides.save("integrations", ECE, runtime.provisioned, create=True)
    runtime.config_changed()
    viewer = operator("viewer")
    page = viewer.get("/admin/integrations/Lab").get_data(as_text=True)
    url = stream_of(page)
    assert url.startswith("/admin/live/integrations/Lab/indicators?after=")
    assert 'data-server-now="' in page, "the page's clock, so a browser's wrong one does not age readings"

    checked_at = time.time() - 5
    indicators.store(runtime.redis, "Lab", Reading("1001", checked_at, error="ECE did not answer"))
    [(_, data)] = events(sse(viewer, url))
    [reading] = data["readings"]
    assert reading["entry_point"] == "Support" and reading["checked_at"] == checked_at
    assert reading["error"] == "ECE did not answer"
    assert {i["state"] for i in reading["indicators"]} == {"unknown"}

    page = viewer.get("/admin/integrations/Lab").get_data(as_text=True)
    assert f'data-checked-at="{checked_at}"' in page, "the age ticks from the reading's own time"
    assert "hybrid" not in stream_of(page)
    assert "data-live-stream" not in viewer.get("/admin/integrations/TestRouter").get_data(as_text=True), (
        "Hybrid Chat has no lights to watch"
    )


def test_a_stream_refuses_a_made_up_version_and_an_unknown_integration(operator):
    viewer = operator("viewer")
    assert viewer.get("/admin/live/conversations", headers={"Last-Event-ID": "x; drop"}).status_code == 400
    assert viewer.get("/admin/live/dead-letters?after=123").status_code == 400
    assert viewer.get("/admin/live/integrations/Nope/indicators").status_code == 404


def test_past_the_operators_share_a_stream_answers_at_once_with_a_slower_retry(operator, runtime, monkeypatch):
    monkeypatch.setattr(live, "STREAM_SECONDS", 30.0)
    limit = live.operator_slots(runtime.settings.web_threads)
    assert all(live.SLOTS.take(limit) for _ in range(limit))
    started = time.monotonic()
    lines = sse(operator("viewer"), "/admin/live/conversations")
    assert time.monotonic() - started < 3, "answered at once, holding no thread"
    assert lines[0] == ("retry", str(live.BUSY_RETRY_MS))
    assert live.SLOTS.used == limit, "no slot taken, none given back"
    assert live.SLOTS.take(live.stream_slots(runtime.settings.web_threads)), "an agent's stream still has room"


def test_operators_take_at_most_half_the_waiting_slots():
    assert live.operator_slots(48) == 18, "36 slots by default: 18 for open operator pages"
    assert live.operator_slots(4) == 1
    slots = live.Slots()
    assert all(slots.take(live.operator_slots(48)) for _ in range(18))
    assert not slots.take(live.operator_slots(48))
    assert all(slots.take(live.stream_slots(48)) for _ in range(18)), "the agents keep the other half"
    assert not slots.take(live.stream_slots(48))
