"""The agent's side of the ECE simulator: the control API drives agent actions, each reaching a real
callback receiver (a Flask app on another loopback server) in the profile's shapes, with the
emitter's faults (batching, duplicates, reversed batches, held events, retries); and the agent
console page."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from connector.sandbox.ece import EceSimulator
from tests.sandbox.ece_sim import (
    KEY,
    OTHER_KEY,
    OTHER_SECRET,
    SECRET,
    TIMEOUT,
    Ece,
    Receiver,
    running_ece,
    running_receiver,
    serving,
)

CONSOLE_JS = Path(__file__).resolve().parents[3] / "connector" / "sandbox" / "ece" / "console.js"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def ece(receiver: Receiver) -> Iterator[Ece]:
    with running_ece(callback_url=receiver.url, callback_auth={"type": "bearer", "token": "cb-token"}) as e:
        yield e


def started(ece: Ece, **extra: Any) -> tuple[str, dict[str, str]]:
    headers = ece.bearer()
    return ece.start(headers, **extra), headers


def assigned(ece: Ece, agent: tuple[str, str] = ("1001", "Alice")) -> tuple[str, dict[str, str]]:
    conv, headers = started(ece)
    ece.act(conv, "assign", agent_id=agent[0], agent_name=agent[1])
    return conv, headers


def customer_file(ece: Ece, headers: dict[str, str], conv: str, name: str) -> str:
    answer = requests.post(
        f"{ece.conversations}/{conv}/attachments",
        files={"file": (name, b"customer bytes", "image/png")},
        data={"name": name, "mimeType": "image/png"},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 201
    return answer.json()["id"]


def values(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"]["value"] for e in events]


def contents(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"] for e in events]


# -- callback POST: headers and body ------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"type": "bearer", "token": "cb-token"}, "Bearer cb-token"),
        ({"type": "basic", "username": "ece", "password": "pw"}, "Basic " + base64.b64encode(b"ece:pw").decode()),
        ({"type": "none"}, None),
    ],
)
def test_callback_post_carries_the_configured_authorization(
    receiver: Receiver, auth: dict[str, str], expected: str | None
) -> None:
    with running_ece(callback_url=receiver.url, callback_auth=auth) as ece:
        assigned(ece)
        receiver.wait_events(1)
        post = receiver.posts[0]
        assert post.headers.get("Authorization") == expected
        assert post.headers["Content-Type"] == "application/json"
        assert set(post.body) == {"message"}
        assert values(post.body["message"]) == ["assigned"]


def test_callback_auth_can_be_changed_later(receiver: Receiver) -> None:
    with running_ece() as ece:
        conv, _ = assigned(ece)
        time.sleep(0.1)
        assert ece.sim.emitter.pending and not receiver.posts  # no URL yet: held
        ece.sim.model.configure_callback(receiver.url, {"type": "bearer", "token": "later"})
        receiver.wait_events(1)
        assert receiver.posts[0].headers["Authorization"] == "Bearer later"
        answer = ece.control("callback", {"url": receiver.url, "auth": {"type": "basic", "username": "u"}})
        assert answer.status_code == 400  # basic needs a password
        assert ece.control("callback", {"url": receiver.url, "auth": {"type": "none"}}).status_code == 200
        ece.act(conv, "say", text="hi")
        receiver.wait_events(2)
        assert "Authorization" not in receiver.posts[-1].headers


# -- every event type ---------------------------------------------------------------------------


def test_every_agent_action_reaches_the_callback_in_the_profile_shape(ece: Ece, receiver: Receiver) -> None:
    conv, headers = started(ece)
    accepted_file = customer_file(ece, headers, conv, "photo.png")
    rejected_file = customer_file(ece, headers, conv, "virus.exe")
    before_ms = int(time.time() * 1000)

    ece.act(conv, "assign", agent_id="1001", agent_name="Alice")
    ece.act(conv, "typing", on=True)
    ece.act(conv, "typing", on=False)
    ece.act(conv, "say", text="Hello, I am Alice.")
    ece.act(conv, "say", text="<b>Bold</b> offer", html=True)
    ece.act(conv, "page_push", url="https://example.com/offer")
    ece.act(conv, "upload_file", name="terms.txt", mime_type="text/plain", content="the terms")
    ece.act(conv, "accept_attachment", attachment_id=accepted_file)
    ece.act(conv, "reject_attachment", attachment_id=rejected_file)
    ece.act(conv, "transfer", kind="agent", name="Bob")
    ece.act(conv, "assign", agent_id="1002", agent_name="Bob")
    ece.act(conv, "transfer", kind="queue", name="Billing")
    assert ece.sim.model.conversations[conv].state == "queued"
    ece.act(conv, "assign", agent_id="1001", agent_name="Alice")
    ece.act(conv, "complete")

    events = receiver.wait_events(14)
    assert values(events) == [
        "assigned",
        "startTyping",
        "endTyping",
        "text/plain",
        "text/html",
        "pagePush",
        "uploadAttachment",
        "acceptAttachment",
        "rejectAttachment",
        "transfer",
        "assigned",
        "transfer",
        "assigned",
        "complete",
    ]
    ids = [e["id"] for e in events]
    assert all(isinstance(i, str) and i.isdigit() for i in ids)
    assert [int(i) for i in ids] == sorted({int(i) for i in ids})
    alice = {"type": "user", "user": {"id": "1001", "name": "Alice"}}
    bob = {"type": "user", "user": {"id": "1002", "name": "Bob"}}
    for event in events:
        assert {"id", "conversation", "type", "content", "sender", "timeStamp"} <= set(event)
        assert event["conversation"] == {"id": conv}
        assert isinstance(event["timeStamp"], int) and before_ms - 1000 <= event["timeStamp"] <= time.time() * 1000
    by_index = dict(enumerate(events))
    assert [by_index[i]["sender"] for i in range(10)] == [alice] * 10
    assert by_index[10]["sender"] == bob and by_index[11]["sender"] == bob
    assert events[-1]["sender"] == {"type": "system"}
    assert contents(events)[3:6] == ["Hello, I am Alice.", "<b>Bold</b> offer", "https://example.com/offer"]
    assert by_index[9]["transfer"] == {"type": "agent", "name": "Bob"}
    assert by_index[11]["transfer"] == {"type": "queue", "name": "Billing"}
    assert by_index[7]["attachment"] == {"id": accepted_file, "name": "photo.png"}
    assert by_index[8]["attachment"] == {"id": rejected_file, "name": "virus.exe"}

    upload = by_index[6]["attachment"]
    assert set(upload) == {"id", "name", "url", "mimeType", "size"}
    assert (upload["name"], upload["mimeType"], upload["size"]) == ("terms.txt", "text/plain", 9)
    assert upload["url"] == f"{ece.base}/files/{upload['id']}"
    download = requests.get(upload["url"], timeout=TIMEOUT)
    assert download.status_code == 200 and download.content == b"the terms"

    # The simulator keeps every emitted event on the conversation.
    assert ece.sim.model.conversations[conv].events == events


def test_complete_follows_end_conversation(ece: Ece, receiver: Receiver) -> None:
    conv, headers = assigned(ece)
    assert ece.end(headers, conv).status_code == 204
    events = receiver.wait_events(2)
    assert values(events) == ["assigned", "complete"]
    assert events[-1]["sender"] == {"type": "system"}
    assert events[-1]["conversation"] == {"id": conv}


def test_upload_file_from_the_console_is_multipart(ece: Ece, receiver: Receiver) -> None:
    conv, _ = assigned(ece)
    answer = requests.post(
        f"{ece.base}/control/conversations/{conv}/upload_file",
        files={"file": ("map.png", b"\x89PNG data", "image/png")},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 201
    attachment = receiver.wait_events(2)[-1]["attachment"]
    assert (attachment["name"], attachment["mimeType"], attachment["size"]) == ("map.png", "image/png", 9)
    assert requests.get(attachment["url"], timeout=TIMEOUT).content == b"\x89PNG data"


# -- emitter: batching, duplicates, reversal, held events, retries ------------------------------


def burst(ece: Ece, conv: str, count: int) -> list[str]:
    texts = [f"m{i}" for i in range(count)]
    for text in texts:
        ece.act(conv, "say", text=text)
    return texts


def test_batch_size_splits_held_events_in_order(ece: Ece, receiver: Receiver) -> None:
    conv, _ = assigned(ece)
    receiver.wait_events(1)
    assert ece.control("emitter", {"paused": True, "batch_size": 2}).status_code == 200
    texts = burst(ece, conv, 5)
    assert ece.control("emitter", {"paused": False}).status_code == 200
    receiver.wait_events(6)
    batches = receiver.accepted()[1:]
    assert [len(b) for b in batches] == [2, 2, 1]
    assert [e["content"] for b in batches for e in b] == texts


def test_default_batch_is_whatever_is_pending_up_to_50(ece: Ece, receiver: Receiver) -> None:
    ece.sim.emitter.pause()
    conv, _ = assigned(ece)
    texts = burst(ece, conv, 54)
    ece.sim.emitter.resume()
    receiver.wait_events(55)
    batches = receiver.accepted()
    assert [len(b) for b in batches] == [50, 5]
    assert contents(receiver.events())[1:] == texts


def test_duplicate_next_delivers_the_next_events_twice(ece: Ece, receiver: Receiver) -> None:
    conv, _ = assigned(ece)
    receiver.wait_events(1)
    ece.sim.emitter.pause()
    ece.control("emitter", {"duplicate_next": 2})
    burst(ece, conv, 3)
    ece.sim.emitter.resume()
    events = receiver.wait_events(6)
    assert contents(events[1:]) == ["m0", "m0", "m1", "m1", "m2"]
    assert events[1] == events[2]  # the same event, same id: the connector must drop the repeat


def test_duplicate_that_does_not_fit_goes_into_the_next_batch(ece: Ece, receiver: Receiver) -> None:
    conv, _ = assigned(ece)
    receiver.wait_events(1)
    ece.sim.emitter.set_batch_size(1)
    ece.sim.emitter.duplicate_next(1)
    ece.act(conv, "say", text="twice")
    receiver.wait_events(3)
    assert [contents(b) for b in receiver.accepted()[1:]] == [["twice"], ["twice"]]


def test_reverse_next_batch_with_pause_and_resume_delivers_out_of_order(ece: Ece, receiver: Receiver) -> None:
    conv, _ = assigned(ece)
    receiver.wait_events(1)
    ece.control("emitter", {"paused": True, "reverse_next_batch": True})
    texts = burst(ece, conv, 4)
    ece.control("emitter", {"paused": False})
    receiver.wait_events(5)
    ece.act(conv, "say", text="after")
    receiver.wait_events(6)
    batches = receiver.accepted()
    assert contents(batches[1]) == list(reversed(texts))
    assert contents(batches[2]) == ["after"]  # only the next batch is reversed
    ids = [int(e["id"]) for e in batches[1]]
    assert ids == sorted(ids, reverse=True)


def test_failed_batch_is_retried_with_order_preserved(ece: Ece, receiver: Receiver) -> None:
    conv, _ = assigned(ece)
    receiver.wait_events(1)
    receiver.answers.extend([500, 500])
    ece.act(conv, "say", text="one")
    ece.act(conv, "say", text="two")
    ece.act(conv, "say", text="three")
    events = receiver.wait_events(4)
    assert contents(events[1:]) == ["one", "two", "three"]
    statuses = [p.status for p in receiver.posts[1:]]
    assert statuses[:3] == [500, 500, 200]
    # The retried batch is the same batch, the same items in the same order.
    assert receiver.posts[1].body == receiver.posts[2].body == receiver.posts[3].body
    failed = [d for d in ece.sim.emitter.delivered if not d.ok]
    assert [d.status for d in failed] == [500, 500]
    assert receiver_gap(ece) >= 0.5  # backed off 0.2 s, then 0.4 s


def test_pause_during_retries_keeps_the_failing_batch_first(ece: Ece, receiver: Receiver) -> None:
    conv, _ = assigned(ece)
    receiver.wait_events(1)
    receiver.answers.extend([503] * 50)
    ece.act(conv, "say", text="first")
    receiver.wait_for(lambda r: len(r.posts) >= 3)
    ece.sim.emitter.pause()
    # After its current backoff the emitter puts the failing batch back at the front and holds it.
    deadline = time.monotonic() + 5
    while ece.sim.emitter.options()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.02)
    options = ece.sim.emitter.options()
    assert (options["in_flight"], options["pending"], options["paused"]) == (False, 1, True)
    burst(ece, conv, 2)
    with receiver.lock:
        receiver.answers.clear()
    ece.sim.emitter.resume()
    events = receiver.wait_events(4)
    assert contents(events[1:]) == ["first", "m0", "m1"]


def receiver_gap(ece: Ece) -> float:
    """Seconds between the first failed attempt and the first success after it."""
    attempts = ece.sim.emitter.delivered
    first_fail = next(i for i, d in enumerate(attempts) if not d.ok)
    success = next(d for d in attempts[first_fail:] if d.ok)
    return success.at - attempts[first_fail].at


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_error_is_retried_until_the_receiver_is_there(receiver: Receiver) -> None:
    with running_ece(callback_url=f"http://127.0.0.1:{free_port()}/callback") as ece:
        conv, _ = assigned(ece)
        deadline = time.monotonic() + 5
        while not ece.sim.emitter.delivered and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ece.sim.emitter.delivered[0].status is None and ece.sim.emitter.delivered[0].error
        ece.act(conv, "say", text="queued behind")
        assert ece.control("callback", {"url": receiver.url}).status_code == 200
        assert contents(receiver.wait_events(2, timeout=8)) == ["Alice has joined the chat", "queued behind"]


def test_deliveries_log(ece: Ece, receiver: Receiver) -> None:
    assigned(ece)
    receiver.wait_events(1)
    assert ece.sim.emitter.wait_idle()
    log = requests.get(f"{ece.base}/control/deliveries", timeout=TIMEOUT).json()["deliveries"]
    assert [(d["status"], d["ok"], values(d["events"])) for d in log] == [(200, True, ["assigned"])]
    assert log[0]["url"] == receiver.url


@pytest.mark.parametrize("size", [0, 1001, -1])
def test_batch_size_outside_1_to_1000_is_refused(ece: Ece, size: int) -> None:
    answer = ece.control("emitter", {"batch_size": size})
    assert answer.status_code == 400 and "1..1000" in answer.json()["developerMessage"]


def test_batch_size_null_restores_the_default(ece: Ece) -> None:
    ece.control("emitter", {"batch_size": 7})
    assert ece.control("emitter", {"batch_size": None}).json()["batch_size"] is None


# -- control API --------------------------------------------------------------------------------


def test_state_shows_entry_points_and_conversations(ece: Ece, receiver: Receiver) -> None:
    conv, headers = started(
        ece,
        customer={"attributes": [{"name": "name", "value": "Ada Lovelace"}]},
        subject="Order 42",
        customAttributes=[{"name": "channel", "value": "sms"}],
        locale="en-GB",
    )
    ece.send(headers, conv, "my order is late")
    file_id = customer_file(ece, headers, conv, "receipt.png")
    ece.act(conv, "assign", agent_id="1001", agent_name="Alice")
    receiver.wait_events(1)

    state = ece.state()
    assert [ep["id"] for ep in state["entry_points"]] == ["1001", "1002"]
    ep = state["entry_points"][0]
    assert {"active", "agents_available", "capacity", "queue_depth", "wait_seconds", "bound", "last_modified"} <= set(
        ep
    )
    assert (ep["eligibility"], ep["chat_allowed"]) == (0, True)
    [c] = state["conversations"]
    assert c["id"] == conv and c["state"] == "assigned" and c["agent"] == {"id": "1001", "name": "Alice"}
    assert c["customer_attributes"] == [{"name": "name", "value": "Ada Lovelace"}]
    assert (c["subject"], c["locale"], c["custom_attributes"]) == (
        "Order 42",
        "en-GB",
        [{"name": "channel", "value": "sms"}],
    )
    assert [(r["kind"], r["content"]) for r in c["received"]] == [("message", "my order is late"), ("attachment", None)]
    assert all(r["received_at"] > 0 for r in c["received"])
    [attachment] = c["attachments"]
    assert (attachment["id"], attachment["name"], attachment["direction"]) == (file_id, "receipt.png", "customer")
    assert requests.get(attachment["url"], timeout=TIMEOUT).content == b"customer bytes"
    assert values(c["events"]) == ["assigned"]
    assert state["callback"] == {"url": receiver.url, "auth_type": "bearer"}
    assert state["demo_agents"] == [{"id": "1001", "name": "Alice"}, {"id": "1002", "name": "Bob"}]


def test_entry_point_switches_drive_the_checks_and_lastmodified(ece: Ece) -> None:
    headers = ece.bearer()
    before = ece.last_modified("1001", headers)
    answer = ece.control("entry_points/1001", {"agents_available": False, "queue_depth": 4, "wait_seconds": 90})
    assert answer.status_code == 200 and answer.json()["eligibility"] == 1
    assert ece.check("agentAvailability", "1001").json() == {"available": False}
    assert ece.check("liveSessionStatus", "1001").json() == {"queueDepth": 4, "waitTime": 90}
    assert ece.last_modified("1001", headers) == before  # switches alone do not make the copy stale

    assert ece.control("entry_points/1001", {"bump_last_modified": True}).status_code == 200
    stale = ece.start_response(headers, {"entryPoint": {"id": "1001", "lastModified": before}})
    assert stale.status_code == 409
    assert ece.start(headers)

    ece.control("entry_points/1002", {"bound": False})
    assert ece.configuration("1002", headers).status_code == 403
    assert ece.control("entry_points/1001", {"colour": "red"}).status_code == 400
    assert ece.control("entry_points/1001", {"capacity": -1}).status_code == 400
    assert ece.control("entry_points/4040", {"active": False}).status_code == 404


def test_entry_points_can_be_added(ece: Ece) -> None:
    answer = ece.control("entry_points", {"id": "2001", "name": "Sales", "capacity": 0})
    assert answer.status_code == 201
    assert ece.check("checkEligibility", "2001").json() == {"responseType": 2}
    assert ece.configuration("2001", ece.bearer()).json()["entryPointConfiguration"][0]["entryPoint"] == {"id": 2001}
    assert ece.control("entry_points", {"id": "2001"}).status_code == 409


def test_actions_on_an_ended_conversation_are_409(ece: Ece, receiver: Receiver) -> None:
    conv, _ = assigned(ece)
    ece.act(conv, "complete")
    for action, body in [
        ("complete", {}),
        ("say", {"text": "late"}),
        ("typing", {"on": True}),
        ("assign", {"agent_id": "1002", "agent_name": "Bob"}),
        ("transfer", {"kind": "queue", "name": "Q"}),
        ("page_push", {"url": "https://example.com"}),
        ("upload_file", {"name": "a.txt", "content": "a"}),
    ]:
        answer = ece.control(f"conversations/{conv}/{action}", body)
        assert answer.status_code == 409, action
        assert "ended" in answer.json()["developerMessage"]
    ece.sim.emitter.wait_idle()
    assert values(receiver.events()) == ["assigned", "complete"]  # complete exactly once


def test_action_refusals(ece: Ece) -> None:
    conv, headers = started(ece)
    unknown = ece.control("conversations/nope/say", {"text": "x"})
    assert unknown.status_code == 404
    assert ece.control(f"conversations/{conv}/dance", {}).status_code == 404
    no_agent = ece.control(f"conversations/{conv}/say", {"text": "x"})
    assert no_agent.status_code == 409 and "assign" in no_agent.json()["developerMessage"]
    ece.act(conv, "assign", agent_id="1001", agent_name="Alice")
    assert ece.control(f"conversations/{conv}/say", {}).status_code == 400
    assert ece.control(f"conversations/{conv}/transfer", {"kind": "team", "name": "x"}).status_code == 400
    assert ece.control(f"conversations/{conv}/accept_attachment", {"attachment_id": "1"}).status_code == 404
    file_id = customer_file(ece, headers, conv, "a.png")
    ece.act(conv, "accept_attachment", attachment_id=file_id)
    again = ece.control(f"conversations/{conv}/reject_attachment", {"attachment_id": file_id})
    assert again.status_code == 409
    bad_json = requests.post(
        f"{ece.base}/control/conversations/{conv}/say",
        data="{oops",
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert bad_json.status_code == 400


def test_failure_switches_over_the_control_api(ece: Ece) -> None:
    headers = ece.bearer()
    conv = ece.start(headers)
    assert ece.control("failures", {"down": "503"}).json()["down"] == "503"
    assert ece.check("chatAllowed", "1001").status_code == 503
    assert ece.control("failures", {"down": "404"}).status_code == 400
    ece.control("failures", {"down": None})
    assert ece.control("failures", {"token_expire_all": True}).status_code == 200
    assert ece.send(headers, conv, "x").status_code == 401
    headers = ece.bearer()
    assert ece.control("failures", {"fail_next": {"count": 1, "status": 502}}).json()["fail_next_pending"] == 1
    assert ece.send(headers, conv, "x").status_code == 502
    assert ece.send(headers, conv, "x").status_code == 201
    assert ece.control("failures", {"fail_next": {"count": 1, "status": 200}}).status_code == 400


def test_other_app_conversation_is_visible_to_the_agent(ece: Ece, receiver: Receiver) -> None:
    theirs = ece.start(ece.bearer(OTHER_KEY, OTHER_SECRET))
    ece.act(theirs, "assign", agent_id="1001", agent_name="Alice")
    assert [c["app"] for c in ece.state()["conversations"]] == [OTHER_KEY]


# -- agent console ------------------------------------------------------------------------------


def test_console_page_renders_and_lists_a_conversation(ece: Ece) -> None:
    conv, _ = started(ece, customer={"attributes": [{"name": "name", "value": "Ada <script>"}]})
    page = requests.get(f"{ece.base}/console", timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "agent console" in html
    assert '<script src="console.js"></script>' in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert conv in html  # the page carries the current state, the conversation included
    assert "Ada \\u003cscript\\u003e" in html  # escaped inside the embedded JSON
    script = requests.get(f"{ece.base}/console.js", timeout=TIMEOUT)
    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]
    assert "control/state" in script.text


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: cannot syntax-check console.js")
def test_console_script_parses() -> None:
    result = subprocess.run(["node", "--check", str(CONSOLE_JS)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_simulator_blueprint_mounts_under_any_prefix(receiver: Receiver) -> None:
    sim = EceSimulator(client_key=KEY, client_secret=SECRET, entry_points=("7",), callback_url=receiver.url)
    app = Flask("prefix")
    app.register_blueprint(sim.blueprint(), url_prefix="/sim/ece")
    with serving(app) as base:
        sim.start()
        try:
            ece = Ece(sim, f"{base}/sim/ece")
            conv = ece.start(ece.bearer(), ep="7")
            ece.act(conv, "assign", agent_id="1", agent_name="A")
            attachment = ece.act(conv, "upload_file", name="x.txt", content="x")["attachment"]
            # File URLs are absolute and carry the mount prefix, so the connector can fetch them.
            assert attachment["url"] == f"{base}/sim/ece/files/{attachment['id']}"
            assert requests.get(attachment["url"], timeout=TIMEOUT).content == b"x"
        finally:
            sim.stop()
