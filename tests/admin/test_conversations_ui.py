"""The conversations pages: the list with filters and paging, and one conversation's timeline."""

from __future__ import annotations

import json
import time

from connector.relay.drain import drain_thread
from connector.store import dead_letters, keys
from connector.store.boxes import Box
from tests.operations.test_conversations import post_whatsapp, seed, write_thread


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


def test_unknown_filter_values_are_left_out_and_the_operator_is_told(operator, redis):
    seed(redis, 2)
    viewer = operator("viewer")
    answer = viewer.get("/admin/conversations/?state=bogus&channel=fax&page=x&from=2026-13-01")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert page.count('href="/admin/conversations/t') == 4, "the other filters still apply: none here"
    assert "Unknown state &#39;bogus&#39;: it was left out" in page
    assert "Unknown channel &#39;fax&#39;" in page
    assert "Page &#39;x&#39; is not a page number: showing page 1." in page
    assert "From &#39;2026-13-01&#39; is not a date (YYYY-MM-DD): it was left out." in page


def test_a_page_beyond_the_last_shows_the_last_page_and_says_so(operator, redis):
    seed(redis, 60)
    viewer = operator("viewer")
    for asked in ("3", "9" * 30):
        answer = viewer.get(f"/admin/conversations/?page={asked}")
        page = answer.get_data(as_text=True)
        assert answer.status_code == 200
        assert "showing the last page, 2." in page and "Page 2 of 2" in page
        assert page.count('href="/admin/conversations/t') == 2 * 10


def test_search_and_dates_count_what_matches_and_page_x_of_y_keeps_them(operator, redis):
    seed(redis, 120, first_text="Where is my parcel?")  # activity 1000..1119: 1970-01-01, UTC
    write_thread(redis, "late", 86_400 * 3, channel="sms", customer="+15559990000", details={"name": "Ann Lee"})
    viewer = operator("viewer")
    everything = viewer.get("/admin/conversations/").get_data(as_text=True)
    assert "<strong>121</strong> conversations," in everything and "Page 1 of 3" in everything

    page = viewer.get("/admin/conversations/?q=PARCEL&to=1970-01-01&channel=sms").get_data(as_text=True)
    assert "<strong>60</strong> conversations match (of 121)" in page and "Page 1 of 2" in page
    assert "“Where is my parcel?”" in page
    next_link = page.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    for kept in ("page=2", "q=PARCEL", "to=1970-01-01", "channel=sms"):
        assert kept in next_link
    second = viewer.get(next_link).get_data(as_text=True)
    assert "Page 2 of 2" in second and second.count('href="/admin/conversations/t') == 2 * 10
    previous = second.split('rel="prev" href="')[1].split('"')[0].replace("&amp;", "&")
    assert "page=1" in previous and "q=PARCEL" in previous

    ann = viewer.get("/admin/conversations/?q=ann+lee&from=1970-01-04&to=1970-01-04").get_data(as_text=True)
    assert "<strong>1</strong> conversation matches (of 121)" in ann and "Ann Lee" in ann and "+15559990000" in ann
    assert 'value="1970-01-04"' in ann, "the date fields show what is applied"
    none = viewer.get("/admin/conversations/?from=1970-01-02&to=1970-01-03").get_data(as_text=True)
    assert "<strong>0</strong> conversations match" in none and "No conversation matches these filters" in none


def test_each_conversation_is_one_row_of_the_list_body(operator, redis):
    seed(redis, 3)
    page = operator("viewer").get("/admin/conversations/").get_data(as_text=True)
    body = page.split('<tbody id="conversations">')[1].split("</tbody>")[0]
    assert body.count("<tr ") == 3 and body.count("</tr>") == 3
    assert '<tr id="conversation-t00002" data-thread="t00002"' in body


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
