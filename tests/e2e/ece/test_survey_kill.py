"""The post-chat survey on real processes with kill -9 (docs/flows.md, "Post-chat survey").

Its place is the thread's `survey` field, moved in the drain under the lease and written by the
commit that takes the customer's message out of the inbox; its result record is rewritten whole.
So a worker killed while a survey question waits leaves the customer's answer in the inbox for the
next worker, and a worker killed in the middle of a survey answer (here: the message that ends the
survey and starts a new chat, killed inside ECE's start, which the ECE simulator holds) makes the
next worker repeat that answer from the same place: no survey question is asked twice, the score is
counted once, the message reaches the agent once.
"""

from __future__ import annotations

import pytest

from connector.store import keys, surveys, threads
from tests.e2e.stack import ASSETS, CUSTOMERS, Stack, settle
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

FAST_LEASE = {
    "CONNECTOR_LEASE_SECONDS": "2",
    "CONNECTOR_SWEEP_INTERVAL_SECONDS": "0.5",
    "CONNECTOR_WAKE_TTL_SECONDS": "2",
}
CSAT = {
    "name": "csat",
    "steps": [],
    "survey": {
        "question": "survey_score",
        "retry": "survey_score_retry",
        "comment": "survey_comment",
        "thanks": "survey_thanks",
        "timeout_seconds": 600,
    },
}
SCORE_QUESTION = "How would you rate your chat with Alice?"
RETRY = "Please reply with one number from 1 to 5."
COMMENT_QUESTION = "Anything you would like to add?"
THANKS = "Thank you for your feedback."
FIRST = "Hello, my order is late"


def surveyed_stack(stack_factory) -> Stack:
    """SMS to Support, whose flow is only the survey; Alice chats with the customer and closes."""
    stack: Stack = stack_factory(flows=[CSAT], worker_env=FAST_LEASE, support={"flow": "csat"})
    stack.customer.send_text(ASSETS["sms"], CUSTOMERS["sms"], FIRST)
    conversation = stack.wait_conversation()
    stack.wait_received(conversation, 1)
    stack.ece.model.assign(conversation.id, "1001", "Alice")
    stack.wait_text("sms", "You are now chatting with Alice")
    stack.ece.model.complete(conversation.id)
    stack.wait_text("sms", SCORE_QUESTION)
    return stack


def count(stack: Stack, needle: str) -> int:
    return sum(needle in (s.get("text") or "") for s in stack.sent("sms"))


def sent_and_committed(stack: Stack) -> None:
    """Wait until every outbox is empty and its lease released: the question the simulator shows is
    also committed. A kill between a provider's acceptance and that commit makes the next worker send
    it again (an SMS send has no idempotency key: README, "Idempotent effects"), which is not the case
    these tests kill in. Nor is a kill between the commit and the lease's release, after which the
    next worker waits out the lease (30 s) before the answer is handled."""
    redis = stack.runtime.redis

    def empty() -> bool:
        threads = [member.decode() for member in redis.smembers(keys.active_inboxes())]
        return all(redis.llen(keys.outbox(t)) == 0 and not redis.exists(keys.lease(t)) for t in threads)

    wait_for(empty, timeout=10, what="the sent question committed and its lease released")


def restart(stack: Stack) -> None:
    sent_and_committed(stack)
    stack.workers[0].kill()
    stack.workers.pop(0)
    stack.add_worker()


def record(stack: Stack) -> surveys.SurveyRecord | None:
    """The one survey record of the test (None unless exactly one was written)."""
    found = list(surveys.between(stack.runtime.redis, None, None))
    return found[0] if len(found) == 1 else None


def test_kill_9_while_the_score_question_waits_loses_no_answer_and_counts_the_score_once(stack_factory) -> None:
    stack = surveyed_stack(stack_factory)
    sent_and_committed(stack)
    stack.workers[0].kill()  # kill -9 while the question waits: the answer arrives with no worker
    stack.workers.pop(0)
    stack.customer.send_text(ASSETS["sms"], CUSTOMERS["sms"], "4")
    stack.add_worker()
    stack.wait_text("sms", COMMENT_QUESTION, timeout=20)
    restart(stack)  # and again while the comment question waits
    stack.customer.send_text(ASSETS["sms"], CUSTOMERS["sms"], "Quick and kind")
    stack.wait_text("sms", THANKS, timeout=20)
    settle(1.0)  # a repeated question, if any, would land now

    assert [count(stack, t) for t in (SCORE_QUESTION, COMMENT_QUESTION, THANKS)] == [1, 1, 1], "each once"
    found = record(stack)
    assert found is not None
    assert (found.status, found.score, found.comment, found.agent) == ("answered", 4, "Quick and kind", "Alice")
    assert surveys.totals(stack.runtime.redis) == {("E2E", "Support"): (1, 4)}, "the score counted once"
    (conversation,) = stack.conversations()
    assert [r.content for r in conversation.received] == [FIRST], "survey answers never reach the agent"


def test_kill_9_inside_the_start_that_ends_the_survey_repeats_it_from_the_same_place(stack_factory) -> None:
    """Two invalid scores end the survey (`invalid`) and the second message starts a new chat: the
    worker dies inside that ECE start, after the survey's record was written and before the commit."""
    stack = surveyed_stack(stack_factory)
    sms, customer = ASSETS["sms"], CUSTOMERS["sms"]
    stack.customer.send_text(sms, customer, "great")
    stack.wait_text("sms", RETRY)
    hold = stack.ece.model.holds.hold_next("start")
    stack.customer.send_text(sms, customer, "Actually, where is my refund?")
    assert hold.wait_held(15), "the new chat's start reached ECE"
    stack.workers[0].kill()
    stack.workers.pop(0)
    hold.release()  # ECE completes the start the dead worker asked for
    stack.add_worker()
    wait_for(
        lambda: any(r.content == "Actually, where is my refund?" for c in stack.conversations() for r in c.received),
        timeout=20,
        what="the message to reach ECE's new chat",
    )
    stack.wait_text("sms", "Thank you for contacting us", timeout=10)
    settle(1.0)

    assert [count(stack, t) for t in (SCORE_QUESTION, RETRY)] == [1, 1], "no survey question twice"
    assert count(stack, THANKS) == 0
    first, second = sorted(stack.conversations(), key=lambda c: c.started_at)
    assert [r.content for r in first.received] == [FIRST]
    assert [r.content for r in second.received] == ["Actually, where is my refund?"], "once, in the new chat"
    assert len(stack.conversations()) == 2, "the repeat adopted the start: one new chat"
    found = record(stack)
    assert found is not None and (found.status, found.score) == ("invalid", None)
    assert surveys.totals(stack.runtime.redis) == {}, "no score counted"
    thread = threads.load(stack.runtime.redis, found.thread)
    assert thread.survey is None and thread.sequence == 2
