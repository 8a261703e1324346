"""Many conversations talking both ways on the simulators' stack (tests/e2e/stack.py), and the check
of what arrived, read from the far sides' own records: the ECE simulator's deliveries and the
provider simulators' sends. Used by the kill -9 and Redis SIGKILL tests: delivery, not draining.

Each conversation has a tag (`sm0`, `wh2`, ...): its customer writes `"<tag> c<k>"`, its agent
`"<tag> a<k>"`, so any record names its conversation and its place in it.

A kill can land inside a call to ECE or a provider: the far side completes it, the worker never
records it, and the next lease holder repeats it. docs/architecture.md ("Idempotent effects") says
what that costs: ECE's message call and the Twilio / Meta sends take no idempotency key, so the far
side sees that one item twice, back to back; Apple and in-app drop the repeat by its id; an ECE start
is adopted by its reference. `check` holds the run to exactly that and nothing more.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from redis import Redis

from connector.store import keys
from tests.e2e.stack import ASSETS, Stack
from tests.helpers import wait_for

FAST_LEASE = {
    "CONNECTOR_LEASE_SECONDS": "2",
    "CONNECTOR_SWEEP_INTERVAL_SECONDS": "0.5",
    "CONNECTOR_WAKE_TTL_SECONDS": "2",
}
"""A dead worker's leases lapse in 2 s, and a sweep finds their threads within 0.5 s more."""
IDEMPOTENT_SENDS = frozenset({"apple", "inapp"})
"""Channels whose send carries an id the receiver dedupes on: a repeat never shows twice."""
WELCOME = "Thank you for contacting us"
JOINED = "You are now chatting with Alice"
ITEM = re.compile(r"\b([a-z]{2}\d+) ([ca])(\d+)\b")


def customer_address(channel: str, n: int) -> str:
    return {
        "sms": f"+1555666{n:04d}",
        "messenger": f"71000000{n:08d}",
        "whatsapp": f"1555666{n:04d}",
        "apple": f"urn:mbid:AQAAY2UtZTJlLWtpbGwt{n:04d}",
        "inapp": f"app-user-k{n:03d}",
    }[channel]


@dataclass
class Chat:
    channel: str
    customer: str
    tag: str
    conversation_id: str = ""


@dataclass
class Traffic:
    """The conversations and what each side was told to send (all acknowledged by the connector)."""

    chats: list[Chat]
    per_side: int = 0

    @property
    def total(self) -> int:
        return 2 * self.per_side * len(self.chats)


def open_chats(stack: Stack, per_channel: int) -> Traffic:
    """`per_channel` customers on each channel write; ECE starts their conversations and Alice takes
    each; returns once every customer has the welcome and the "now chatting" notice."""
    chats = [
        Chat(channel, customer_address(channel, n), f"{channel[:2]}{n}")
        for n in range(per_channel)
        for channel in ASSETS
    ]
    for chat in chats:
        stack.customer.send_text(ASSETS[chat.channel], chat.customer, f"{chat.tag} hello")

    def started() -> bool:
        for conversation in stack.conversations():
            first = next((r.content for r in list(conversation.received) if r.kind == "message"), None)
            for chat in chats:
                if first == f"{chat.tag} hello":
                    chat.conversation_id = conversation.id
        return all(chat.conversation_id for chat in chats)

    wait_for(started, timeout=30, what="every conversation started on ECE with its first message")
    for chat in chats:
        stack.ece.model.assign(chat.conversation_id, "1001", "Alice")
    for chat in chats:
        wait_for(
            lambda chat=chat: texts_to(stack, chat, JOINED), timeout=30, what=f"{chat.tag}: the agent joined notice"
        )
    return Traffic(chats)


def texts_to(stack: Stack, chat: Chat, needle: str) -> list[str]:
    return [s["text"] for s in stack.providers.store.sent(chat.channel, chat.customer) if needle in (s["text"] or "")]


def send_both_ways(stack: Stack, traffic: Traffic, per_side: int) -> None:
    """Each customer writes `per_side` messages and Alice as many in each conversation, interleaved;
    returns once the connector acknowledged every one (webhooks answered 200, ECE's callback batches
    answered 2xx)."""
    traffic.per_side = per_side
    for k in range(per_side):
        for chat in traffic.chats:
            stack.customer.send_text(ASSETS[chat.channel], chat.customer, f"{chat.tag} c{k}")  # raises unless 200
            stack.ece.model.say(chat.conversation_id, f"{chat.tag} a{k}")
    assert stack.ece.emitter.wait_idle(20), "ECE's callbacks were acknowledged"


@dataclass(frozen=True)
class Record:
    tag: str
    side: str  # "c": the customer's message as ECE received it; "a": the agent's as the customer got it
    n: int
    at: float


def records(stack: Stack) -> list[Record]:
    """Every tagged item the far sides recorded: ECE deliveries and provider sends."""
    found: list[Record] = []
    for conversation in stack.conversations():
        for received in list(conversation.received):
            if received.kind == "message" and (match := ITEM.search(received.content or "")):
                found.append(Record(match[1], match[2], int(match[3]), received.received_at))
    for sent in stack.providers.store.sent():
        if match := ITEM.search(sent["text"] or ""):
            found.append(Record(match[1], match[2], int(match[3]), sent["at"]))
    return found


def delivered(stack: Stack) -> int:
    """Distinct tagged items that reached their far side."""
    return len({(r.tag, r.side, r.n) for r in records(stack)})


def leases_held(redis: Redis) -> dict[str, float]:
    """Thread id → seconds its lease has left, for every lease held now."""
    held = {}
    for key in redis.scan_iter(match=keys.lease("*")):
        ttl = redis.pttl(key)
        if ttl > 0:
            held[key.decode().rsplit(":", 1)[1]] = ttl / 1000
    return held


def wait_mid_drain(stack: Stack, traffic: Traffic, share: float = 0.25) -> int:
    """Wait until `share` of the items reached their far side; returns how many had (less than all)."""
    wait_for(lambda: delivered(stack) >= traffic.total * share, timeout=30, interval=0.005, what="the drain under way")
    done = delivered(stack)
    assert done < traffic.total, f"the drain had finished ({done} items) before the fault: slow the simulators down"
    return done


def wait_all_delivered(stack: Stack, traffic: Traffic, timeout: float = 30) -> None:
    wait_for(lambda: delivered(stack) >= traffic.total, timeout=timeout, what=f"all {traffic.total} items delivered")
    time.sleep(0.5)  # a late duplicate, if any, would land now


def check(stack: Stack, traffic: Traffic, fault_at: float, fault_until: float) -> list[str]:
    """Every item reached its far side, in order per conversation and side; an item shows twice only
    as the documented crash window allows: back to back, its first copy made before the fault ended
    (`fault_until`: the worker restarted or Redis came back), at most once per conversation and side,
    never on Apple / in-app sends. Returns the duplicates it allowed, one line each (for the report)."""
    by_stream: dict[tuple[str, str], list[Record]] = {}
    for record in sorted(records(stack), key=lambda r: r.at):
        by_stream.setdefault((record.tag, record.side), []).append(record)
    channel_of = {chat.tag: chat.channel for chat in traffic.chats}
    allowed: list[str] = []
    problems: list[str] = []
    for chat in traffic.chats:
        for side in ("c", "a"):
            stream = by_stream.get((chat.tag, side), [])
            numbers = [r.n for r in stream]
            collapsed = [n for i, n in enumerate(numbers) if i == 0 or numbers[i - 1] != n]
            if collapsed != list(range(traffic.per_side)):
                problems.append(f"{chat.tag}/{side}: lost or out of order: {numbers}")
                continue
            repeats = [i for i in range(1, len(stream)) if stream[i].n == stream[i - 1].n]
            where = "ECE" if side == "c" else chat.channel
            for i in repeats:
                first = stream[i - 1]
                if side == "a" and channel_of[chat.tag] in IDEMPOTENT_SENDS:
                    problems.append(f"{chat.tag}/{side}{first.n}: twice on {where}, whose sends are idempotent")
                elif not fault_at - 1.0 <= first.at <= fault_until:
                    problems.append(f"{chat.tag}/{side}{first.n}: twice on {where}, the first copy outside the fault")
                else:
                    allowed.append(
                        f"{chat.tag} {side}{first.n} twice on {where}: at {first.at - fault_at:+.2f} s and "
                        f"{stream[i].at - fault_at:+.2f} s from the fault (a call in flight then)"
                    )
            if len(repeats) > 1:
                problems.append(f"{chat.tag}/{side}: {len(repeats)} repeats; one call per stream can be in flight")
    assert not problems, "\n".join(problems)
    return allowed


def check_conversations_and_notices(stack: Stack, traffic: Traffic) -> None:
    """One ECE conversation per customer (a repeated start is adopted), each system notice once."""
    assert len(stack.conversations()) == len(traffic.chats), "one ECE conversation per customer"
    for chat in traffic.chats:
        assert len(texts_to(stack, chat, WELCOME)) == 1, f"{chat.tag}: welcomed once"
        assert len(texts_to(stack, chat, JOINED)) == 1, f"{chat.tag}: told once that Alice joined"


def check_boxes_empty(redis: Redis) -> None:
    """Nothing left in any inbox or outbox."""
    left = [k.decode() for pattern in (keys.inbox("*"), keys.outbox("*")) for k in redis.scan_iter(match=pattern)]
    left = [k for k in left if redis.llen(k)]
    assert not left, f"items left behind in {left}"
