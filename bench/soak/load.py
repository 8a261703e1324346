"""The soak's load: customers on five channels writing signed webhooks, agents writing back.

Each conversation alternates: the customer's message m<i> (a text, or every FILE_EVERY-th a file the
provider simulator serves), then the agent's reply a<i>. Customers' webhooks are built by the
sandbox's customer emulator (every channel's shape and signature) and delivered as providers deliver:
retried with the same message id until answered 200, and delivered 1 to 5 times in all, some of the
copies later, after the customer's next message (out of order in time). Agents answer on ECE through
the ECE simulator's control API (`assign`, then `say`) and on Hybrid Chat through the agent API
(login, READY, accept the offer, send). An agent whose send got no answer looks at the chat before
sending again, as a person would.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import redis
import requests

from bench.soak.stack import AGENT_PASSWORD, ASSETS, HYBRID_CHANNELS, SoakStack
from connector.sandbox.customer import emulator as shapes

CHANNELS = ("sms", "messenger", "whatsapp", "apple", "inapp")
FILE_EVERY = 4
"""Every 4th customer message (m3, m7, ...) carries a file instead of text (not on Apple, whose
files travel encrypted on MMCS and which the emulator builds only through its own send)."""
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + bytes(40)


def png(tag: str) -> bytes:
    """A PNG whose bytes end with the message's tag: channels that carry no file name (Twilio, Meta)
    reach ECE as `attachment.png`, so the check knows the file by its content."""
    return PNG + tag.encode()


RETRY_SECONDS = 0.3
CLOSE_WAIT_SECONDS = 180.0
"""How long an agent waits for the customer's messages before closing (ECE is down a minute in the soak)."""


def customer_id(channel: str, index: int) -> str:
    return {
        "sms": f"+1555{index:07d}",
        "messenger": f"72{index:014d}",
        "whatsapp": f"1556{index:08d}",
        "apple": f"urn:mbid:U09BSy1{index:08d}",
        "inapp": f"soak-user-{index:06d}",
    }[channel]


def tag(conversation: int, direction: str, seq: int) -> str:
    """What identifies a message in the simulators' records: `soak c12 m3` (customer), `soak c12 a3` (agent)."""
    return f"soak c{conversation} {'m' if direction == 'in' else 'a'}{seq}"


def file_name(conversation: int, seq: int) -> str:
    return f"soak-c{conversation}-m{seq}.png"


@dataclass
class Message:
    conversation: int
    direction: str  # in: customer → contact center; out: agent → customer
    seq: int
    kind: str  # text | file
    sent_at: float = 0.0
    acked_at: float | None = None
    attempts: int = 0
    copies: int = 1

    @property
    def tag(self) -> str:
        return tag(self.conversation, self.direction, self.seq)


@dataclass
class Conversation:
    index: int
    channel: str
    rounds: int
    messages: list[Message] = field(default_factory=list)
    ece_id: str | None = None
    chat_id: str | None = None
    agent: HybridAgent | None = None
    closed_at: float | None = None
    """When the agent's close was acknowledged (after their last message): the customer hears it."""
    error: str | None = None

    @property
    def customer(self) -> str:
        return customer_id(self.channel, self.index)

    @property
    def asset(self) -> str:
        return ASSETS[self.channel]

    @property
    def hybrid(self) -> bool:
        return self.channel in HYBRID_CHANNELS


@dataclass
class Counters:
    webhook_posts: int = 0
    webhook_retries: int = 0
    duplicate_copies: int = 0
    late_copies: int = 0
    agent_retries: int = 0
    in_flight: int = 0
    """Webhooks sent and not yet answered (a web process kill waits for one, to land mid-request)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


class HybridAgent:
    """One Hybrid Chat agent: logs in, goes READY, accepts every offer, and answers when asked."""

    def __init__(
        self, base_url: str, login: str, offers: Callable[[str, str, HybridAgent], None], stop: threading.Event
    ) -> None:
        self.base_url, self.login, self.offers, self.stop = base_url, login, offers, stop
        self.session = requests.Session()
        self.cursor = "0-0"
        self._log_in()
        self.thread = threading.Thread(target=self._run, name=f"agent-{login}", daemon=True)
        self.thread.start()

    def _log_in(self) -> None:
        while True:
            try:
                answer = self.session.post(
                    f"{self.base_url}/agent/login", json={"login": self.login, "password": AGENT_PASSWORD}, timeout=10
                )
                if answer.status_code == 200:
                    self.session.cookies.clear()
                    self.session.headers["Authorization"] = f"Bearer {answer.json()['token']}"
                    if self.call("PUT", "/agent/api/me/state", json={"state": "READY"}).status_code == 200:
                        return
            except requests.RequestException:
                pass
            if self.stop.wait(RETRY_SECONDS):
                return

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        answer = self.session.request(method, f"{self.base_url}{path}", timeout=kwargs.pop("timeout", 10), **kwargs)
        if answer.status_code == 401:  # the session went with a Redis restart: log in again
            self._log_in()
        return answer

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                answer = self.call("GET", "/agent/api/events", params={"after": self.cursor, "wait": 2}, timeout=15)
                if answer.status_code != 200:
                    self.stop.wait(RETRY_SECONDS)
                    continue
                body = answer.json()
                self.cursor = body["cursor"]
                for event in body["events"]:
                    if event.get("type") == "state_changed" and event.get("chat_state") == "NOT_READY":
                        self.call("PUT", "/agent/api/me/state", json={"state": "READY"})
                    if event.get("type") == "chat_offered":
                        self._accept(event["chat_id"], event["chat"]["customer"]["id"])
            except (requests.RequestException, ValueError, KeyError):
                self.stop.wait(RETRY_SECONDS)

    def _accept(self, chat_id: str, customer: str) -> None:
        """Accept until the answer is known, as the desktop does: after an answer lost to a fault, a
        repeat refused with `already_accepted` says the first landed."""
        while not self.stop.is_set():
            try:
                answer = self.call("POST", f"/agent/api/chats/{chat_id}/accept")
                refusal = answer.json().get("error") if answer.status_code == 409 else None
                if answer.status_code == 200 or refusal == "already_accepted":
                    self.offers(customer, chat_id, self)
                    return
                if answer.status_code in (404, 409):
                    return  # it rang out or went to another agent: the router offers it again
            except (requests.RequestException, ValueError):
                pass
            self.stop.wait(RETRY_SECONDS)

    def say(self, chat_id: str, text: str, counters: Counters) -> None:
        """Send once: after an unanswered send, look at the chat first (the send may have landed)."""
        while not self.stop.is_set():
            try:
                answer = self.call("POST", f"/agent/api/chats/{chat_id}/messages", json={"text": text})
                if answer.status_code == 200:
                    return
            except requests.RequestException:
                pass
            counters.add(agent_retries=1)
            self.stop.wait(RETRY_SECONDS)
            try:
                chat = self.call("GET", f"/agent/api/chats/{chat_id}")
                if chat.status_code == 200 and any(m.get("text") == text for m in chat.json().get("transcript", [])):
                    return
            except (requests.RequestException, ValueError):
                pass

    def close(self, chat_id: str, counters: Counters) -> None:
        """Close once: after an unanswered close, a refusal (409, the chat has ended) means it landed."""
        attempts = 0
        while not self.stop.is_set():
            attempts += 1
            try:
                answer = self.call("POST", f"/agent/api/chats/{chat_id}/close", json={"wrap_up": "soak"})
                if answer.status_code == 200 or (attempts > 1 and answer.status_code == 409):
                    return
            except requests.RequestException:
                pass
            counters.add(agent_retries=1)
            self.stop.wait(RETRY_SECONDS)


class Load:
    """Drives `conversations` conversations of `rounds` customer messages and agent replies each,
    `concurrency` at a time."""

    def __init__(self, stack: SoakStack, conversations: int, rounds: int, concurrency: int, seed: int = 1) -> None:
        self.stack = stack
        self.rng = random.Random(seed)
        self.conversations = [Conversation(n, CHANNELS[n % len(CHANNELS)], rounds) for n in range(conversations)]
        self.concurrency = concurrency
        self.counters = Counters()
        self.stop = threading.Event()
        self._late = ThreadPoolExecutor(8, thread_name_prefix="late-copy")
        self._chats: dict[str, tuple[str, HybridAgent]] = {}
        self.all_chats: dict[str, list[str]] = {}
        """Every chat offered for each customer (a second one would be a doubled conversation)."""
        self._chats_changed = threading.Condition()
        self.agents: list[HybridAgent] = []
        self.emulator = stack.sandbox.customer
        self.reached: Callable[[Conversation], set[int]] = lambda conversation: set()
        """The numbers of a conversation's customer messages that reached its agent (the run sets it:
        bench/soak/check.py reads the far side's records)."""
        self.local = threading.local()
        self.started_at = time.time()

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> None:
        self.started_at = time.time()
        logins = [f"soak{n}" for n in range(self.stack.agents)]
        self.agents = [HybridAgent(self.stack.url, login, self._offered, self.stop) for login in logins]
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="conversation")
        pending = {pool.submit(self._converse, c, random.Random(self.rng.random())) for c in self.conversations}
        while pending and not self.stop.is_set():  # stopped early (Ctrl-C): the queued ones are dropped
            _, pending = wait(pending, timeout=0.5)
        pool.shutdown(wait=True, cancel_futures=True)
        self._late.shutdown(wait=True)

    def finish(self) -> None:
        self.stop.set()
        for agent in self.agents:
            agent.thread.join(20)

    def messages(self) -> list[Message]:
        return [m for c in self.conversations for m in c.messages]

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    def _converse(self, conversation: Conversation, rng: random.Random) -> None:
        try:
            for seq in range(conversation.rounds):
                self._customer_writes(conversation, seq, rng)
                if seq == 0 and not self._agent_joins(conversation):
                    conversation.error = "no agent took the conversation"
                    return
                time.sleep(rng.uniform(0.02, 0.2))
                self._agent_writes(conversation, seq)
                time.sleep(rng.uniform(0.02, 0.2))
            self._agent_closes(conversation)
        except Exception as exc:
            conversation.error = f"{type(exc).__name__}: {exc}"

    # -- the customer --------------------------------------------------------------------------------

    def _customer_writes(self, conversation: Conversation, seq: int, rng: random.Random) -> None:
        kind = "file" if seq % FILE_EVERY == FILE_EVERY - 1 and conversation.channel != "apple" else "text"
        message = Message(conversation.index, "in", seq, kind)
        conversation.messages.append(message)
        path, data, headers = self._webhook(conversation, message)
        message.copies = rng.randint(1, 5)
        message.sent_at = time.time()
        session = self._session()
        while not self.stop.is_set():  # the provider retries what got no 200, with the same message id
            message.attempts += 1
            self.counters.add(webhook_posts=1)
            self.counters.add(in_flight=1)
            try:
                if session.post(self.stack.url + path, data=data, headers=headers, timeout=10).status_code == 200:
                    message.acked_at = time.time()
                    break
            except requests.RequestException:
                session.close()
            finally:
                self.counters.add(in_flight=-1)
            self.counters.add(webhook_retries=1)
            self.stop.wait(RETRY_SECONDS)
        for _ in range(message.copies - 1):
            if rng.random() < 0.5:  # now
                self._copy(path, data, headers)
            else:  # later, after the customer's next message
                self.counters.add(late_copies=1)
                self._late.submit(self._copy, path, data, headers, rng.uniform(0.3, 3.0))

    def _copy(self, path: str, data: bytes, headers: dict[str, str], delay: float = 0.0) -> None:
        time.sleep(delay)
        self.counters.add(duplicate_copies=1, webhook_posts=1)
        with contextlib.suppress(requests.RequestException):  # a copy with no answer is one copy fewer
            self._session().post(self.stack.url + path, data=data, headers=headers, timeout=10)

    def _webhook(self, conversation: Conversation, message: Message) -> tuple[str, bytes, dict[str, str]]:
        """The provider's request (path, signed body, headers), built by the customer emulator."""
        asset = self.emulator.asset(conversation.asset)
        customer = conversation.customer
        if message.kind == "file":
            providers = self.stack.sandbox.providers
            name = file_name(conversation.index, message.seq)
            data = png(message.tag)
            file_id = providers.files.put(data, "image/png", name)
            build_file = {
                "sms": shapes._sms_file,
                "messenger": shapes._messenger_file,
                "whatsapp": shapes._whatsapp_file,
                "inapp": shapes._inapp_file,
            }[conversation.channel]
            request = build_file(asset, customer, providers.base_url, file_id, data, "image/png", name, None)
        else:
            build_text = {
                "sms": shapes._sms_text,
                "messenger": shapes._messenger_text,
                "whatsapp": shapes._whatsapp_text,
                "apple": shapes._apple_text,
                "inapp": shapes._inapp_text,
            }[conversation.channel]
            request = build_text(asset, customer, message.tag, profile_name=f"Soak {conversation.index}", locale=None)
        # The provider's messaging window counts from the customer's last message.
        self.stack.sandbox.providers.store.note_inbound(
            asset.channel, asset.name, customer, message_id=request.message_id
        )
        path = f"/webhooks/{asset.channel}/{asset.name}"
        data, headers = request.encode(self.stack.url + path)
        return path, data, headers

    # -- the agents ----------------------------------------------------------------------------------

    def _offered(self, customer: str, chat_id: str, agent: HybridAgent) -> None:
        with self._chats_changed:
            self._chats.setdefault(customer, (chat_id, agent))
            if chat_id not in self.all_chats.setdefault(customer, []):
                self.all_chats[customer].append(chat_id)
            self._chats_changed.notify_all()

    def _agent_joins(self, conversation: Conversation, timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        if conversation.hybrid:
            with self._chats_changed:
                while conversation.customer not in self._chats:
                    if not self._chats_changed.wait(max(0.0, deadline - time.monotonic())):
                        return False
                conversation.chat_id, conversation.agent = self._chats[conversation.customer]
            return True
        # The agent picks the chat up once the customer's first message shows in it, as a person would.
        while (ece_id := self._ece_conversation(conversation.customer)) is None:
            if time.monotonic() > deadline or self.stop.wait(0.2):
                return False
        conversation.ece_id = ece_id
        self._control(f"conversations/{ece_id}/assign", {"agent_id": "1001", "agent_name": "Alice"})
        return True

    def _ece_conversation(self, customer: str) -> str | None:
        assert self.stack.ece is not None
        model = self.stack.ece.model
        with model.lock:
            found = sorted(
                (c for c in model.conversations.values() if _address(c.customer_attributes) == customer and c.received),
                key=lambda c: c.started_at,
            )
        return found[0].id if found else None

    def _control(self, path: str, body: dict[str, Any], *, done_if_refused: bool = False) -> None:
        """`done_if_refused`: a 409 after an unanswered attempt means that attempt landed (a close)."""
        attempts = 0
        while not self.stop.is_set():
            attempts += 1
            try:
                answer = self._session().post(f"{self.stack.control_url}/{path}", json=body, timeout=10)
                if done_if_refused and attempts > 1 and answer.status_code == 409:
                    return
                answer.raise_for_status()
                return
            except requests.RequestException:
                self.counters.add(agent_retries=1)
                self.stop.wait(RETRY_SECONDS)

    def _agent_writes(self, conversation: Conversation, seq: int) -> None:
        message = Message(conversation.index, "out", seq, "text")
        conversation.messages.append(message)
        message.sent_at = time.time()
        if conversation.hybrid:
            assert conversation.chat_id is not None and conversation.agent is not None
            conversation.agent.say(conversation.chat_id, message.tag, self.counters)
        else:
            self._control(f"conversations/{conversation.ece_id}/say", {"text": message.tag})
        message.acked_at = time.time()

    def _agent_closes(self, conversation: Conversation, timeout: float = CLOSE_WAIT_SECONDS) -> None:
        """The agent ends the chat after their last message, once every message the customer got
        acknowledged has reached them (a person closes a chat they have read to the end): it frees
        their slot. A customer message that never reaches them leaves the chat open (the check
        reports the loss)."""
        wanted = {m.seq for m in conversation.messages if m.direction == "in" and m.acked_at is not None}
        deadline = time.monotonic() + timeout
        while not self._reached_all(conversation, wanted):
            if time.monotonic() > deadline or self.stop.wait(0.5):
                return
        if conversation.hybrid:
            assert conversation.chat_id is not None and conversation.agent is not None
            conversation.agent.close(conversation.chat_id, self.counters)
        else:
            self._control(f"conversations/{conversation.ece_id}/complete", {}, done_if_refused=True)
        if not self.stop.is_set():
            conversation.closed_at = time.time()

    def _reached_all(self, conversation: Conversation, wanted: set[int]) -> bool:
        try:
            return wanted <= self.reached(conversation)
        except redis.RedisError:  # Redis restarting (Hybrid Chat's transcripts are read there)
            return False


def _address(attributes: list[dict[str, Any]]) -> str | None:
    return next((str(a.get("value")) for a in attributes if a.get("name") == "address"), None)
