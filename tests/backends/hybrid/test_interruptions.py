"""A voice call holds an agent from chat (media blending sets the router's flag); their desktop hears
when the hold begins and ends, once, whichever worker ticks first."""

from __future__ import annotations

from connector.backends.hybrid import stream
from connector.backends.hybrid.router import announce_interruptions
from connector.store import keys


def told(redis, agent: str) -> list[tuple[str, str]]:
    found, _ = stream.read(redis, agent, "0-0", 0)
    return [(event["chat_state"], event["reason"]) for _id, event in found if event["type"] == "state_changed"]


def test_a_call_starting_and_ending_is_announced_once(redis):
    redis.hset(keys.hybrid_agent("1001"), mapping={"state": "READY"})
    redis.sadd(keys.chat_interrupted(), "1001")
    assert announce_interruptions(redis) == set()
    assert announce_interruptions(redis) == set(), "a second worker's tick announces nothing again"
    assert told(redis, "1001") == [("INTERRUPTED", "voice call")]

    redis.srem(keys.chat_interrupted(), "1001")
    assert announce_interruptions(redis) == {"1001"}, "released: the router may offer again"
    assert announce_interruptions(redis) == set()
    assert told(redis, "1001") == [("INTERRUPTED", "voice call"), ("READY", "voice call ended")]
