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
from connector.backends.hybrid.router import expire_offers
from connector.backends.hybrid.state import OFFERED, HybridState
from connector.conversations import State
from connector.relay.drain import drain_thread
from connector.store import keys, threads
from connector.store.boxes import Box
from connector.store.durability import Durability, Mode
from connector.store.effects import sent_text, started
from tests.backends.hybrid.agent_api_helpers import (
    DELIVERY,
    YAN,
    YAN_PASSWORD,
    bearer,
    chat_of,
    configure_desk,
    customer_posts,
    customer_says,
    login,
)


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
    append = next(i for i, c in enumerate(commands) if "One moment" in c and c.upper().startswith("EVAL"))
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
    assert _ran(inside, "HSET", " state closed ", "solved"), "the close"
    assert _ran(inside, "SREM", chat_id), "the agent's slot freed"
    assert _ran(inside, "RPUSH", f":outbox:{thread_id}", '"closed"'), "the customer's notice queued"
    assert _ran(inside, "XADD", "chat_closed"), "the desktop told"
    assert notices(runtime, thread_id, "closed") == ["closed"]


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
    assert _ran(inside, "HSET", " state queued ", "Billing"), "the move"
    assert _ran(inside, "RPUSH", f":outbox:{thread_id}", "transferred"), "the customer's notice queued"
    assert _ran(inside, "XADD", "chat_transferred"), "the desktop told"


def test_an_agents_accept_takes_the_chat_and_tells_the_customer_in_one_transaction(client, runtime, redis_url):
    """Written one after the other, a Redis SIGKILL after the accept (the chaos soak) left the chat
    the agent's, the customer never told (nor media blending, which hears of it from that notice),
    and the agent's client, its answer lost, refused on its repeat."""
    with zoe_is_offered(client, runtime, "cust-accept") as (zoe, thread_id, chat_id):
        with monitoring(redis_url) as commands:
            taken = client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe)
        again = client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe)
    assert taken.status_code == 200 and taken.get_json()["state"] == "active"
    assert again.status_code == 409 and again.get_json()["error"] == "already_accepted"
    inside = _the_transaction(commands)
    assert _ran(inside, "HSET", " state active "), "the accept"
    assert _ran(inside, "RPUSH", f":outbox:{thread_id}", '"assigned"'), "the customer's notice queued"
    assert _ran(inside, "XADD", "chat_assigned"), "the desktop told"
    assert notices(runtime, thread_id, "assigned") == ["assigned"]


def test_an_agents_transfer_to_an_agent_moves_the_chat_and_tells_everyone_in_one_transaction(
    client, runtime, redis_url
):
    """Apart, a crash after the move left the customer untold of the transfer (and, earlier, the
    other agent's offer unseen). A refusal (the other agent NOT_READY) changes nothing at all."""
    with zoe_holds(client, runtime, "cust-to-yan") as (zoe, thread_id, chat_id):
        yan = bearer(login(client.application.test_client(), YAN, YAN_PASSWORD)["token"])
        before = runtime.redis.llen(Box.OUT.key(thread_id))
        refused = client.post(f"/agent/api/chats/{chat_id}/transfer", json={"agent_id": "local:yan"}, headers=zoe)
        assert refused.status_code == 409 and refused.get_json()["error"] == "agent_unavailable"
        assert HybridState(runtime.redis).chat(chat_id).agent == "local:zoe"
        assert runtime.redis.llen(Box.OUT.key(thread_id)) == before, "the customer told nothing"

        assert client.put("/agent/api/me/state", json={"state": "READY"}, headers=yan).status_code == 200
        with monitoring(redis_url) as commands:
            moved = client.post(f"/agent/api/chats/{chat_id}/transfer", json={"agent_id": "local:yan"}, headers=zoe)
    assert moved.status_code == 200 and moved.get_json()["state"] == "offered"
    inside = _the_transaction(commands)
    assert _ran(inside, "HSET", " state offered ", "local:yan"), "the move"
    assert _ran(inside, "XADD", "chat_offered", ":events:local:yan"), "Yan told"
    assert _ran(inside, "XADD", "chat_transferred", ":events:local:zoe"), "Zoe's desktop told"
    assert _ran(inside, "RPUSH", f":outbox:{thread_id}", "transferred"), "the customer's notice queued"


def test_an_agents_reject_returns_the_chat_and_clears_the_desktops_offer_in_one_transaction(client, runtime, redis_url):
    """Apart, a crash after the return left the offer ringing on the desktop of an agent it no
    longer rang for."""
    with zoe_is_offered(client, runtime, "cust-reject") as (zoe, _thread_id, chat_id):
        with monitoring(redis_url) as commands:
            rejected = client.post(f"/agent/api/chats/{chat_id}/reject", headers=zoe)
        again = client.post(f"/agent/api/chats/{chat_id}/reject", headers=zoe)
    assert rejected.status_code == 200
    assert again.status_code == 409
    inside = _the_transaction(commands)
    assert _ran(inside, "HSET", " state queued"), "the chat back in its queue"
    assert _ran(inside, "XADD", "offer_withdrawn", "rejected"), "the desktop told"


def test_an_offer_that_rings_out_sets_the_agent_not_ready_and_tells_them_in_one_transaction(client, runtime, redis_url):
    """RONA: apart, a crash after the return left the agent NOT_READY (no more offers) with a desktop
    that still said READY, and media blending keeping their voice state as it was."""
    with zoe_is_offered(client, runtime, "cust-rona") as (_zoe, _thread_id, chat_id):
        rings_until = HybridState(runtime.redis).chat(chat_id).offer_expires_at
        with monitoring(redis_url) as commands:
            assert expire_offers(runtime.redis, runtime.config, now=rings_until + 1) == [chat_id]
    inside = _the_transaction(commands)
    assert _ran(inside, "HSET", " state queued"), "the chat back in its queue"
    assert _ran(inside, "HSET", "NOT_READY", "RONA"), "the agent NOT_READY"
    assert _ran(inside, "XADD", "offer_withdrawn"), "the offer gone from the desktop"
    assert _ran(inside, "XADD", "state_changed", "RONA"), "the desktop told"
    assert _ran(inside, "XADD", keys.chat_events()), "media blending told"


def test_the_router_offers_a_chat_and_tells_the_agent_in_one_script(client, runtime, redis_url):
    """Apart, a worker killed between the offer and its event left the offer ringing unseen, and the
    agent set NOT_READY for letting it ring."""
    scripted: list[str] = []
    with monitoring(redis_url, scripted), zoe_is_offered(client, runtime, "cust-offer") as (zoe, _thread_id, chat_id):
        events = client.get("/agent/api/events", query_string={"after": "0-0"}, headers=zoe).get_json()
    offers = [e for e in events["events"] if e["type"] == "chat_offered"]
    assert [e["chat_id"] for e in offers] == [chat_id]
    assert offers[0]["chat"]["state"] == "offered" and offers[0]["chat"]["offer_expires_at"]
    assert _ran(scripted, "XADD", "chat_offered", chat_id), "written by the offer's own script"


def test_a_customer_who_leaves_ends_the_chat_frees_the_agent_and_tells_them_in_one_transaction(
    client, runtime, redis_url
):
    """Apart, a crash after the close left the agent's desktop showing the chat, and their voice held
    for it by media blending (which hears the end from the outbox item)."""
    with zoe_holds(client, runtime, "cust-leaves") as (_zoe, thread_id, chat_id):
        customer_posts(client, "cust-leaves", "", kind="close")
        with monitoring(redis_url) as commands:
            drain_thread(thread_id, runtime)
    names = [c.split()[0].upper() for c in commands]
    closing = next(i for i, c in enumerate(commands) if c.startswith("HSET") and " state closed " in c)
    opened = max(i for i, name in enumerate(names[:closing]) if name == "MULTI")
    inside = commands[opened : names.index("EXEC", closing)]
    assert _ran(inside, "SREM", chat_id), "the agent's slot freed"
    assert _ran(inside, "XADD", "chat_closed", "customer"), "the desktop told"
    assert _ran(inside, "RPUSH", f":outbox:{thread_id}", '"closed"'), "media blending told, through the outbox"
    assert HybridState(runtime.redis).chat(chat_id).closed_by == "customer"


def _ran(commands: list[str], name: str, *parts: str) -> bool:
    """Whether one of `commands` is a `name` command holding every one of `parts`."""
    return any(c.startswith(name) and all(part in c for part in parts) for c in commands)


def notices(runtime, thread_id: str, kind: str) -> list[str]:
    """The agent events of `kind` in the thread's outbox."""
    items = [json.loads(i) for i in runtime.redis.lrange(Box.OUT.key(thread_id), 0, -1)]
    return [i["event"]["kind"] for i in items if i.get("event", {}).get("kind") == kind]


def _the_transaction(commands: list[str]) -> list[str]:
    """The commands of the first MULTI ... EXEC among `commands` (the action's; a dispatcher's wake
    may follow)."""
    names = [c.split()[0].upper() for c in commands]
    opened = names.index("MULTI")
    return commands[opened : names.index("EXEC", opened)]


@contextmanager
def zoe_holds(client, runtime, customer: str) -> Iterator[tuple[dict[str, str], str, str]]:
    """Zoe READY, the customer's first message routed to her, and her accept: her headers, the
    thread and the chat, with the in-app provider answering every send meanwhile."""
    with zoe_is_offered(client, runtime, customer) as (zoe, thread_id, chat_id):
        assert client.post(f"/agent/api/chats/{chat_id}/accept", headers=zoe).status_code == 200
        yield zoe, thread_id, chat_id


@contextmanager
def zoe_is_offered(client, runtime, customer: str) -> Iterator[tuple[dict[str, str], str, str]]:
    """As `zoe_holds`, up to the offer ringing at her."""
    configure_desk(runtime)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(DELIVERY, json={"ok": True})
        zoe = bearer(login(client.application.test_client())["token"])
        assert client.put("/agent/api/me/state", json={"state": "READY"}, headers=zoe).status_code == 200
        thread_id = customer_says(runtime, client, customer, "Hello")
        chat_id = chat_of(runtime, thread_id)
        assert HybridState(runtime.redis).chat(chat_id).state == OFFERED
        yield zoe, thread_id, chat_id


@contextmanager
def monitoring(redis_url: str, scripted: list[str] | None = None) -> Iterator[list[str]]:
    """The commands Redis executes during the block (MONITOR on a connection of its own); those a
    Lua script ran are also in `scripted`, if given."""
    commands: list[str] = []
    client = redis_lib.Redis.from_url(redis_url)
    with client.monitor() as monitor:
        stop = threading.Event()

        def read() -> None:
            for event in monitor.listen():
                commands.append(event["command"])
                if scripted is not None and event.get("client_type") == "lua":
                    scripted.append(event["command"])
                if stop.is_set() and "cc:test-monitor-end" in event["command"]:
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.1)
        yield commands
        stop.set()
        client.get("cc:test-monitor-end")
        reader.join(5)


def test_a_message_repeated_after_its_conversation_ended_starts_no_new_one(client, runtime):
    """The customer's message reached the agent, the worker died before its commit, and the agent
    closed the chat before the repeat ran (the chaos soak: a Redis SIGKILL): the repeat is done, and
    opens no empty conversation that welcomes the customer again. A message whose handling had
    started the next conversation itself still goes on into it."""
    with zoe_holds(client, runtime, "cust-repeat") as (zoe, thread_id, chat_id):
        assert client.post(f"/agent/api/chats/{chat_id}/close", headers=zoe).status_code == 200
        drain_thread(thread_id, runtime)
        closed = threads.load(runtime.redis, thread_id)
        assert closed.state is State.CLOSED
        outbox_before = runtime.redis.llen(Box.OUT.key(thread_id))

        repeat = customer_posts(client, "cust-repeat", "Thanks, bye")
        effects = keys.effects(Box.IN.value, thread_id)
        runtime.redis.hset(effects, sent_text(repeat), "1")  # as its first handling left it
        drain_thread(thread_id, runtime)

        after = threads.load(runtime.redis, thread_id)
        assert (after.state, after.sequence, after.remote_id) == (State.CLOSED, closed.sequence, chat_id)
        assert runtime.redis.llen(Box.IN.key(thread_id)) == 0, "the item is done"
        assert runtime.redis.llen(Box.OUT.key(thread_id)) == outbox_before, "no welcome"
        assert "repeated after a crash" in threads.timeline(runtime.redis, thread_id)[-1]["note"]

        started_next = customer_posts(client, "cust-repeat", "One more thing")
        next_chat = f"{thread_id}-{closed.sequence + 1}"
        runtime.redis.hset(effects, mapping={started(closed.sequence + 1): next_chat, sent_text(started_next): "1"})
        drain_thread(thread_id, runtime)
        assert threads.load(runtime.redis, thread_id).sequence == closed.sequence + 1, "it went on"
