"""GET /api/v1/conversations (filters, paging) and /api/v1/conversations/<id> (timeline, pending)."""

from __future__ import annotations

from connector.relay.drain import drain_thread
from tests.operations.test_conversations import post_whatsapp, seed, write_thread


def test_the_list_pages_newest_first(api_client, redis):
    seed(redis, 30)
    api = api_client("viewer")
    first = api.get("/api/v1/conversations?per_page=20").get_json()
    assert [c["id"] for c in first["items"]][:2] == ["t00029", "t00028"]
    assert (len(first["items"]), first["has_next"], first["total"]) == (20, True, 30)
    second = api.get("/api/v1/conversations?per_page=20&page=2").get_json()
    assert len(second["items"]) == 10 and not second["has_next"]
    row = first["items"][0]
    assert row["channel"] == "sms" and row["state"] == "closed" and row["entry_point"] == "Support"


def test_filters_by_channel_entry_point_state_and_agent(api_client, redis):
    seed(redis, 60)
    api = api_client("viewer")

    def ids(query: str) -> list[str]:
        return [c["id"] for c in api.get(f"/api/v1/conversations?per_page=200&{query}").get_json()["items"]]

    assert ids("channel=sms") == [f"t{i:05d}" for i in reversed(range(60)) if i % 2]
    assert ids("entry_point=TestRouter/Sales") == [f"t{i:05d}" for i in reversed(range(60)) if i % 5 == 0]
    assert ids("state=active&agent=Agent%206") == [
        f"t{i:05d}" for i in reversed(range(60)) if i % 3 == 0 and i % 7 == 6
    ]


def test_search_dates_and_the_count_as_in_the_ui(api_client, redis):
    seed(redis, 30, first_text="Where is my parcel?")  # activity 1000..1029: 1970-01-01, UTC
    write_thread(redis, "late", 86_400 * 3, channel="sms", customer="+15559990000", details={"name": "Ann Lee"})
    api = api_client("viewer")
    body = api.get("/api/v1/conversations?q=PARCEL&state=closed&to=1970-01-01&per_page=8&page=2").get_json()
    assert (body["matched"], body["pages"], body["page"], body["has_next"], body["total"]) == (20, 3, 2, True, 31)
    assert len(body["items"]) == 8 and body["items"][0]["first_text"] == "Where is my parcel?"
    ann = api.get("/api/v1/conversations?q=ann%20lee&from=1970-01-04&to=1970-01-04").get_json()
    assert [c["id"] for c in ann["items"]] == ["late"] and ann["items"][0]["customer_name"] == "Ann Lee"
    beyond = api.get("/api/v1/conversations?page=9").get_json()
    assert (beyond["items"], beyond["page"], beyond["pages"], beyond["has_next"]) == ([], 9, 1, False)


def test_the_filters_are_in_the_openapi_schema(api_client):
    spec = api_client("viewer").get("/api/v1/openapi.json").get_json()
    listing = spec["paths"]["/api/v1/conversations"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert {"q", "state", "entry_point", "agent", "channel", "from", "to", "page", "per_page"} <= set(params)
    assert params["from"]["schema"]["format"] == "date" and "UTC" in params["from"]["description"]
    assert "first message" in params["q"]["description"]


def test_bad_query_values_are_422_naming_the_field(api_client):
    api = api_client("viewer")
    for query, field in (
        ("state=bogus", "state"),
        ("channel=fax", "channel"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("per_page=x", "per_page"),
        ("from=2026-02-30", "from"),
        ("to=yesterday", "to"),
        ("from=2026-03-02&to=2026-03-01", "from"),
        ("q=" + "x" * 201, "q"),
    ):
        answer = api.get(f"/api/v1/conversations?{query}")
        assert answer.status_code == 422, query
        assert field in answer.get_json()["errors"]["query"], query


def test_one_conversation_with_timeline_and_pending(api_client, client, redis):
    thread_id = post_whatsapp(client, "15551237001", "wamid.A7", "first")
    drain_thread(thread_id)
    post_whatsapp(client, "15551237001", "wamid.A8", "second, not drained")
    answer = api_client("viewer").get(f"/api/v1/conversations/{thread_id}")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["conversation"]["customer"] == "15551237001"
    assert body["conversation"]["customer_name"] == "Customer 15551237001"
    assert body["conversation"]["first_text"] == "first"
    # no agent is READY for TestRouter's queue: the customer was told so (unavailable)
    assert body["conversation"]["state"] == "unavailable" and body["conversation"]["rule"] == "whatsapp"
    assert [e.get("text") for e in body["timeline"] if e.get("direction") == "in"] == ["first"]
    assert (
        body["pending"]["inbox"]["length"] == 1
        and body["pending"]["inbox"]["items"][0]["text"] == "second, not drained"
    )
    assert body["pending"]["stuck_reason"]


def test_an_unknown_conversation_is_404_and_a_login_is_needed(api_client, client):
    assert api_client("viewer").get("/api/v1/conversations/nope").status_code == 404
    assert client.get("/api/v1/conversations").status_code == 401
