"""The agent API (docs/hybrid.md, "The agent API") through the Flask test client, on real Redis:
local agents' logins and sessions, CSRF, the agent's own chats only, every chat call with its
documented refusal, the long poll and the files. Finesse logins and the gadget are in
test_api_finesse.py, the Server-Sent Events over a real server in test_api_stream.py."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import responses

from connector import live
from connector.backends.hybrid import files, sessions, stream, transcript
from connector.backends.hybrid.router import expire_offers
from connector.backends.hybrid.state import HybridState
from connector.relay.drain import drain_thread
from connector.store import keys
from tests.backends.hybrid.agent_api_helpers import (
    DELIVERY,
    YAN,
    YAN_PASSWORD,
    ZOE,
    ZOE_PASSWORD,
    bearer,
    chat_of,
    configure_desk,
    customer_says,
    delivered,
    login,
    with_local_agents,
)


@pytest.fixture
def agent_desk(runtime) -> Iterator[responses.RequestsMock]:
    """The Desk integration with its two local agents; the customer's app answers every delivery."""
    configure_desk(runtime)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(DELIVERY, json={"ok": True})
        yield mock


# -- logins and sessions ------------------------------------------------------------------------------


def test_a_local_agent_logs_in_with_the_provisioned_password(client, runtime, redis):
    with_local_agents(runtime)
    before = time.time()
    answer = client.post("/agent/login", json={"login": ZOE, "password": ZOE_PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["agent_id"] == "local:zoe"
    token = body["token"]
    assert token.startswith("cca_") and len(token) > 40
    assert before + sessions.IDLE_SECONDS - 5 <= body["expires_at"] <= time.time() + sessions.IDLE_SECONDS

    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{sessions.COOKIE_NAME}={token};")
    for attribute in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/agent/"):
        assert attribute in cookie, cookie
    assert "session=" not in cookie, "never the operator's session"

    digest = hashlib.sha256(token.encode()).hexdigest()
    assert redis.ttl(keys.hybrid_session(digest)) > sessions.IDLE_SECONDS - 60
    for key in redis.keys("*"):
        assert token.encode() not in key
        if redis.type(key) == b"string":
            assert token.encode() not in redis.get(key), "a token is never stored in clear"

    me = client.get("/agent/api/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.get_json()["agent_id"] == "local:zoe" and me.get_json()["name"] == "Zoe"

    redis.expire(keys.hybrid_session(digest), 100)  # idle for most of its time
    assert client.get("/agent/api/me", headers=bearer(token)).status_code == 200
    assert redis.ttl(keys.hybrid_session(digest)) > sessions.IDLE_SECONDS - 60, "each use restarts the idle time"


def test_a_local_agent_with_a_hash_logs_in_and_todays_username_body_still_works(client, runtime):
    with_local_agents(runtime)
    answer = client.post("/agent/login", json={"username": YAN, "password": YAN_PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["agent_id"] == "local:yan"
    assert client.get("/agent/api/me").get_json()["skills"] == ["english"], "the cookie works"


def test_a_wrong_password_is_refused_and_five_lock_the_login_out(client, runtime):
    with_local_agents(runtime)
    for name, wrong in ((ZOE, "not-it"), (YAN, "not-it-either"), ("nobody", "whatever")):
        answer = client.post("/agent/login", json={"login": name, "password": wrong})
        assert answer.status_code == 401
        assert answer.get_json()["error"] == "invalid_credentials"
        assert "Set-Cookie" not in answer.headers
    for _ in range(4):
        assert client.post("/agent/login", json={"login": ZOE, "password": "not-it"}).status_code == 401
    locked = client.post("/agent/login", json={"login": ZOE, "password": ZOE_PASSWORD})
    assert locked.status_code == 429 and locked.get_json()["error"] == "locked_out"
    assert client.post("/agent/login", json={"login": YAN, "password": YAN_PASSWORD}).status_code == 200


def test_a_login_needs_a_json_login_and_password(client, runtime):
    with_local_agents(runtime)
    assert client.post("/agent/login", data="login=zoe&password=x").status_code == 400
    assert client.post("/agent/login", json={"login": ZOE}).get_json()["error"] == "invalid_payload"
    assert client.post("/agent/login", json=["zoe"]).status_code == 400


def test_no_session_no_api(client, runtime):
    with_local_agents(runtime)
    for answer in (
        client.get("/agent/api/me"),
        client.get("/agent/api/me", headers=bearer("cca_not-a-token")),
        client.get("/agent/api/me", headers={"Cookie": f"{sessions.COOKIE_NAME}=cca_forged"}),
    ):
        assert answer.status_code == 401
        assert answer.get_json()["error"] == "unauthenticated"


def test_logout_revokes_the_bearer_token(client, runtime):
    with_local_agents(runtime)
    token = login(client.application.test_client())["token"]
    assert client.get("/agent/api/me", headers=bearer(token)).status_code == 200
    answer = client.post("/agent/logout", headers=bearer(token))
    assert answer.status_code == 200 and answer.get_json()["status"] == "logged_out"
    assert client.get("/agent/api/me", headers=bearer(token)).status_code == 401


def test_logout_of_a_cookie_session_needs_its_csrf_token_and_ends_the_cookie(client, runtime):
    with_local_agents(runtime)
    body = login(client)
    assert client.post("/agent/logout").status_code == 403, "a cookie write carries X-CSRF-Token"
    assert client.get("/agent/api/me").status_code == 200, "still logged in"
    answer = client.post("/agent/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert answer.status_code == 200
    cleared = answer.headers["Set-Cookie"]
    assert cleared.startswith(f"{sessions.COOKIE_NAME}=;") and "Max-Age=0" in cleared
    assert client.get("/agent/api/me").status_code == 401
    stale = client.application.test_client()
    assert stale.get("/agent/api/me", headers={"Cookie": f"{sessions.COOKIE_NAME}={body['token']}"}).status_code == 401


def test_a_removed_local_agent_is_logged_out(client, runtime):
    with_local_agents(runtime)
    token = login(client)["token"]
    runtime._config = replace(runtime.provisioned, hybrid_agents=())
    assert client.get("/agent/api/me", headers=bearer(token)).status_code == 401


def test_cookie_writes_need_the_csrf_token_and_bearer_ones_do_not(client, runtime, agent_desk):
    body = login(client)
    ready = {"state": "READY"}
    refused = client.put("/agent/api/me/state", json=ready)
    assert refused.status_code == 403 and refused.get_json()["error"] == "csrf_failed"
    wrong = client.put("/agent/api/me/state", json=ready, headers={"X-CSRF-Token": "not-the-token"})
    assert wrong.status_code == 403
    assert HybridState(runtime.redis).agent("local:zoe").get("state") != "READY"
    done = client.put("/agent/api/me/state", json=ready, headers={"X-CSRF-Token": body["csrf_token"]})
    assert done.status_code == 200 and done.get_json()["chat_state"] == "READY"

    other = client.application.test_client()
    token = login(other, YAN, YAN_PASSWORD)["token"]
    plain = client.application.test_client()
    answer = plain.put("/agent/api/me/state", json={"state": "NOT_READY", "reason": "Break"}, headers=bearer(token))
    assert answer.status_code == 200
    assert answer.get_json()["chat_state"] == "NOT_READY" and answer.get_json()["reason"] == "Break"


def test_me_gives_a_cookie_session_its_csrf_token(client, runtime):
    with_local_agents(runtime)
    body = login(client)
    assert client.get("/agent/api/me").get_json()["csrf_token"] == body["csrf_token"]
    assert "csrf_token" not in client.get("/agent/api/me", headers=bearer(body["token"])).get_json()


def test_the_operator_session_is_never_opened_on_agent_paths(operator, runtime):
    with_local_agents(runtime)
    browser = operator("admin")
    assert "Cookie" in browser.get("/admin/").headers.get("Vary", "")
    for answer in (
        browser.post("/agent/login", json={"login": ZOE, "password": ZOE_PASSWORD}),
        browser.get("/agent/api/me"),
        browser.get("/agent/gadget.xml"),
    ):
        assert answer.status_code == 200
        assert "Cookie" not in answer.headers.get("Vary", ""), "the operator's session was read"
        assert all(not c.startswith("session=") for c in answer.headers.getlist("Set-Cookie"))


# -- chats ------------------------------------------------------------------------------------------


def _ready(client, token: str) -> None:
    answer = client.put("/agent/api/me/state", json={"state": "READY"}, headers=bearer(token))
    assert answer.status_code == 200, answer.get_json()


@pytest.fixture
def offered(client, runtime, agent_desk):
    """Zoe READY (Yan not), a customer writes: the chat is offered to Zoe."""
    zoe = login(client.application.test_client())["token"]
    yan = login(client.application.test_client(), YAN, YAN_PASSWORD)["token"]
    _ready(client, zoe)
    thread_id = customer_says(runtime, client, "cust-1", "Hello, my router is broken")
    chat_id = chat_of(runtime, thread_id)
    assert HybridState(runtime.redis).chat(chat_id).agent == "local:zoe"
    return {"zoe": zoe, "yan": yan, "chat": chat_id, "thread": thread_id}


def test_an_agent_accepts_writes_types_and_closes_over_the_api(client, runtime, agent_desk, offered):
    zoe, chat_id = bearer(offered["zoe"]), offered["chat"]
    seen = client.get("/agent/api/events?after=0-0", headers=zoe).get_json()
    assert "chat_offered" in [e["type"] for e in seen["events"]]
    me = client.get("/agent/api/me", headers=zoe).get_json()
    assert [c["chat_id"] for c in me["chats"]] == [chat_id] and me["chats"][0]["state"] == "offered"

    accepted = client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe)
    assert accepted.status_code == 200 and accepted.get_json()["state"] == "active"
    again = client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe)
    assert again.status_code == 409 and again.get_json()["error"] == "already_accepted"

    sent = client.post(f"/agent/api/chats/{chat_id}/messages", json={"text": "Let me check"}, headers=zoe)
    assert sent.status_code == 200 and sent.get_json()["message_id"]
    assert client.post(f"/agent/api/chats/{chat_id}/typing", json={"typing": True}, headers=zoe).status_code == 200
    drain_thread(offered["thread"], runtime)
    assert "Let me check" in [d.get("text") for d in delivered(agent_desk)]

    transcript = client.get(f"/agent/api/chats/{chat_id}", headers=zoe).get_json()["transcript"]
    assert [(t["from"], t.get("text")) for t in transcript] == [
        ("customer", "Hello, my router is broken"),
        ("agent", "Let me check"),
    ]
    closed = client.post(f"/agent/api/chats/{chat_id}/close", json={"wrap_up": "solved"}, headers=zoe)
    assert closed.status_code == 200
    assert HybridState(runtime.redis).chat(chat_id).state == "closed"
    late = client.post(f"/agent/api/chats/{chat_id}/messages", json={"text": "still there?"}, headers=zoe)
    assert late.status_code == 409 and late.get_json()["error"] == "not_active"


def test_bad_bodies_are_400(client, agent_desk, offered):
    zoe, chat_id = bearer(offered["zoe"]), offered["chat"]
    assert client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe).status_code == 200
    for path, body in (
        ("messages", {"text": "   "}),
        ("messages", {"txt": "hi"}),
        ("messages", {"text": 5}),
        ("typing", {"typing": "yes"}),
        ("transfer", {"queue": "Billing", "agent_id": "local:yan"}),
        ("transfer", {}),
        ("transfer", {"queue": "No such queue"}),
        ("close", {"wrap_up": 7}),
    ):
        answer = client.post(f"/agent/api/chats/{chat_id}/{path}", json=body, headers=zoe)
        assert answer.status_code == 400, (path, body, answer.get_json())
        assert set(answer.get_json()) == {"error", "message"}
    assert client.put("/agent/api/me/state", json={"state": "AWAY"}, headers=zoe).status_code == 400
    raw = client.post(f"/agent/api/chats/{chat_id}/messages", data="hi", headers=zoe)
    assert raw.status_code == 400, "not JSON, not multipart"


def test_an_agent_sees_and_acts_on_their_own_chats_only(client, agent_desk, offered):
    yan, chat_id = bearer(offered["yan"]), offered["chat"]
    assert client.get(f"/agent/api/chats/{chat_id}", headers=yan).status_code == 404
    assert client.get("/agent/api/chats/no-such-chat", headers=yan).status_code == 404
    for path, body in (("messages", {"text": "hi"}), ("typing", {"typing": True}), ("close", {})):
        answer = client.post(f"/agent/api/chats/{chat_id}/{path}", json=body, headers=yan)
        assert answer.status_code == 404 and answer.get_json()["error"] == "not_found", path
    assert client.post(f"/agent/api/chats/{chat_id}/accept", headers=yan).status_code == 409
    assert client.get("/agent/api/me", headers=yan).get_json()["chats"] == []


def test_reject_returns_the_offer_and_an_offer_gone_is_409(client, runtime, agent_desk, offered):
    zoe, chat_id = bearer(offered["zoe"]), offered["chat"]
    _ready(client, offered["yan"])
    rejected = client.post(f"/agent/api/chats/{chat_id}/reject", headers=zoe)
    assert rejected.status_code == 200
    assert HybridState(runtime.redis).chat(chat_id).agent == "local:yan", "at once to the next agent"
    again = client.post(f"/agent/api/chats/{chat_id}/reject", headers=zoe)
    assert again.status_code == 409 and again.get_json()["error"] == "offer_gone"
    taken = client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe)
    assert taken.status_code == 409 and taken.get_json()["error"] == "offer_gone"

    expire_offers(runtime.redis, runtime.config, now=time.time() + 60)  # Yan lets it ring out
    yan = bearer(offered["yan"])
    for action in ("accept", "reject"):
        gone = client.post(f"/agent/api/chats/{chat_id}/{action}", headers=yan)
        assert gone.status_code == 409 and gone.get_json()["error"] == "offer_gone"


def test_transfer_to_a_queue_and_to_an_agent(client, runtime, agent_desk, offered):
    zoe, yan, chat_id = bearer(offered["zoe"]), bearer(offered["yan"]), offered["chat"]
    assert client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe).status_code == 200
    to_self = client.post(f"/agent/api/chats/{chat_id}/transfer", json={"agent_id": "local:zoe"}, headers=zoe)
    assert to_self.status_code == 400 and to_self.get_json()["error"] == "invalid_transfer"
    busy = client.post(f"/agent/api/chats/{chat_id}/transfer", json={"agent_id": "local:yan"}, headers=zoe)
    assert busy.status_code == 409 and busy.get_json()["error"] == "agent_unavailable", "Yan is NOT_READY"
    _ready(client, offered["yan"])
    moved = client.post(f"/agent/api/chats/{chat_id}/transfer", json={"agent_id": "local:yan"}, headers=zoe)
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["state"] == "offered"
    assert client.post(f"/agent/api/chats/{chat_id}/accept", headers=yan).status_code == 200
    queued = client.post(f"/agent/api/chats/{chat_id}/transfer", json={"queue": "Billing"}, headers=yan)
    assert queued.status_code == 200 and queued.get_json()["queue"] == "Billing"
    assert client.get(f"/agent/api/chats/{chat_id}", headers=zoe).status_code == 404, "no longer Zoe's"


# -- files ------------------------------------------------------------------------------------------


def test_a_file_goes_to_the_customer_by_a_signed_link_and_back_to_the_agent(client, runtime, agent_desk, offered):
    zoe, yan, chat_id = bearer(offered["zoe"]), bearer(offered["yan"]), offered["chat"]
    assert client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe).status_code == 200
    data = {"file": (io.BytesIO(b"%PDF-1.4 invoice"), "invoice.pdf", "application/pdf")}
    sent = client.post(
        f"/agent/api/chats/{chat_id}/messages", data=data, headers=zoe, content_type="multipart/form-data"
    )
    assert sent.status_code == 200, sent.get_json()
    drain_thread(offered["thread"], runtime)
    link = next(a["url"] for d in delivered(agent_desk) for a in d.get("attachments") or [])
    assert link.startswith(f"{runtime.settings.public_base_url}/agent/files/")

    path = link.removeprefix(runtime.settings.public_base_url)
    fetched = client.application.test_client().get(path)  # the provider: no session at all
    assert fetched.status_code == 200 and fetched.data == b"%PDF-1.4 invoice"
    assert fetched.mimetype == "application/pdf"
    assert fetched.headers["Content-Disposition"] == "attachment; filename=invoice.pdf"
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"

    file_id = path.split("/")[3].split("?")[0]
    mine = client.get(f"/agent/api/files/{file_id}", headers=zoe)
    assert mine.status_code == 200 and mine.data == b"%PDF-1.4 invoice"
    assert client.get(f"/agent/api/files/{file_id}", headers=yan).status_code == 404, "not Yan's chat"
    assert client.get(f"/agent/api/files/{file_id}", headers=bearer("cca_nobody")).status_code == 401


def test_a_signed_link_that_was_changed_or_has_expired_is_refused(client, runtime, agent_desk):
    stored = files.store(runtime.redis, "a.txt", "text/plain", b"hello")
    secret, base = runtime.settings.secret_key, runtime.settings.public_base_url
    good = files.signed_url(base, secret, stored.file_id).removeprefix(base)
    assert client.get(good).status_code == 200
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert client.get(tampered).status_code == 403
    later = good.replace("expires=", "expires=9")
    assert client.get(later).status_code == 403, "a changed expiry breaks the signature"
    other = files.store(runtime.redis, "b.txt", "text/plain", b"other")
    assert client.get(good.replace(stored.file_id, other.file_id)).status_code == 403
    old = files.signed_url(base, secret, stored.file_id, now=time.time() - files.LINK_SECONDS - 5).removeprefix(base)
    refused = client.get(old)
    assert refused.status_code == 403 and refused.get_json()["error"] == "invalid_link"


def test_a_file_too_large_is_413(client, agent_desk, offered, monkeypatch):
    zoe, chat_id = bearer(offered["zoe"]), offered["chat"]
    assert client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe).status_code == 200
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1000)
    for size in (1500, 200_000):  # refused by the store / already while the body is read
        data = {"file": (io.BytesIO(b"x" * size), "big.bin", "application/octet-stream")}
        answer = client.post(
            f"/agent/api/chats/{chat_id}/messages", data=data, headers=zoe, content_type="multipart/form-data"
        )
        assert answer.status_code == 413, (size, answer.get_json())
        assert answer.get_json()["error"] == "file_too_large"
    empty = client.post(
        f"/agent/api/chats/{chat_id}/messages", data={"other": "x"}, headers=zoe, content_type="multipart/form-data"
    )
    assert empty.status_code == 400


def test_a_customer_html_file_is_only_downloaded(client, runtime, agent_desk, offered):
    zoe, chat_id = bearer(offered["zoe"]), offered["chat"]
    stored = files.store(runtime.redis, 'x"; evil.html', "text/html", b"<script>alert(1)</script>")
    transcript.append(
        runtime.redis, chat_id, "customer", "m-f", attachments=[{"url": f"/agent/api/files/{stored.file_id}"}]
    )
    answer = client.get(f"/agent/api/files/{stored.file_id}", headers=zoe)
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert answer.headers["Content-Security-Policy"].endswith("sandbox")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


# -- the long poll ----------------------------------------------------------------------------------


def test_the_long_poll_returns_an_event_that_arrives_while_it_waits(client, runtime):
    with_local_agents(runtime)
    token = login(client)["token"]
    cursor = client.get("/agent/api/events", headers=bearer(token)).get_json()["cursor"]
    timer = threading.Timer(0.3, lambda: stream.publish(runtime.redis, "local:zoe", "note", text="hello"))
    timer.start()
    started = time.monotonic()
    answer = client.get(f"/agent/api/events?after={cursor}&wait=10", headers=bearer(token))
    timer.join()
    assert time.monotonic() - started < 5
    body = answer.get_json()
    assert [(e["type"], e["text"]) for e in body["events"]] == [("note", "hello")]
    assert body["cursor"] == body["events"][0]["id"] != cursor


def test_the_long_poll_answers_empty_after_its_wait(client, runtime):
    with_local_agents(runtime)
    token = login(client)["token"]
    stream.publish(runtime.redis, "local:zoe", "note", text="before")
    started = time.monotonic()
    answer = client.get("/agent/api/events?wait=1", headers=bearer(token))
    assert 0.9 <= time.monotonic() - started < 4
    assert answer.get_json()["events"] == [], "without `after`: only new events"
    old = client.get("/agent/api/events?after=0-0", headers=bearer(token)).get_json()["events"]
    assert [e["text"] for e in old] == ["before"]
    assert client.get("/agent/api/events?wait=31", headers=bearer(token)).status_code == 400
    assert client.get("/agent/api/events?wait=soon", headers=bearer(token)).status_code == 400
    assert client.get("/agent/api/events?after=$", headers=bearer(token)).status_code == 400


def test_a_long_poll_with_no_thread_to_spare_answers_at_once(client, runtime, monkeypatch):
    """Waiting requests are bounded per process: past the bound a long poll does not wait."""
    with_local_agents(runtime)
    token = login(client)["token"]
    full = live.Slots()
    monkeypatch.setattr(live, "SLOTS", full)
    limit = live.stream_slots(runtime.settings.web_threads)
    assert all(full.take(limit) for _ in range(limit))
    started = time.monotonic()
    answer = client.get("/agent/api/events?wait=5", headers=bearer(token))
    assert answer.status_code == 200 and time.monotonic() - started < 1
    assert full.used == limit, "no slot taken, none given back"


def test_the_desktop_page_carries_the_cookie_sessions_csrf_token(client, runtime):
    with_local_agents(runtime)
    assert 'name="csrf-token"' not in client.get("/agent/").get_data(as_text=True)
    body = login(client)
    page = client.get("/agent/").get_data(as_text=True)
    assert f'<meta name="csrf-token" content="{body["csrf_token"]}">' in page
