"""The Hybrid Chat agent API (`/agent/...`, docs/hybrid.md "The agent API") under generated calls:
every route, bodies valid-looking or not, tokens right, wrong or absent, a real offered chat and
made-up ids. Never a 5xx (no Finesse is configured, so not even its deliberate 503), every refusal
is `{"error", "message"}`, and a message the API acknowledges is in the chat's transcript as sent."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st

from connector.backends.hybrid import transcript
from tests.backends.hybrid.agent_api_helpers import (
    DELIVERY,
    YAN,
    YAN_PASSWORD,
    ZOE,
    ZOE_PASSWORD,
    chat_of,
    configure_desk,
    customer_says,
    login,
)

from .strategies import dumps, header_value, interesting, json_values, mutated, rarely, text
from .test_webhooks import crashes, note

BODIES: dict[str, dict[str, Any]] = {
    "/agent/login": {"login": ZOE, "password": ZOE_PASSWORD},
    "/agent/gadget/login": {"agent_id": "1001", "authorization": "Basic eDp5"},
    "/agent/logout": {"username": ZOE, "password": ZOE_PASSWORD},
    "/agent/api/me/state": {"state": "READY", "reason": "back"},
    "messages": {"text": "Let me check that for you"},
    "typing": {"typing": True},
    "transfer": {"queue": "Billing"},
    "close": {"wrap_up": "solved"},
    "accept": {},
    "reject": {},
}


@pytest.fixture
def desk(client, runtime):
    """Zoe READY with a customer's chat she accepted, Yan logged in too; the customer's app accepts
    every delivery."""
    configure_desk(runtime)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(DELIVERY, json={"ok": True})
        zoe = login(client.application.test_client())["token"]
        yan = login(client.application.test_client(), YAN, YAN_PASSWORD)["token"]
        ready = client.put("/agent/api/me/state", json={"state": "READY"}, headers={"Authorization": f"Bearer {zoe}"})
        assert ready.status_code == 200
        chat_id = chat_of(runtime, customer_says(runtime, client, "cust-1", "Hello"))
        accepted = client.post(f"/agent/api/chats/{chat_id}/accept", headers={"Authorization": f"Bearer {zoe}"})
        assert accepted.status_code == 200
        yield {"zoe": zoe, "yan": yan, "chat": chat_id}


@st.composite
def calls(draw: st.DrawFn, desk: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    """(method, path, keyword arguments of the test client's `open`)."""
    chat = quote(
        desk["chat"] if not rarely(draw) else draw(st.sampled_from(["no-such-chat", "..", "%"]) | text), safe=""
    )
    # Calls that end the chat (close, reject, transfer) are rarer, so most examples act on a live chat.
    chat_calls = ["accept", "messages", "messages", "messages", "typing", "typing"]
    route = draw(
        st.sampled_from(
            [
                *(("POST", f"/agent/api/chats/{{chat}}/{call}", call) for call in chat_calls),
                ("GET", "/agent/api/chats/{chat}", None),
                ("GET", "/agent/api/me", None),
                ("PUT", "/agent/api/me/state", "/agent/api/me/state"),
                ("GET", "/agent/api/events", None),
                ("POST", "/agent/login", "/agent/login"),
                ("GET", "/agent/api/files/{chat}", None),
                ("GET", "/agent/files/{chat}", None),
            ]
        )
        if not rarely(draw)
        else st.sampled_from(
            [
                *(("POST", f"/agent/api/chats/{{chat}}/{call}", call) for call in ("reject", "transfer", "close")),
                ("POST", "/agent/logout", "/agent/logout"),
                ("POST", "/agent/gadget/login", "/agent/gadget/login"),
                ("OPTIONS", "/agent/gadget/login", None),
            ]
        )
    )
    method, template, body_name = route
    path = template.replace("{chat}", chat)
    query: dict[str, str] = {}
    if draw(st.booleans()):
        names = st.sampled_from(["after", "wait", "chat", "expires", "signature"])
        # A long poll's `wait` is kept short or invalid: a valid long wait only makes the test slow.
        values = interesting | text | st.sampled_from(["0-0", "0.01", "-1", "31", "nan", "inf", "1e400"])
        query = draw(st.dictionaries(names, values, max_size=3))
        if query.get("wait") not in (None, "0.01", "-1", "31", "nan", "inf", "1e400"):
            query["wait"] = "0"
    token = desk["zoe"] if not rarely(draw) else draw(st.sampled_from([desk["yan"], "", "cca_forged"]) | header_value)
    if path == "/agent/logout":
        token = "cca_forged"  # Zoe's own token would end the session every later example acts in
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if rarely(draw):
        headers["Last-Event-ID"] = draw(header_value)
    kwargs: dict[str, Any] = {"headers": headers, "query_string": query}
    if body_name is not None:
        if rarely(draw):
            kwargs["data"] = draw(st.binary(max_size=200))
            kwargs["content_type"] = draw(st.sampled_from(["application/json", "multipart/form-data", "text/plain"]))
        else:
            document = draw(json_values) if rarely(draw) else draw(mutated(BODIES[body_name]))
            kwargs["data"] = dumps(document, ascii_only=draw(st.booleans()))
            kwargs["content_type"] = "application/json"
    return method, path, kwargs


def check(client, runtime, desk: dict[str, str], call: tuple[str, str, dict[str, Any]]) -> None:
    method, path, kwargs = call
    with crashes("connector") as log:
        answer = client.open(path, method=method, **kwargs)
    what = path.rsplit("/", 1)[-1] if desk["chat"] in path else path
    error = answer.get_json()["error"] if answer.status_code >= 400 and answer.is_json else ""
    note(f"{what} {answer.status_code} {error}")
    assert answer.status_code < 500, answer.get_data(as_text=True)
    assert not log.records, [r.getMessage() for r in log.records]
    if answer.status_code >= 400:
        assert answer.is_json and set(answer.get_json()) == {"error", "message"}, answer.get_data(as_text=True)
        return
    if path.endswith("/messages") and method == "POST":
        sent = json.loads(kwargs["data"])["text"]
        chat_id = path.split("/")[4]
        entries = {e.get("message_id"): e for e in transcript.read(runtime.redis, chat_id)}
        message_id = answer.get_json()["message_id"]
        assert message_id in entries and entries[message_id]["text"] == sent


@given(data=st.data())
def test_never_5xx_refusals_are_json_and_sent_messages_are_kept(client, runtime, desk, data):
    check(client, runtime, desk, data.draw(calls(desk), label="call"))


def test_json_nested_beyond_the_stack_is_a_400(client, desk):
    """Found by the fuzzer: `request.get_json` raised RecursionError (a 500) for `[[[[…` 100,000 deep."""
    body = b"[" * 100_000 + b"]" * 100_000
    headers = {"Authorization": f"Bearer {desk['zoe']}"}
    for method, path in (
        ("POST", "/agent/login"),
        ("PUT", "/agent/api/me/state"),
        ("POST", "/agent/api/chats/x/close"),
    ):
        answer = client.open(path, method=method, data=body, content_type="application/json", headers=headers)
        assert answer.status_code == 400 and set(answer.get_json()) == {"error", "message"}, path
