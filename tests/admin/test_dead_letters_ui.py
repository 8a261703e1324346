"""The dead letters pages: list with reason and conversation, inspect, requeue and delete (admin)."""

from __future__ import annotations

import json

from connector import queues
from connector.relay.drain import drain_thread
from connector.store import dead_letters, keys, threads
from connector.store.boxes import Box
from tests.operations.test_conversations import post_whatsapp


def dead_lettered_message(client, redis, wa_id="15551238001", text="Please call me") -> dead_letters.DeadLetter:
    """A customer message taken out of its inbox and dead-lettered, as the drain does on a
    permanent failure (same item bytes, same box)."""
    thread_id = post_whatsapp(client, wa_id, f"wamid.{wa_id}", text)
    item = redis.lpop(keys.inbox(thread_id))
    return dead_letters.add(redis, thread_id, Box.IN, item, "ECE refused start (400): entry point inactive", 4)


def test_the_list_shows_reason_conversation_box_and_attempts(operator, client, redis):
    letter = dead_lettered_message(client, redis)
    page = operator("viewer").get("/admin/dead-letters/").get_data(as_text=True)
    assert "ECE refused start (400): entry point inactive" in page
    assert f'href="/admin/conversations/{letter.thread}"' in page
    assert "inbox (from the customer)" in page and "<td>4</td>" in page
    assert "Requeue" not in page and "Delete" not in page, "a viewer gets no buttons"
    far = operator("viewer").get("/admin/dead-letters/?page=" + "9" * 30)
    assert far.status_code == 200 and "No dead letters" in far.get_data(as_text=True)


def test_inspect_shows_the_payload_as_pretty_json(operator, client, redis):
    letter = dead_lettered_message(client, redis)
    page = operator("viewer").get(f"/admin/dead-letters/{letter.id}").get_data(as_text=True)
    assert "&#34;text&#34;: &#34;Please call me&#34;" in page or '"text": "Please call me"' in page
    assert '\n  "channel": ' in page.replace("&#34;", '"'), "indented"
    assert operator("admin").get("/admin/dead-letters/nope").status_code == 404


def test_requeue_puts_the_item_back_wakes_a_worker_and_it_is_handled(operator, client, redis):
    letter = dead_lettered_message(client, redis)
    admin = operator("admin")
    answer = admin.post(f"/admin/dead-letters/{letter.id}/requeue", data={"csrf_token": admin.csrf})
    assert answer.status_code == 302
    assert dead_letters.get(redis, letter.id) is None
    assert redis.llen(keys.inbox(letter.thread)) == 1
    assert queues.queue(queues.INBOUND, redis).count == 1, "a dispatch job was queued"

    assert (
        drain_thread(letter.thread) == 2
    )  # the message, and the no_agents it brought: no agent is READY for TestRouter's queue
    [entry] = [e for e in threads.timeline(redis, letter.thread) if e.get("direction") == "in"]
    assert entry["text"] == "Please call me"
    assert "Requeued" in admin.get("/admin/dead-letters/").get_data(as_text=True)


def test_bulk_requeue_and_delete(operator, client, redis):
    first = dead_lettered_message(client, redis, "15551238002")
    second = dead_lettered_message(client, redis, "15551238003")
    third = dead_lettered_message(client, redis, "15551238004")
    admin = operator("admin")
    admin.post("/admin/dead-letters/requeue", data={"csrf_token": admin.csrf, "ids": [first.id, second.id]})
    assert [letter.id for letter in dead_letters.listing(redis)] == [third.id]
    assert redis.llen(keys.inbox(first.thread)) == redis.llen(keys.inbox(second.thread)) == 1

    admin.post(f"/admin/dead-letters/{third.id}/delete", data={"csrf_token": admin.csrf})
    assert dead_letters.listing(redis) == [] and redis.llen(keys.inbox(third.thread)) == 0
    gone = admin.post(f"/admin/dead-letters/{third.id}/delete", data={"csrf_token": admin.csrf}, follow_redirects=True)
    assert "gone already" in gone.get_data(as_text=True)


def test_only_an_admin_requeues_or_deletes_and_only_with_the_csrf_token(operator, client, redis):
    letter = dead_lettered_message(client, redis)
    for role in ("viewer", "editor"):
        user = operator(role)
        for action in ("requeue", "delete"):
            answer = user.post(f"/admin/dead-letters/{letter.id}/{action}", data={"csrf_token": user.csrf})
            assert answer.status_code == 403, (role, action)
    admin = operator("admin")
    assert admin.post(f"/admin/dead-letters/{letter.id}/requeue").status_code == 400, "no CSRF token"
    assert json.loads(redis.get(keys.dead_letter(letter.id)))["id"] == letter.id, "still there"
