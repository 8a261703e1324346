"""Hybrid Chat messages survive a Redis crash once each: an agent's send waits for CONNECTOR_DURABILITY
like a webhook does, and each side's message is written in one transaction with what a repeat checks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis as redis_lib
import responses

from connector.backends.hybrid import transcript
from connector.backends.hybrid.state import HybridState
from connector.store.boxes import Box
from connector.store.durability import Durability, Mode
from tests.backends.hybrid.agent_api_helpers import DELIVERY, bearer, chat_of, configure_desk, customer_says, login


def test_replicated_answers_an_agents_send_503_without_a_replica_and_keeps_the_message(client, runtime):
    with zoe_holds(client, runtime, "cust-durable") as (zoe, thread_id, chat_id):
        assert HybridState(runtime.redis).chat(chat_id).agent == "local:zoe"
        before = runtime.redis.llen(Box.OUT.key(thread_id))

        # The suite's Redis has no replica: with `replicated`, no send can be confirmed.
        runtime.durability = Durability(Mode.REPLICATED, replica_wait_ms=50)
        sent = client.post(f"/agent/api/chats/{chat_id}/messages", json={"text": "One moment"}, headers=zoe)

    assert sent.status_code == 503
    assert sent.headers["Retry-After"] == "1"
    assert sent.get_json()["error"] == "unavailable"
    items = [json.loads(i) for i in runtime.redis.lrange(Box.OUT.key(thread_id), before, -1)]
    assert [i["event"].get("text") for i in items] == ["One moment"], "stored anyway: delivered unless Redis dies"


def test_an_agents_message_is_queued_for_the_customer_and_shown_in_one_transaction(client, runtime, redis_url):
    """The outbox item and the transcript entry go to Redis in one MULTI/EXEC. Written one after the
    other, a Redis crash between them (the chaos soak's Redis SIGKILL) left a message queued for the
    customer that the agent's transcript did not show, and the agent's client, checking before it
    sent again, sent it a second time."""
    with zoe_holds(client, runtime, "cust-atomic") as (zoe, _thread_id, chat_id), monitoring(redis_url) as commands:
        sent = client.post(f"/agent/api/chats/{chat_id}/messages", json={"text": "One moment"}, headers=zoe)
    assert sent.status_code == 200
    names = [c.split()[0].upper() for c in commands]
    append = next(i for i, c in enumerate(commands) if "One moment" in c and c.upper().startswith("EVALSHA"))
    shown = next(i for i, c in enumerate(commands) if "One moment" in c and c.upper().startswith("RPUSH"))
    opened = max(i for i, name in enumerate(names[: min(append, shown)]) if name == "MULTI")
    assert "EXEC" in names[max(append, shown) :], "both are inside one MULTI ... EXEC"
    assert "EXEC" not in names[opened : min(append, shown)], "the same transaction, not two"


def test_a_customers_message_is_shown_to_the_agent_and_recorded_done_in_one_transaction(client, runtime, redis_url):
    """The transcript entry, the agent's desktop event and the inbox item's effect record go to Redis
    in one MULTI/EXEC. Written one after the other, a Redis SIGKILL after the entry but before the
    record made the repeated inbox item write the customer's message a second time (the chaos soak)."""
    with zoe_holds(client, runtime, "cust-once") as (_zoe, _thread_id, chat_id), monitoring(redis_url) as commands:
        customer_says(runtime, client, "cust-once", "Are you there?")
    names = [c.split()[0].upper() for c in commands]
    shown = next(i for i, c in enumerate(commands) if "Are you there?" in c and ":hybrid:transcript:" in c)
    told = next(i for i, c in enumerate(commands) if "Are you there?" in c and ":hybrid:events:" in c)
    done = next(i for i, c in enumerate(commands) if names[i] == "HSET" and " message:" in c)
    first, last = min(shown, told, done), max(shown, told, done)
    opened = max(i for i, name in enumerate(names[:first]) if name == "MULTI")
    assert "EXEC" in names[last:], "all three are inside one MULTI ... EXEC"
    assert "EXEC" not in names[opened:first], "the same transaction, not two"
    entries = [e for e in transcript.read(runtime.redis, chat_id) if e.get("text") == "Are you there?"]
    assert len(entries) == 1


def test_an_agents_close_ends_the_chat_frees_the_slot_and_tells_the_customer_in_one_transaction(
    client, runtime, redis_url
):
    """Written one after the other, a crash after the close but before the customer's notice left the
    customer never told, and the agent's repeat refused: the chat had ended."""
    with zoe_holds(client, runtime, "cust-close") as (zoe, thread_id, chat_id):
        with monitoring(redis_url) as commands:
            closed = client.post(f"/agent/api/chats/{chat_id}/close", json={"wrap_up": "solved"}, headers=zoe)
        again = client.post(f"/agent/api/chats/{chat_id}/close", headers=zoe)
    assert closed.status_code == 200
    assert again.status_code == 409
    names = [c.split()[0].upper() for c in commands]
    opened = names.index("MULTI")
    ended = names.index("EXEC", opened)
    inside = commands[opened:ended]
    assert any(c.startswith("HSET") and " state closed " in c and "solved" in c for c in inside), "the close"
    assert any(c.startswith("SREM") and chat_id in c for c in inside), "the agent's slot freed"
    assert any(c.startswith("RPUSH") and f":outbox:{thread_id}" in c and '"closed"' in c for c in inside), (
        "the customer's notice queued"
    )
    assert any(c.startswith("XADD") and "chat_closed" in c for c in inside), "the desktop told"
    items = [json.loads(i) for i in runtime.redis.lrange(Box.OUT.key(thread_id), 0, -1)]
    assert [i["event"]["kind"] for i in items if i.get("event", {}).get("kind") == "closed"] == ["closed"]


def test_an_agents_transfer_to_a_queue_moves_the_chat_and_tells_the_customer_in_one_transaction(
    client, runtime, redis_url
):
    """As the close: apart, a crash after the move left the customer never told they wait again."""
    with zoe_holds(client, runtime, "cust-transfer") as (zoe, thread_id, chat_id):
        with monitoring(redis_url) as commands:
            moved = client.post(f"/agent/api/chats/{chat_id}/transfer", json={"queue": "Billing"}, headers=zoe)
        again = client.post(f"/agent/api/chats/{chat_id}/transfer", json={"queue": "Billing"}, headers=zoe)
    assert moved.status_code == 200
    assert again.status_code == 409
    names = [c.split()[0].upper() for c in commands]
    opened = names.index("MULTI")
    inside = commands[opened : names.index("EXEC", opened)]
    assert any(c.startswith("HSET") and " state queued " in c and "Billing" in c for c in inside), "the move"
    assert any(c.startswith("RPUSH") and f":outbox:{thread_id}" in c and "transferred" in c for c in inside), (
        "the customer's notice queued"
    )
    assert any(c.startswith("XADD") and "chat_transferred" in c for c in inside), "the desktop told"


@contextmanager
def zoe_holds(client, runtime, customer: str) -> Iterator[tuple[dict[str, str], str, str]]:
    """Zoe READY, the customer's first message routed to her, and her accept: her headers, the
    thread and the chat, with the in-app provider answering every send meanwhile."""
    configure_desk(runtime)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(DELIVERY, json={"ok": True})
        zoe = bearer(login(client.application.test_client())["token"])
        assert client.put("/agent/api/me/state", json={"state": "READY"}, headers=zoe).status_code == 200
        thread_id = customer_says(runtime, client, customer, "Hello")
        chat_id = chat_of(runtime, thread_id)
        assert client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe).status_code == 200
        yield zoe, thread_id, chat_id


@contextmanager
def monitoring(redis_url: str) -> Iterator[list[str]]:
    """The commands Redis executes during the block (MONITOR on a connection of its own)."""
    commands: list[str] = []
    client = redis_lib.Redis.from_url(redis_url)
    with client.monitor() as monitor:
        stop = threading.Event()

        def read() -> None:
            for event in monitor.listen():
                commands.append(event["command"])
                if stop.is_set() and "cc:test-monitor-end" in event["command"]:
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.1)
        yield commands
        stop.set()
        client.get("cc:test-monitor-end")
        reader.join(5)
