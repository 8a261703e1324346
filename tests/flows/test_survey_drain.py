"""The post-chat survey in the drain: asked after the agent closes (an ECE `complete` callback, and a
Hybrid Chat agent's close), answered with a score and a comment, re-asked once, timed out, repeated
after a crash without asking twice; the results' records."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.backends import outbox
from connector.channels.base import thread_id_for
from connector.relay.drain import _handle_inbound, drain_thread
from connector.settings import Settings
from connector.store import keys, surveys, threads
from connector.store.boxes import Box, Boxes
from connector.store.effects import Effects
from connector.store.tallies import Tally
from tests.backends.hybrid.test_flow import DESK, customer_says, delivered, desk, provisioned
from tests.flows.drain import route_whatsapp_to_ece, settings_with_flows, whatsapp_says
from tests.helpers import WHATSAPP_ASSET

SURVEY = {
    "question": "survey_score",
    "retry": "survey_score_retry",
    "comment": "survey_comment",
    "thanks": "survey_thanks",
    "timeout_seconds": 600,
}
FLOWS = [
    {"name": "csat", "steps": [], "survey": SURVEY},
    {"name": "csat-choices", "steps": [], "survey": {"question": "survey_score", "choices": ["Bad", "OK", "Great"]}},
]


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return settings_with_flows(redis_url, tmp_path, FLOWS)


CUSTOMER = "15551238888"
THREAD = thread_id_for("whatsapp", WHATSAPP_ASSET, CUSTOMER)


def route_to_ece(runtime, base_url: str, flow: str = "csat") -> None:
    """The survey `flow` runs on the entry point, after the conversation there: the rule names none."""
    support = {"name": "Support", "id": "1001", "flow": flow}
    route_whatsapp_to_ece(runtime, base_url, rule="wa-ece", entry_points=[support])


def say(client, wamid: str, text: str, drain: bool = True) -> None:
    whatsapp_says(client, CUSTOMER, THREAD, wamid, text, drain=drain)


def ece_says(client, remote_id: str, *events: tuple[str, str]) -> None:
    """ECE's callback with (event id, type) events from agent Alice, then the drain."""
    batch = [
        {
            "id": event_id,
            "conversation": {"id": remote_id},
            "type": {"value": kind},
            "content": "",
            "sender": {"type": "user", "user": {"id": "1001", "name": "Alice"}},
            "timeStamp": 1_700_000_000_000,
        }
        for event_id, kind in events
    ]
    assert client.post("/ece/ECE/callback", json={"message": batch}).status_code == 200
    drain_thread(THREAD)


def sent(redis, thread_id: str = THREAD) -> list[str]:
    """The system and flow messages the outbox side handled, in order."""
    found: list[str] = []
    for entry in threads.timeline(redis, thread_id):
        if entry.get("kind") == "system":
            found.append(entry["message"])
        elif entry.get("system"):
            found += entry["system"]
    return found


def closed_by_alice(client, runtime, redis, base_url: str, flow: str = "csat") -> None:
    route_to_ece(runtime, base_url, flow)
    say(client, "wamid.S1", "hello, my order is late")
    remote = threads.load(redis, THREAD).remote_id
    assert remote
    ece_says(client, remote, ("e1", "assigned"), ("e2", "complete"))


def fire_survey_timers(runtime, redis) -> int:
    """Fire the scheduled survey timeouts now, as a worker's poll does when they come due."""
    fired = 0
    for timer in runtime.timers.pending():
        if timer.item["type"] == "survey_expired":
            outbox.timer_came_due(runtime, timer.thread_id, timer.item)
            runtime.timers.done(timer)
            fired += 1
    drain_thread(THREAD)
    return fired


def test_ece_close_asks_the_score_then_the_comment_and_keeps_both(client, runtime, redis, ece_simulator):
    simulator, base_url = ece_simulator
    closed_by_alice(client, runtime, redis, base_url)
    assert sent(redis)[-2:] == ["agent_closed", "survey_score"]
    thread = threads.load(redis, THREAD)
    assert thread.state.value == "closed" and thread.survey

    say(client, "wamid.S2", "4")
    say(client, "wamid.S3", "Quick and kind, thanks")
    assert sent(redis)[-2:] == ["survey_comment", "survey_thanks"]
    thread = threads.load(redis, THREAD)
    assert thread.survey is None and thread.state.value == "closed", "no new conversation was started"
    (conversation,) = simulator.model.conversations.values()
    assert not any("Quick and kind" in str(r) for r in conversation.received), "answers never reach ECE"

    record = surveys.get(redis, thread.conversation_id)
    assert record is not None
    assert (record.score, record.comment, record.status) == (4, "Quick and kind, thanks", "answered")
    assert (record.entry_point, record.integration, record.channel, record.agent) == (
        "Support",
        "ECE",
        "whatsapp",
        "Alice",
    )
    assert record.answered_at is not None and record.points == 5
    timeline = [e.get("survey") for e in threads.timeline(redis, THREAD) if e.get("survey")]
    assert timeline[0] == {"flow": "csat", "asked": "score"}
    assert timeline[1] == {"flow": "csat", "score": 4, "asked": "comment"}
    assert timeline[2] == {"flow": "csat", "comment": True, "outcome": "answered"}

    say(client, "wamid.S4", "hello again")
    thread = threads.load(redis, THREAD)
    assert thread.sequence == 2 and thread.state.value in ("new", "queued"), "after the survey: a new conversation"


def test_an_invalid_score_is_asked_again_once_and_a_second_one_starts_a_conversation(
    client, runtime, redis, ece_simulator
):
    _simulator, base_url = ece_simulator
    closed_by_alice(client, runtime, redis, base_url)
    say(client, "wamid.I1", "great")
    assert sent(redis)[-1] == "survey_score_retry"
    assert threads.load(redis, THREAD).sequence == 1
    say(client, "wamid.I2", "I have another question")
    thread = threads.load(redis, THREAD)
    assert thread.survey is None and thread.sequence == 2, "the message was no answer: it starts a conversation"
    record = surveys.get(redis, f"{THREAD}-1")
    assert record is not None and record.status == "invalid" and record.score is None


def test_invalid_then_valid_scores(client, runtime, redis, ece_simulator):
    _simulator, base_url = ece_simulator
    closed_by_alice(client, runtime, redis, base_url)
    say(client, "wamid.V1", "9")
    say(client, "wamid.V2", "5/5")
    record = surveys.get(redis, f"{THREAD}-1")
    assert record is not None and record.score == 5 and record.status == "asked", "the comment waits"


def test_choices_score_by_position(client, runtime, redis, ece_simulator):
    _simulator, base_url = ece_simulator
    closed_by_alice(client, runtime, redis, base_url, flow="csat-choices")
    say(client, "wamid.C1", "great")
    record = surveys.get(redis, f"{THREAD}-1")
    assert record is not None and (record.score, record.answer, record.points, record.status) == (
        3,
        "Great",
        3,
        "answered",
    )
    assert threads.load(redis, THREAD).survey is None


def test_the_timeout_ends_the_survey_unanswered(client, runtime, redis, ece_simulator):
    _simulator, base_url = ece_simulator
    closed_by_alice(client, runtime, redis, base_url)
    assert fire_survey_timers(runtime, redis) == 1
    thread = threads.load(redis, THREAD)
    assert thread.survey is None
    record = surveys.get(redis, thread.conversation_id)
    assert record is not None and record.status == "timed_out" and record.score is None
    say(client, "wamid.T1", "5")
    assert threads.load(redis, THREAD).sequence == 2, "a message after the timeout starts a new conversation"


def test_a_timer_of_an_answered_question_does_nothing(client, runtime, redis, ece_simulator):
    _simulator, base_url = ece_simulator
    closed_by_alice(client, runtime, redis, base_url)
    say(client, "wamid.A1", "2")
    assert fire_survey_timers(runtime, redis) == 2  # the score's (stale) and the comment's
    record = surveys.get(redis, f"{THREAD}-1")
    assert record is not None and (record.score, record.status, record.comment) == (2, "answered", None)


def test_a_repeated_answer_after_a_crash_asks_nothing_twice_and_counts_once(client, runtime, redis, ece_simulator):
    _simulator, base_url = ece_simulator
    closed_by_alice(client, runtime, redis, base_url)
    say(client, "wamid.R1", "3", drain=False)
    held = Boxes(redis).acquire(THREAD, 30)
    assert held is not None and held.heads[Box.IN] is not None
    _handle_inbound(runtime, held.heads[Box.IN], Effects(redis, Box.IN, THREAD), Tally())  # then "killed"
    redis.delete(keys.lease(THREAD))
    drain_thread(THREAD)
    assert sent(redis).count("survey_comment") == 1 and sent(redis).count("survey_score") == 1
    assert surveys.totals(redis) == {("ECE", "Support"): (1, 3)}


def test_a_customer_close_asks_no_survey(client, runtime, redis, ece_simulator):
    _simulator, base_url = ece_simulator
    route_to_ece(runtime, base_url)
    say(client, "wamid.N1", "hello")
    remote = threads.load(redis, THREAD).remote_id
    assert remote
    ece_says(client, remote, ("n1", "complete"))  # nobody was assigned: no agent to rate
    assert threads.load(redis, THREAD).survey is None and "survey_score" not in sent(redis)


@pytest.fixture
def survey_desk(runtime):
    integration = {**DESK, "entry_points": [{**DESK["entry_points"][0], "flow": "csat"}, DESK["entry_points"][1]]}
    yield from provisioned(runtime, integration)


def test_hybrid_chat_close_asks_the_survey_on_the_customers_app(client, runtime, redis, survey_desk):
    alice = desk(runtime, "alice")
    alice.set_state(True)
    thread_id = customer_says(client, "cust-s", "m-1", "Hello")
    drain_thread(thread_id, runtime)
    chat_id = threads.load(redis, thread_id).remote_id
    alice.accept(chat_id)
    drain_thread(thread_id, runtime)
    alice.close(chat_id, wrap_up="solved")
    drain_thread(thread_id, runtime)
    texts = [d.get("text") for d in delivered(survey_desk)]
    assert texts[-1] and "1 (poor) to 5" in texts[-1] and "Alice" in texts[-1]

    customer_says(client, "cust-s", "m-2", "5")
    drain_thread(thread_id, runtime)
    customer_says(client, "cust-s", "m-3", "all good")
    drain_thread(thread_id, runtime)
    assert delivered(survey_desk)[-1]["text"] == "Thank you for your feedback."
    record = surveys.get(redis, threads.load(redis, thread_id).conversation_id)
    assert record is not None
    assert (record.score, record.comment, record.integration, record.channel) == (5, "all good", "Desk", "inapp")
    assert alice.chat(chat_id)["state"] == "closed"
    assert [t.get("text") for t in alice.chat(chat_id)["transcript"] if t["from"] == "customer"] == ["Hello"]
