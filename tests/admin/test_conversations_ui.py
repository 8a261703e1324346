"""The conversations pages: the list with filters and paging, and one conversation's timeline."""

from __future__ import annotations

import json
import time

from connector.relay.drain import drain_thread
from connector.store import dead_letters, keys
from connector.store.boxes import Box
from tests.operations.test_conversations import post_whatsapp, seed


def test_the_list_shows_conversations_newest_first_with_their_routing(operator, redis):
    seed(redis, 3)
    page = operator("viewer").get("/admin/conversations/").get_data(as_text=True)
    assert page.index("+15550000002") < page.index("+15550000001") < page.index("+15550000000")
    assert "TestRouter / Sales" in page and "Agent 0" in page
    assert 'href="/admin/conversations/t00002"' in page


def test_filters_narrow_the_list_and_stay_in_the_paging_links(operator, redis):
    seed(redis, 120)
    viewer = operator("viewer")
    page = viewer.get("/admin/conversations/?channel=sms").get_data(as_text=True)
    assert page.count('href="/admin/conversations/t') == 2 * 50, "50 rows (of 60), each with two links"
    assert "+15550000119" in page and "+15550000118" not in page, "whatsapp ones are filtered out"
    next_link = page.split('rel="next" href="')[1].split('"')[0]
    assert "page=2" in next_link and "channel=sms" in next_link
    second = viewer.get(next_link.replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('href="/admin/conversations/t') == 2 * 10
    closed = viewer.get("/admin/conversations/?channel=sms&state=closed").get_data(as_text=True)
    assert closed.count('href="/admin/conversations/t') == 2 * 40
    none = viewer.get("/admin/conversations/?agent=nobody").get_data(as_text=True)
    assert "No conversation matches these filters" in none


def test_unknown_filter_values_are_ignored_not_errors(operator, redis):
    seed(redis, 2)
    viewer = operator("viewer")
    answer = viewer.get("/admin/conversations/?state=bogus&channel=fax&page=x")
    assert answer.status_code == 200
    assert answer.get_data(as_text=True).count('href="/admin/conversations/t') == 4
    far = viewer.get("/admin/conversations/?page=" + "9" * 30)
    assert far.status_code == 200 and "No conversation" in far.get_data(as_text=True)


def test_a_conversation_page_tells_its_whole_story(operator, client, redis):
    thread_id = post_whatsapp(client, "15551239001", "wamid.U1", "Where is my parcel?")
    drain_thread(thread_id)
    letter = dead_letters.add(redis, thread_id, Box.OUT, b'{"source":"ece"}', "window closed")
    entry = {"at": time.time(), "kind": "dead_letter", "box": "out", "reason": "window closed", "id": letter.id}
    redis.rpush(keys.timeline(thread_id), json.dumps(entry))  # as drain.py records a dead letter
    post_whatsapp(client, "15551239001", "wamid.U2", "Hello?")  # pending: not drained yet

    page = operator("viewer").get(f"/admin/conversations/{thread_id}").get_data(as_text=True)
    assert "Where is my parcel?" in page, "the customer's message"
    assert "rule whatsapp" in page and "TestRouter" in page and "Support" in page, "routing"
    assert "Customer 15551239001" in page, "details"
    assert f'href="/admin/dead-letters/{letter.id}"' in page and "window closed" in page
    assert "<strong>1</strong> customer item(s)" in page and "Hello?" in page, "what waits"


def test_an_unknown_conversation_is_a_404_that_says_what_to_do(operator):
    answer = operator("viewer").get("/admin/conversations/nope")
    assert answer.status_code == 404
