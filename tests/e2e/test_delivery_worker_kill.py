"""A worker killed with SIGKILL while it holds leases mid-drain, on the ECE and provider simulators:
every customer message reaches ECE and every agent message reaches the customer, in order per
conversation, once (but for the documented crash window, tests/e2e/delivery.py), and nobody takes a
dead worker's conversation before its lease lapses.

Fifteen conversations, three on each channel, each with customer and agent writing at once; ECE and
the providers answer in 30 ms, so the drain is still under way when the worker dies.
"""

from __future__ import annotations

import time

from connector.channels.base import thread_id_for
from tests.e2e.delivery import (
    FAST_LEASE,
    check,
    check_boxes_empty,
    check_conversations_and_notices,
    leases_held,
    open_chats,
    records,
    send_both_ways,
    wait_all_delivered,
    wait_mid_drain,
)
from tests.e2e.stack import ASSETS

PER_CHANNEL = 3
PER_SIDE = 8
ANSWER_SECONDS = 0.03


def test_worker_killed_holding_leases_mid_drain_every_message_arrives_in_order_once(stack_factory, redis) -> None:
    stack = stack_factory(worker_env=FAST_LEASE, ece_threads=32, sandbox_threads=32)
    traffic = open_chats(stack, PER_CHANNEL)
    stack.ece.model.set_answer_delay(ANSWER_SECONDS)
    stack.providers.set_delay(None, ANSWER_SECONDS)

    send_both_ways(stack, traffic, PER_SIDE)
    done_before = wait_mid_drain(stack, traffic)
    held = leases_held(redis)
    stack.workers[0].kill()
    killed_at = time.time()
    assert held, "the worker held leases when it died"
    left = leases_held(redis)
    assert left, "the dead worker's leases outlive it"

    stack.add_worker()
    restarted_at = time.time()
    wait_all_delivered(stack, traffic)

    duplicates = check(stack, traffic, killed_at, restarted_at)
    check_conversations_and_notices(stack, traffic)
    check_boxes_empty(redis)
    print(f"{done_before} of {traffic.total} delivered before the kill; allowed repeats: {duplicates or 'none'}")

    # The dead worker's conversations waited for their leases: nothing of theirs reached a far side
    # after its last calls in flight (one answer time) and before the lease lapsed.
    thread_of = {thread_id_for(c.channel, ASSETS[c.channel], c.customer): c.tag for c in traffic.chats}
    waited = {thread_of[t]: killed_at + ttl for t, ttl in left.items() if t in thread_of}
    assert waited, "the dead worker's leases were on the test's conversations"
    early = [
        r for r in records(stack) if r.tag in waited and killed_at + 10 * ANSWER_SECONDS < r.at < waited[r.tag] - 0.05
    ]
    assert not early, f"taken before the dead worker's lease lapsed: {early}"
