"""/api/v1/dead-letters: list, inspect, requeue and delete (admin only for the last two)."""

from __future__ import annotations

from connector.store import dead_letters, keys
from tests.admin.test_dead_letters_ui import dead_lettered_message


def test_list_and_inspect(api_client, client, redis):
    letter = dead_lettered_message(client, redis)
    api = api_client("viewer")
    page = api.get("/api/v1/dead-letters").get_json()
    assert page["total"] == 1 and not page["has_next"]
    [item] = page["items"]
    assert item["id"] == letter.id and item["box"] == "in" and item["attempts"] == 4
    assert item["conversation"]["customer"] == "15551238001"
    assert item["payload"]["text"] == "Please call me", "the payload, parsed"
    assert api.get(f"/api/v1/dead-letters/{letter.id}").get_json()["reason"].startswith("ECE refused start")
    assert api.get("/api/v1/dead-letters/nope").status_code == 404


def test_requeue_puts_the_item_back(api_client, client, redis):
    letter = dead_lettered_message(client, redis)
    answer = api_client("admin").post(f"/api/v1/dead-letters/{letter.id}/requeue")
    assert answer.status_code == 200
    assert answer.get_json() == {"id": letter.id, "thread": letter.thread, "box": "in", "requeued": True}
    assert dead_letters.get(redis, letter.id) is None and redis.llen(keys.inbox(letter.thread)) == 1
    assert api_client("admin").post(f"/api/v1/dead-letters/{letter.id}/requeue").status_code == 404


def test_delete(api_client, client, redis):
    letter = dead_lettered_message(client, redis)
    api = api_client("admin")
    assert api.delete(f"/api/v1/dead-letters/{letter.id}").status_code == 204
    assert dead_letters.get(redis, letter.id) is None
    assert api.delete(f"/api/v1/dead-letters/{letter.id}").status_code == 404


def test_only_an_admin_requeues_or_deletes(api_client, client, redis):
    letter = dead_lettered_message(client, redis)
    for role in ("viewer", "editor"):
        api = api_client(role)
        assert api.post(f"/api/v1/dead-letters/{letter.id}/requeue").status_code == 403, role
        assert api.delete(f"/api/v1/dead-letters/{letter.id}").status_code == 403, role
    assert dead_letters.get(redis, letter.id) is not None
