"""The drain fetches a new Messenger conversation's customer profile before ECE hears of it.

Real Redis, the real drain and the ECE simulator on loopback; Meta's Graph API is mocked with
`responses` (the profile GET and the welcome's send), except where a real loopback server plays a
Graph that never answers."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import responses

from connector.channels import meta
from connector.channels.base import thread_id_for
from connector.conversations import State
from connector.relay.drain import drain_thread
from connector.relay.profiles import NO_PROFILE_TTL_SECONDS, PROFILE_TTL_SECONDS
from connector.sandbox.signing import meta_signature
from connector.store import keys, threads
from tests.conftest import ECE_CLIENT
from tests.helpers import logged_text

ASSET = "fb-profiles"
PAGE_ID = "5550001"
APP_SECRET = "profiles-app-secret"
PAGE_TOKEN = "profiles-page-token-0123456789"
GRAPH = "https://graph.profiles.example.com"
PSID = "7300000000000001"
PROFILE_URL = f"{GRAPH}/v21.0/{PSID}"
SEND_URL = f"{GRAPH}/v21.0/{PAGE_ID}/messages"
THREAD = thread_id_for("messenger", ASSET, PSID)
PROFILE = {
    "first_name": "Lucía",
    "last_name": "Fernández",
    "profile_pic": "https://scontent.xx.fbcdn.net/v/t1.0-1/p200x200/pic.jpg",
    "locale": "es_ES",
    "id": PSID,
}
SPANISH_WELCOME = "Gracias por contactarnos"


def configure(runtime, ece_url: str, *, graph: str = GRAPH, profile_locale: bool = True) -> None:
    """A UI-made ECE integration on the simulator, a Messenger asset and a rule between them."""
    store = runtime.overrides
    integration = {
        "name": "ProfileECE",
        "type": "ece",
        "base_url": ece_url,
        "client_key": ECE_CLIENT[0],
        "client_secret": ECE_CLIENT[1],
        "entry_points": [{"name": "Support", "id": "1001"}],
    }
    asset = {
        "name": ASSET,
        "channel": "messenger",
        "page_id": PAGE_ID,
        "app_secret": APP_SECRET,
        "page_access_token": PAGE_TOKEN,
        "verify_token": "profiles-verify",
        "api_base_url": graph,
        "profile_locale": profile_locale,
    }
    rule = {
        "name": "fb-profiles",
        "channel": "messenger",
        "event": "incoming_message",
        "asset": ASSET,
        "action": {"forward_to": "ProfileECE", "entry_point": "Support"},
    }
    store.save("integrations", integration, runtime.provisioned, create=True)
    store.save("assets", asset, runtime.provisioned, create=True)
    store.save("rules", rule, runtime.provisioned, create=True)
    runtime.config_changed()


def post_message(client, text: str, mid: str) -> None:
    event = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": mid, "text": text},
    }
    body = json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": event["timestamp"], "messaging": [event]}]})
    headers = {"X-Hub-Signature-256": meta_signature(APP_SECRET.encode(), body.encode())}
    response = client.post(f"/webhooks/messenger/{ASSET}", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 200, response.get_json()


def close_conversation(redis) -> None:
    """The agent ended the chat: the customer's next message starts a new conversation."""
    thread = threads.load(redis, THREAD)
    thread.state = State.CLOSED
    threads.save(redis, thread)


def profile_calls(graph: responses.RequestsMock) -> list:
    return [c for c in graph.calls if c.request.method == "GET" and c.request.url.startswith(PROFILE_URL)]


def sent_texts(graph: responses.RequestsMock) -> list[str]:
    return [
        json.loads(c.request.body)["message"]["text"]
        for c in graph.calls
        if c.request.method == "POST" and c.request.url == SEND_URL
    ]


@pytest.fixture
def ece(ece_simulator, runtime):
    simulator, url = ece_simulator
    configure(runtime, url)
    return simulator


@pytest.fixture
def graph(ece_simulator) -> Iterator[responses.RequestsMock]:
    """Graph mocked; the ECE simulator reached for real."""
    _, url = ece_simulator
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(url)
        mock.post(SEND_URL, json={"recipient_id": PSID, "message_id": "m_1"})
        yield mock


def ece_conversations(simulator) -> list:
    with simulator.model.lock:
        return sorted(simulator.model.conversations.values(), key=lambda c: c.started_at)


def test_a_new_conversation_carries_the_profile_into_the_thread_ece_and_the_welcome(ece, graph, client, runtime, redis):
    graph.get(PROFILE_URL, json=PROFILE)
    post_message(client, "Hola, mi pedido no llega", "m_first")

    drain_thread(THREAD, runtime)

    [call] = profile_calls(graph)
    assert call.request.headers["Authorization"] == f"Bearer {PAGE_TOKEN}"
    assert call.request.params == {"fields": "first_name,last_name,profile_pic,locale"}
    details = threads.load(redis, THREAD).details
    assert details["psid"] == PSID, "the event's own details stay"
    assert (details["first_name"], details["last_name"], details["profile_name"]) == (
        "Lucía",
        "Fernández",
        "Lucía Fernández",
    )
    assert details["locale"] == "es_ES"
    assert details["profile_pic"] == PROFILE["profile_pic"]

    [conversation] = ece_conversations(ece)
    attributes = {a["name"]: a["value"] for a in conversation.customer_attributes}
    assert attributes["profile_name"] == "Lucía Fernández"
    assert (attributes["first_name"], attributes["last_name"], attributes["locale"]) == ("Lucía", "Fernández", "es_ES")
    assert conversation.subject == "messenger chat with Lucía Fernández"
    assert conversation.locale == "es_ES"
    assert [r.content for r in conversation.received] == ["Hola, mi pedido no llega"]
    assert any(SPANISH_WELCOME in text for text in sent_texts(graph)), "the welcome is written in the customer's locale"


def test_locale_is_asked_only_where_the_asset_says_so(ece_simulator, client, runtime, redis):
    simulator, url = ece_simulator
    configure(runtime, url, profile_locale=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as graph:
        graph.add_passthru(url)
        graph.post(SEND_URL, json={"recipient_id": PSID, "message_id": "m_1"})
        graph.get(PROFILE_URL, json={k: v for k, v in PROFILE.items() if k != "locale"})
        post_message(client, "Hello", "m_first")
        drain_thread(THREAD, runtime)
        [call] = profile_calls(graph)
    assert call.request.params == {"fields": "first_name,last_name,profile_pic"}
    details = threads.load(redis, THREAD).details
    assert details["profile_name"] == "Lucía Fernández" and "locale" not in details
    [conversation] = ece_conversations(simulator)
    assert conversation.subject == "messenger chat with Lucía Fernández"


def test_a_returning_customer_is_served_from_the_cache(ece, graph, client, runtime, redis):
    graph.get(PROFILE_URL, json=PROFILE)
    post_message(client, "First question", "m_first")
    drain_thread(THREAD, runtime)
    assert 0 < redis.ttl(keys.customer_profile(THREAD)) <= PROFILE_TTL_SECONDS

    close_conversation(redis)
    post_message(client, "Second question", "m_second")
    drain_thread(THREAD, runtime)

    assert len(profile_calls(graph)) == 1, "the second conversation costs no Graph call"
    first, second = ece_conversations(ece)
    assert first.id != second.id
    for conversation in (first, second):
        assert conversation.subject == "messenger chat with Lucía Fernández"
    assert [r.content for r in second.received] == ["Second question"]


def test_the_customers_own_details_win_over_the_profile(ece, graph, client, runtime, redis):
    """A provider field fills what nothing else says; the event's own details are never overwritten."""
    graph.get(PROFILE_URL, json={**PROFILE, "first_name": "Other", "psid": "not-this"})
    redis.set(
        keys.customer_profile(THREAD),
        json.dumps(
            {
                "fields": ["first_name", "last_name", "profile_pic", "locale"],
                "profile": {"first_name": "Lucía", "psid": "not-this"},
            }
        ),
    )
    post_message(client, "Hola", "m_first")
    drain_thread(THREAD, runtime)
    details = threads.load(redis, THREAD).details
    assert details["psid"] == PSID
    assert details["first_name"] == "Lucía", "the cached profile is used"
    assert profile_calls(graph) == []


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 503, "json": {"error": {"message": "Service unavailable", "type": "OAuthException", "code": 2}}},
        {"body": requests.ConnectionError("connection refused")},
        {
            "status": 403,
            "json": {
                "error": {
                    "message": "(#230) Requires pages_messaging permission",
                    "type": "OAuthException",
                    "code": 230,
                }
            },
        },
    ],
    ids=["5xx", "no-connection", "error-230"],
)
def test_a_graph_failure_never_stops_the_message(ece, graph, client, runtime, redis, caplog, answer):
    graph.get(PROFILE_URL, **answer)
    post_message(client, "Hello despite Graph", "m_first")

    with caplog.at_level(logging.INFO):
        drain_thread(THREAD, runtime)

    [conversation] = ece_conversations(ece)
    assert [r.content for r in conversation.received] == ["Hello despite Graph"]
    assert conversation.subject == f"messenger chat with {PSID}"
    thread = threads.load(redis, THREAD)
    assert "profile_name" not in thread.details and thread.details["psid"] == PSID
    assert redis.llen(keys.inbox(THREAD)) == 0, "handled, not parked for a retry"
    assert redis.llen(keys.dead_letters()) == 0, "never dead-lettered"
    assert not redis.exists(keys.retry_state(THREAD))
    assert 0 < redis.ttl(keys.customer_profile(THREAD)) <= NO_PROFILE_TTL_SECONDS, "'none' is kept briefly"
    assert PAGE_TOKEN not in logged_text(caplog.records)

    # Within the 5 minutes, the next conversation does not ask again.
    close_conversation(redis)
    post_message(client, "Still there?", "m_second")
    drain_thread(THREAD, runtime)
    assert len(profile_calls(graph)) == 1
    assert len(ece_conversations(ece)) == 2


@pytest.fixture
def silent_graph() -> Iterator[str]:
    """A Graph that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        server.close()


def test_a_graph_that_never_answers_delays_the_message_by_the_timeout_only(
    ece_simulator, silent_graph, client, runtime, redis, monkeypatch, caplog
):
    simulator, url = ece_simulator
    configure(runtime, url, graph=silent_graph)
    monkeypatch.setattr(meta, "LOOKUP_TIMEOUT_SECONDS", 0.5)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as graph:
        graph.add_passthru(url)
        graph.add_passthru(silent_graph)  # the profile GET reaches the silent server
        graph.post(f"{silent_graph}/v21.0/{PAGE_ID}/messages", json={"recipient_id": PSID, "message_id": "m_1"})
        post_message(client, "Anyone?", "m_first")
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            drain_thread(THREAD, runtime)
        elapsed = time.monotonic() - started

    assert elapsed < 3, f"the drain waited {elapsed:.1f} s for a profile"
    [conversation] = ece_conversations(simulator)
    assert [r.content for r in conversation.received] == ["Anyone?"]
    assert "graph lookup failed" in caplog.text
    assert PAGE_TOKEN not in logged_text(caplog.records)
