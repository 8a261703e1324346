"""Survey results read back: `/api/v1/surveys` with its filters, `/metrics`' survey families, and the
overview's CSAT card and table. Records are written by the store's own `save`, as the drain does
(tests/flows/test_survey_drain.py covers how they come to be)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.store import surveys

NOW = time.time()
DAY = 86400.0


def record(
    conversation: str,
    score: int | None,
    *,
    entry_point: str = "Support",
    agent: str = "Alice",
    channel: str = "sms",
    at: float = NOW,
    status: str = "answered",
    comment: str | None = None,
) -> surveys.SurveyRecord:
    return surveys.SurveyRecord(
        conversation=conversation,
        thread=conversation.rsplit("-", 1)[0],
        flow="csat",
        integration="ECE",
        entry_point=entry_point,
        channel=channel,
        asset="a",
        agent=agent,
        agent_id=None,
        status=status,
        points=5,
        asked_at=at - 60,
        score=score,
        comment=comment,
        answered_at=at if score is not None else None,
        ended_at=at,
    )


@pytest.fixture
def stored(redis):
    for item in (
        record("t1-1", 5, comment="great"),
        record("t2-1", 2, entry_point="Billing", agent="Bob", channel="whatsapp", at=NOW - 2 * DAY),
        record("t3-1", 4, at=NOW - 3600),
        record("t4-1", None, status="timed_out", at=NOW - 10 * DAY),
    ):
        surveys.save(redis, item, None)


def items(answer) -> list[str]:
    assert answer.status_code == 200, answer.get_json()
    return [i["conversation"] for i in answer.get_json()["items"]]


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def test_all_results_newest_first_with_their_fields(api_client, stored):
    answer = api_client("viewer").get("/api/v1/surveys")
    assert items(answer) == ["t1-1", "t3-1", "t2-1", "t4-1"]
    body = answer.get_json()
    assert body["total"] == 4 and body["average"] == pytest.approx(11 / 3)
    first = body["items"][0]
    assert (first["score"], first["comment"], first["entry_point"], first["agent"], first["status"]) == (
        5,
        "great",
        "Support",
        "Alice",
        "answered",
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("entry_point=Billing", ["t2-1"]),
        ("agent=Alice", ["t1-1", "t3-1", "t4-1"]),
        ("channel=whatsapp", ["t2-1"]),
        ("score=4", ["t3-1"]),
        ("status=timed_out", ["t4-1"]),
    ],
)
def test_filters(api_client, stored, query, expected):
    assert items(api_client("viewer").get(f"/api/v1/surveys?{query}")) == expected


def test_date_range_and_pages(api_client, stored):
    client = api_client("viewer")
    since = iso(NOW - 3 * DAY).replace("+", "%2B")
    until = iso(NOW - DAY).replace("+", "%2B")
    assert items(client.get(f"/api/v1/surveys?since={since}&until={until}")) == ["t2-1"]
    first = client.get("/api/v1/surveys?per_page=3").get_json()
    assert first["has_next"] and len(first["items"]) == 3
    second = client.get("/api/v1/surveys?per_page=3&page=2").get_json()
    assert [i["conversation"] for i in second["items"]] == ["t4-1"] and not second["has_next"]


def test_unknown_and_bad_parameters_are_refused(api_client, stored):
    client = api_client("viewer")
    assert client.get("/api/v1/surveys?scor=4").status_code == 400
    assert client.get("/api/v1/surveys?score=11").status_code == 422
    assert client.get("/api/v1/surveys?since=yesterday").status_code == 422


def test_the_openapi_document_describes_the_endpoint(api_client):
    spec = api_client("viewer").get("/api/v1/openapi.json").get_json()
    parameters = {p["name"] for p in spec["paths"]["/api/v1/surveys"]["get"]["parameters"]}
    assert {"since", "until", "entry_point", "agent", "channel", "score", "page", "per_page"} <= parameters


def test_metrics_give_responses_and_the_average_per_entry_point(client, redis, stored):
    surveys.save(redis, record("t1-1", 5, comment="great"), surveys.get(redis, "t1-1"))  # a repeat counts nothing
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    average = {s.labels["entry_point"]: s.value for s in families["connector_survey_average_score"].samples}
    responses = {
        s.labels["entry_point"]: s.value
        for s in families["connector_survey_responses"].samples
        if s.name == "connector_survey_responses_total"
    }
    assert average == {"Support": 4.5, "Billing": 2.0}
    assert responses == {"Support": 2.0, "Billing": 1.0}


def cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", html, re.S)]


def test_the_overview_shows_csat_with_a_table_per_day(operator, stored):
    page = operator("viewer").get("/admin/").get_data(as_text=True)
    # The last 7 days: 5, 4 and 2; satisfied (4 or 5 of 5): two of three.
    assert "<strong>66.7 %</strong> satisfied, 3 answers (last 7 days); average score <strong>3.67</strong>" in page
    table = re.search(r'<table id="csat-days">(.*?)</table>', page, re.S)
    assert table
    rows = cells(table[1])
    today = datetime.fromtimestamp(NOW, UTC).strftime("%Y-%m-%d")
    assert rows[:4] == ["Day (UTC)", "Answers", "Average", "Satisfied"]
    assert len(rows) == 4 + 7 * 4, "one row per day of the week"
    two_ago = datetime.fromtimestamp(NOW - 2 * DAY, UTC).strftime("%Y-%m-%d")
    assert rows[4] == today and rows[5] in ("1", "2")  # t3 is an hour old: today or, just after midnight, yesterday
    assert [two_ago, "1", "2.0", "0.0 %"] == rows[4 + 2 * 4 : 4 + 3 * 4]
    assert 'id="csat-data"' in page and 'data-chart="csat"' in page


def test_the_overview_says_not_measured_without_answers(operator):
    page = operator("viewer").get("/admin/").get_data(as_text=True)
    assert "Not measured: no post-chat survey was answered" in page
