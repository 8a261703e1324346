"""The overview's dashboard (connector/dashboard.py, /admin/): each figure is read from Redis and
shown in a table a page without JavaScript can read; the charts' figures ride along as JSON."""

from __future__ import annotations

import json
import re
import time

import pytest

from connector import dashboard
from connector.backends.hybrid.state import HybridState
from connector.blending.agents import AgentRegistry
from connector.blending.machine import AgentState, Chat
from connector.relay.breaker import service_of
from connector.store import dead_letters, keys, tallies, unrouted
from connector.store.boxes import Box
from tests.backends.hybrid.agent_api_helpers import with_local_agents


def row(page: str, marker: str) -> str:
    """The <tr> of `page` that carries `marker` (a data- attribute), tags and all."""
    found = re.search(rf"<tr {marker}>(.*?)</tr>", page, re.S)
    assert found, f"no row {marker}"
    return found.group(1)


def cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", html, re.S)]


def test_the_tables_show_the_figures_from_redis(operator, runtime, redis):
    now = time.time()
    minute = tallies.minute_of(now)
    redis.hset(keys.traffic(minute), mapping={"in|sms": 4, "out|sms": 6, "in|whatsapp": 1})
    redis.hset(keys.traffic(minute - 30), mapping={"in|sms": 10})
    redis.hset(keys.traffic(minute - 90), mapping={"in|sms": 1000})  # older than the window: not shown
    redis.zadd(keys.waiting("TestRouter", "Support"), {"t1": now - 95, "t2": now - 10})
    router = runtime.config.integration("TestRouter")
    redis.hset(keys.breaker(service_of(router)), mapping={"open_until": now + 60, "failures": 7})
    redis.zadd(keys.parked(service_of(router)), {"t1": now, "t3": now})
    dead_letters.add(redis, "t1", Box.OUT, "{}", "refused")
    unrouted.record(redis, {"at": now, "thread": "t9", "channel": "sms", "asset": "test-sms", "kind": "message"})

    page = operator("viewer").get("/admin/").get_data(as_text=True)

    assert cells(row(page, 'data-channel="sms"')) == ["sms", "4", "6", "14", "6"]
    assert cells(row(page, 'data-channel="whatsapp"')) == ["whatsapp", "1", "0", "1", "0"]
    assert cells(row(page, 'data-channel="apple"')) == ["apple", "0", "0", "0", "0"], "a quiet channel shows zeros"
    support = cells(row(page, 'data-entry-point="TestRouter/Support"'))
    assert support[:2] == ["TestRouter / Support", "2"] and re.fullmatch(r"1 min 3[5-9] s", support[2]), support
    assert cells(row(page, 'data-entry-point="TestRouter/Sales"')) == ["TestRouter / Sales", "0", "—"]
    breaker = cells(row(page, 'data-integration="TestRouter"'))
    assert breaker[0] == "TestRouter" and breaker[1].startswith("open") and breaker[2:] == ["7", "2"]
    assert re.search(r'href="/admin/dead-letters/"><strong>1</strong> dead letters', page)
    assert re.search(r'href="/admin/unrouted/"><strong>1</strong> unrouted messages', page)
    assert "<strong>0</strong> workers alive" in page
    assert "Not measured: no post-chat survey was answered" in page
    assert 'data-live-every="10"' in page, "the page re-reads its figures"

    chart = json.loads(re.search(r'<script type="application/json" id="traffic-data">(.*?)</script>', page, re.S)[1])
    assert len(chart["x"]) == tallies.MINUTES_KEPT and chart["x"][-1] == minute * 60
    sms = chart["channels"].index("sms")
    assert chart["in"][sms][-1] == 4 and chart["in"][sms][-31] == 10 and sum(chart["in"][sms]) == 14
    assert chart["out"][sms][-1] == 6
    every_minute = re.search(r'<details id="traffic-minutes" open>(.*?)</details>', page, re.S)[1]
    assert every_minute.count("<tr>") == tallies.MINUTES_KEPT + 1, "a row per minute, and the header"


def test_agents_by_voice_and_chat_state_from_blending_and_hybrid_chat(operator, runtime, redis):
    registry = AgentRegistry(redis)
    for agent_id, voice, chat in (("1001", "TALKING", Chat.INTERRUPTED), ("1002", "READY", Chat.READY)):
        with registry.lock(agent_id) as lock:
            registry.save_state(lock, AgentState(agent_id, voice=voice, chat=chat))
    with_local_agents(runtime)  # zoe and yan, Hybrid Chat's local agents (max 2 chats each)
    HybridState(redis).set_agent("local:zoe", state="READY", login="zoe", name="Zoe", skills=("english",), max_chats=2)

    board = dashboard.read(runtime)
    assert board.agents.voice == {"READY": 1, "TALKING": 1}
    assert board.agents.chat == {"INTERRUPTED": 1, "NOT_READY": 1, "READY": 2}, "yan never set READY"

    page = operator("viewer").get("/admin/").get_data(as_text=True)
    chat = re.search(r'<table id="agents-chat">(.*?)</table>', page, re.S)[1]
    assert cells(chat) == ["Chat", "Agents", "INTERRUPTED", "1", "NOT_READY", "1", "READY", "2"]


def test_csat_is_shown_once_a_survey_module_gives_it(operator):
    dashboard.register_csat(lambda redis: dashboard.Csat(score=87.5, responses=40, period="last 7 days"))
    try:
        page = operator("viewer").get("/admin/").get_data(as_text=True)
    finally:
        dashboard.register_csat(None)
    assert "<strong>87.5 %</strong> satisfied, 40 answers (last 7 days)" in page


@pytest.mark.parametrize(("seconds", "words"), [(None, "—"), (5.9, "5 s"), (200, "3 min 20 s"), (7500, "2 h 5 min")])
def test_waits_read_at_a_glance(app, seconds, words):
    assert app.jinja_env.filters["duration"](seconds) == words


def test_the_unrouted_page_lists_why_each_rule_passed_a_message_over(operator, client, redis):
    from tests.operations.test_conversations import post_whatsapp

    thread_id = post_whatsapp(client, "15551239100", "wamid.U1", "hello?")
    unrouted.record(
        redis,
        {
            "at": time.time(),
            "thread": thread_id,
            "channel": "whatsapp",
            "asset": "test-whatsapp",
            "kind": "message",
            "misses": [{"rule": "whatsapp", "reason": "ends before today"}],
        },
    )
    page = operator("viewer").get("/admin/unrouted/").get_data(as_text=True)
    assert "<strong>whatsapp</strong>: ends before today" in page
    assert f'href="/admin/conversations/{thread_id}"' in page
    assert "1 in all" in page
    empty = operator("viewer").get("/admin/unrouted/?page=" + "9" * 30)
    assert empty.status_code == 200


def test_delivery_backlog_per_integration_and_its_warning(operator, client, runtime, redis):
    """Messages accepted and not yet taken by the contact center, with the oldest one's wait; past
    CONNECTOR_BACKLOG_WARNING_SECONDS the page says so (operations/backpressure.py)."""
    from tests.helpers import WHATSAPP_ASSET, whatsapp_headers, whatsapp_payload

    for index in range(2):
        body = whatsapp_payload([("15551238001", f"wamid.D{index}", "hello")])
        client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))
    viewer = operator("viewer")

    page = viewer.get("/admin/").get_data(as_text=True)
    assert cells(row(page, 'data-delivery=""'))[:4] == ["not routed yet", "0", "2", "1"]
    assert cells(row(page, 'data-delivery="TestRouter"')) == ["TestRouter", "0", "0", "0", "—"]
    assert 'id="delivery-warning"' not in page

    [thread] = [m.decode() for m in redis.smembers(keys.active_inboxes())]
    head = json.loads(redis.lindex(keys.inbox(thread), 0))
    head["received_at"] -= runtime.settings.backlog_warning_seconds + 30
    redis.lset(keys.inbox(thread), 0, json.dumps(head))
    redis.delete(keys.backpressure())  # the last reading is kept two seconds
    page = viewer.get("/admin/").get_data(as_text=True)
    assert re.fullmatch(r"1 min 3\d s", cells(row(page, 'data-delivery=""'))[4])
    assert re.search(r'id="delivery-warning"[^>]*>the oldest customer message has waited 9\d s', page)
