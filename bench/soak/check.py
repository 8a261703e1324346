"""The end-of-run accounting, from the records of the systems at each end: what the ECE simulator
received and what Hybrid Chat's transcripts hold (customer → contact center), what the provider
simulators accepted (agents and the connector's system messages → customer), and what Redis still
holds (inboxes, outboxes, retry state, dead letters).

A message counts as expected once the connector acknowledged it (the webhook's 200; for an agent's
message, ECE's or the agent API's answer). Lost: expected and never arrived. Duplicated: arrived more
than once. Reordered: arrived before an earlier message of its conversation, although each message
was sent only after the one before it was acknowledged.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import redis as redis_lib

from bench.soak.faults import FaultRecord
from bench.soak.load import PNG, Conversation, Load, Message
from bench.soak.stack import SoakStack
from connector.backends.hybrid import transcript
from connector.channels.base import thread_id_for
from connector.store import dead_letters, keys, replies, threads

IN_TEXT = re.compile(r"^soak c(\d+) m(\d+)$")
IN_FILE = re.compile(r"^soak-c(\d+)-m(\d+)\.png$")
OUT_TEXT = re.compile(r"^soak c(\d+) a(\d+)$")
SYSTEM_MESSAGES = (("welcome", "Thank you for contacting us."), ("assigned", "You are now chatting with "))
"""The system messages every conversation of the soak hears, in this order (message_templates/en/)."""
CLOSED_MESSAGE = "The agent has marked your chat closed."
"""What a conversation hears once its agent closed it, after the agent's last message."""
REPEATABLE_SENDS = ("sms", "messenger", "whatsapp")
"""Send APIs with no idempotency key (docs/architecture.md, "Idempotent effects")."""
CRASH_WINDOW = 3.0
"""How near a kill must be to a far side's record of a call for the call to have been in flight at
the kill: a kill while the call waited for its answer (ECE answering 2 s late) or before the record
of the answer was written (on this loaded 2-core machine that can take a second)."""
EVERYSEC_WINDOW = 1.0
"""appendfsync everysec: what Redis acknowledged in the last second before a SIGKILL may be gone."""


@dataclass
class Direction:
    name: str
    expected: int = 0
    arrived: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    reordered: list[str] = field(default_factory=list)
    in_window_lost: list[str] = field(default_factory=list)
    in_window_duplicated: list[str] = field(default_factory=list)
    crash_window_duplicated: list[str] = field(default_factory=list)
    """Second copies of a call the far side had answered when a worker was killed (documented)."""
    latencies: list[tuple[float, float, float]] = field(default_factory=list)
    """(sent, arrived, latency s) of each message that arrived."""


@dataclass
class Leftovers:
    inbox_items: int
    outbox_items: int
    retry_states: int
    deferred: int
    ready: int
    dead_letters: list[tuple[str, str]]
    """(thread, reason) of each dead letter."""

    @property
    def clean(self) -> bool:
        return not (self.inbox_items or self.outbox_items or self.retry_states or self.deferred or self.ready)


@dataclass
class Outcome:
    inbound: Direction
    outbound: Direction
    system: Direction
    leftovers: Leftovers
    errors: list[str]
    details: list[str] = field(default_factory=list)
    """What each conversation that broke the promise looked like at both ends (the report's last section)."""

    @property
    def failures(self) -> list[str]:
        """Every way the run broke the promise (empty: it held)."""
        found = []
        for direction in (self.inbound, self.outbound, self.system):
            for what in ("lost", "duplicated", "reordered"):
                items = getattr(direction, what)
                if items:
                    found.append(f"{direction.name}: {len(items)} {what} ({', '.join(items[:5])})")
        if not self.leftovers.clean:
            found.append(f"left in Redis: {self.leftovers}")
        found += self.errors
        return found


def leftovers(client: redis_lib.Redis) -> Leftovers:
    def total(pattern: str) -> int:
        return sum(replies.integer(client.llen(key)) for key in client.scan_iter(pattern, count=1000))

    def count(pattern: str) -> int:
        return sum(1 for _ in client.scan_iter(pattern, count=1000))

    letters = []
    start = 0
    while batch := dead_letters.listing(client, start, 100):
        letters += [(letter.thread, letter.reason) for letter in batch]
        start += len(batch)
    return Leftovers(
        inbox_items=total(keys.inbox("*")),
        outbox_items=total(keys.outbox("*")),
        retry_states=count(keys.retry_state("*")),
        deferred=replies.integer(client.zcard(keys.deferred())),
        ready=replies.integer(client.llen(keys.ready())),
        dead_letters=letters,
    )


def arrived_in(
    stack: SoakStack, load: Load, conversation: Conversation, client: redis_lib.Redis
) -> list[tuple[int, float]]:
    """(customer message number, arrival time) at the contact center, in arrival order."""
    found: list[tuple[int, float]] = []
    if conversation.hybrid:
        for chat_id in load.all_chats.get(conversation.customer, []):
            for entry in transcript.read(client, chat_id):
                if entry.get("from") != "customer":
                    continue
                names = [str(entry.get("text") or "")] + [
                    str(a.get("name", "")) for a in entry.get("attachments") or []
                ]
                found += [(n, float(entry["at"])) for name in names if (n := _number(name, conversation)) is not None]
        return found
    assert stack.ece is not None
    model = stack.ece.model
    with model.lock:
        mine = sorted(
            (c for c in model.conversations.values() if _address(c.customer_attributes) == conversation.customer),
            key=lambda c: c.started_at,
        )
        for ece_conversation in mine:
            for item in ece_conversation.received:
                if item.kind == "attachment" and item.attachment_id in model.files:
                    name = _tag_of_file(model.files[item.attachment_id].data)
                else:
                    name = item.content or ""
                if (number := _number(name, conversation)) is not None:
                    found.append((number, item.received_at))
    return found


def arrived_out(stack: SoakStack, conversation: Conversation) -> list[tuple[int, float]]:
    """(agent message number, arrival time) at the customer's provider, in arrival order."""
    found = []
    for send in stack.sandbox.providers.store.sent(conversation.channel, conversation.customer):
        match = OUT_TEXT.match((send.get("text") or "").strip())
        if match and int(match.group(1)) == conversation.index:
            found.append((int(match.group(2)), float(send["at"])))
    return found


def system_texts(stack: SoakStack, conversation: Conversation) -> list[tuple[str, float]]:
    """What the customer received that is text, in arrival order: the connector's own messages, and
    the agent's (kept, so the system messages' place before the first agent message is checked)."""
    texts = []
    for send in stack.sandbox.providers.store.sent(conversation.channel, conversation.customer):
        text = (send.get("text") or "").strip()
        if text and send.get("kind") in ("text", "system"):
            texts.append((text, float(send["at"])))
    return texts


def account_system(
    direction: Direction,
    conversation: Conversation,
    received: list[tuple[str, float]],
    windows: Windows,
    repeatable: bool,
    restarts: int = 0,
) -> None:
    """Each conversation hears the welcome, then who joined, once each, before the agent's first
    message (message_templates/en/: the queue's welcome and the assignment notice), and, once its
    agent closed it, the close, once, after the agent's last message.

    `restarts`: the customer's messages that ECE received twice through the worker-kill window. Such
    a repeat that comes after the agent ended the conversation starts a new one (the connector cannot
    tell it from a message written after the close, and starting one loses nothing), which welcomes
    the customer again: that many extra welcomes are counted with the window, not as duplicates."""
    if conversation.ece_id is None and conversation.chat_id is None:
        return  # no agent joined: the conversation's error says why
    texts = [text for text, _ in received]
    agent_messages = [i for i, t in enumerate(texts) if OUT_TEXT.match(t)]
    first_agent = agent_messages[0] if agent_messages else len(texts)
    places = []
    for name, prefix in SYSTEM_MESSAGES:
        label = f"c{conversation.index} {name}"
        allowed = restarts if name == "welcome" else 0
        place = _heard_once(direction, label, prefix, received, windows, repeatable, allowed)
        if place is None:
            continue
        places.append((place, label))
        if place > first_agent:
            direction.reordered.append(f"{label} after the agent's first message")
    for (earlier, first_label), (later, second_label) in itertools.pairwise(places):
        if later < earlier:
            direction.reordered.append(f"{second_label} before {first_label}")
    if conversation.closed_at is not None:
        label = f"c{conversation.index} closed"
        place = _heard_once(direction, label, CLOSED_MESSAGE, received, windows, repeatable)
        if place is not None and agent_messages and place < agent_messages[-1]:
            direction.reordered.append(f"{label} before the agent's last message")


def _heard_once(
    direction: Direction,
    label: str,
    prefix: str,
    received: list[tuple[str, float]],
    windows: Windows,
    repeatable: bool,
    allowed: int = 0,
) -> int | None:
    """Count one expected system message; returns where the customer first heard it (None: never).
    `allowed` extra copies are consequences of the worker-kill window (see `account_system`)."""
    direction.expected += 1
    found = [i for i, (text, _) in enumerate(received) if text.startswith(prefix)]
    if not found:
        direction.lost.append(label)
        return None
    direction.arrived += 1
    for extra, _ in enumerate(found[1:]):
        crash = extra < allowed or (repeatable and windows.crash_window(received[found[0]][1]))
        (direction.crash_window_duplicated if crash else direction.duplicated).append(label)
    return found[0]


def _tag_of_file(data: bytes) -> str:
    """The tag a soak file carries at its end (load.png)."""
    return data[len(PNG) :].decode(errors="replace") if data.startswith(PNG) else ""


def _number(name: str, conversation: Conversation) -> int | None:
    match = IN_TEXT.match(name.strip()) or IN_FILE.match(name.strip())
    if match and int(match.group(1)) == conversation.index:
        return int(match.group(2))
    return None


def _address(attributes: list[dict[str, Any]]) -> str | None:
    return next((str(a.get("value")) for a in attributes if a.get("name") == "address"), None)


@dataclass(frozen=True)
class Windows:
    """The documented moments a repeat or a loss may happen (docs/architecture.md): the last second
    before a Redis SIGKILL under `everysec`, and a worker killed, or Redis down, between a far side's
    answer and the record of it, which repeats a call that carries no idempotency key (ECE message or
    attachment; Twilio, Messenger, WhatsApp sends; never Apple or in-app)."""

    redis_kills: tuple[tuple[float, float], ...]
    """(SIGKILL, back up) of each Redis kill."""
    worker_kills: tuple[float, ...]
    everysec: bool

    def redis_window(self, acked_at: float | None) -> bool:
        return (
            self.everysec
            and acked_at is not None
            and any(0 <= kill - acked_at <= EVERYSEC_WINDOW for kill, _ in self.redis_kills)
        )

    def crash_window(self, first_arrival: float) -> bool:
        """The far side took the first copy while a worker that was killed had the call in flight or
        its answer unrecorded, or before or while Redis was down (no record could be written)."""
        return any(abs(kill - first_arrival) <= CRASH_WINDOW for kill in self.worker_kills) or any(
            kill - CRASH_WINDOW <= first_arrival <= back for kill, back in self.redis_kills
        )


def account(
    direction: Direction,
    messages: list[Message],
    arrivals: list[tuple[int, float]],
    windows: Windows,
    repeatable: bool,
) -> None:
    """Add one conversation's messages of one direction to `direction`'s figures. `repeatable`: the
    far side's call takes no idempotency key (a worker killed at the worst moment repeats it)."""
    expected = {m.seq: m for m in messages if m.acked_at is not None}
    direction.expected += len(expected)
    first: dict[int, float] = {}
    order: list[int] = []
    for number, at in arrivals:
        if number in first:
            message = expected.get(number)
            if repeatable and windows.crash_window(first[number]):
                target = direction.crash_window_duplicated
            elif message and windows.redis_window(message.acked_at):
                target = direction.in_window_duplicated
            else:
                target = direction.duplicated
            target.append(_label(messages, number))
            continue
        first[number] = at
        order.append(number)
    direction.arrived += len(first)
    for seq, message in expected.items():
        if seq not in first:
            (direction.in_window_lost if windows.redis_window(message.acked_at) else direction.lost).append(message.tag)
        else:
            direction.latencies.append((message.sent_at, first[seq], first[seq] - message.sent_at))
    for earlier, later in itertools.pairwise(order):
        if later < earlier:
            direction.reordered.append(f"{_label(messages, later)} before {_label(messages, earlier)}")


def _label(messages: list[Message], number: int) -> str:
    found = next((m for m in messages if m.seq == number), None)
    return found.tag if found else f"#{number}"


def check(stack: SoakStack, load: Load, faults: list[FaultRecord], client: redis_lib.Redis) -> Outcome:
    windows = Windows(
        tuple((f.start, f.end) for f in faults if f.kind == "redis_sigkill"),
        tuple(f.start for f in faults if f.kind == "worker_kill9"),
        stack.durability == "everysec",
    )
    inbound, outbound, system = (
        Direction("customer → contact center"),
        Direction("agent → customer"),
        Direction("system → customer"),
    )
    errors = []
    details: list[str] = []
    for conversation in load.conversations:
        if conversation.error:
            errors.append(f"conversation {conversation.index} ({conversation.channel}): {conversation.error}")
        before = _problems(inbound, outbound, system)
        mine_in = [m for m in conversation.messages if m.direction == "in"]
        mine_out = [m for m in conversation.messages if m.direction == "out"]
        repeats_before = len(inbound.crash_window_duplicated)
        account(inbound, mine_in, arrived_in(stack, load, conversation, client), windows, not conversation.hybrid)
        restarts = len(inbound.crash_window_duplicated) - repeats_before
        repeatable = conversation.channel in REPEATABLE_SENDS
        account(outbound, mine_out, arrived_out(stack, conversation), windows, repeatable)
        account_system(system, conversation, system_texts(stack, conversation), windows, repeatable, restarts)
        if _problems(inbound, outbound, system) != before and len(details) < 20:
            details.append(describe(stack, load, conversation, client))
    return Outcome(inbound, outbound, system, leftovers(client), errors, details)


def _problems(*directions: Direction) -> int:
    return sum(len(d.lost) + len(d.duplicated) + len(d.reordered) for d in directions)


def describe(stack: SoakStack, load: Load, conversation: Conversation, client: redis_lib.Redis) -> str:
    """Both ends of one conversation, with times: what the customer and agent sent (first attempt →
    acknowledged), what the contact center holds, what the customer received; seconds into the run."""
    t0 = load.started_at
    lines = [f"### c{conversation.index} ({conversation.channel}, {conversation.customer})", ""]
    for m in conversation.messages:
        acked = f"{m.acked_at - t0:.2f}" if m.acked_at else "never"
        lines.append(
            f"- sent {m.tag} at {m.sent_at - t0:.2f}, acknowledged {acked}, {m.attempts} attempts, {m.copies} copies"
        )
    if conversation.hybrid:
        lines.append(f"- Hybrid chats offered: {load.all_chats.get(conversation.customer, [])}")
    else:
        assert stack.ece is not None
        model = stack.ece.model
        with model.lock:
            for ece in sorted(model.conversations.values(), key=lambda c: c.started_at):
                if _address(ece.customer_attributes) == conversation.customer:
                    lines.append(
                        f"- ECE conversation {ece.id} started {ece.started_at - t0:.2f} ({ece.state}; the agent "
                        f"{'used it' if ece.id == conversation.ece_id else 'never saw it'})"
                    )
    arrived = [(n, round(at - t0, 2)) for n, at in arrived_in(stack, load, conversation, client)]
    lines.append(f"- arrived at the contact center: {arrived}")
    thread = thread_id_for(conversation.channel, conversation.asset, conversation.customer)
    for entry in threads.timeline(client, thread):
        what = {k: entry[k] for k in ("direction", "kind", "message", "system", "note", "provider_id") if k in entry}
        lines.append(f"- connector timeline at {float(entry.get('at', 0)) - t0:.2f}: {what}")
    for send in stack.sandbox.providers.store.sent(conversation.channel, conversation.customer):
        lines.append(
            f"- customer received at {float(send['at']) - t0:.2f}: {send.get('kind')} {(send.get('text') or '')[:60]!r}"
        )
    return "\n".join(lines)
