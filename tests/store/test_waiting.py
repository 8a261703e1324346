"""A customer's place in the queue (store/waiting.py): the drain's commit keeps each thread in its
entry point's waiting set exactly while the thread is queued, in the same atomic step as its state."""

from __future__ import annotations

from connector.conversations import State
from connector.store import keys, waiting
from connector.store.boxes import Box, Boxes
from connector.store.threads import Thread, fields_of


def commit_state(boxes: Boxes, thread: Thread, state: State, queued_at: float | None = None) -> None:
    boxes.append(Box.IN, thread.id, f"item-{state.value}", keys.dedupe("t", thread.id, state.value), 60)
    held = boxes.acquire(thread.id, 30)
    assert held is not None
    thread.state, thread.queued_at = state, queued_at
    boxes.commit(thread.id, held.token, f"item-{state.value}".encode(), {"kind": "x"}, fields_of(thread))
    boxes.release(thread.id, held.token)


def test_a_thread_waits_in_its_entry_points_set_while_queued_and_leaves_it_after(redis):
    boxes = Boxes(redis)
    first = Thread("t1", integration="ECE", entry_point="Support")
    second = Thread("t2", integration="ECE", entry_point="Support")
    elsewhere = Thread("t3", integration="ECE", entry_point="Sales")
    commit_state(boxes, second, State.QUEUED, queued_at=200.0)
    commit_state(boxes, first, State.QUEUED, queued_at=100.0)
    commit_state(boxes, elsewhere, State.QUEUED, queued_at=50.0)

    assert waiting.position(redis, "ECE", "Support", "t1") == 1, "queued first: next"
    assert waiting.position(redis, "ECE", "Support", "t2") == 2
    assert waiting.position(redis, "ECE", "Sales", "t3") == 1, "each entry point has its own queue"

    commit_state(boxes, first, State.ASSIGNED)
    assert waiting.position(redis, "ECE", "Support", "t1") is None, "an agent took it: no longer waiting"
    assert waiting.position(redis, "ECE", "Support", "t2") == 1, "the next one moved up"
    commit_state(boxes, second, State.CLOSED)
    assert waiting.count(redis, "ECE", "Support") == 0


def test_a_commit_that_leaves_the_thread_as_it_was_keeps_its_place(redis):
    boxes = Boxes(redis)
    thread = Thread("t1", integration="ECE", entry_point="Support")
    commit_state(boxes, thread, State.QUEUED, queued_at=100.0)
    boxes.append(Box.OUT, "t1", "dead-lettered", keys.dedupe("t", "t1", "dl"), 60)
    held = boxes.acquire("t1", 30)
    assert held is not None
    boxes.commit("t1", held.token, b"dead-lettered", {"kind": "dead_letter"}, None, box=Box.OUT)
    assert waiting.position(redis, "ECE", "Support", "t1") == 1
