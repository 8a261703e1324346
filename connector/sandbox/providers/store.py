"""What the four provider simulators share: the record of accepted sends, each customer's last
inbound message (the messaging windows count from it), injected failures, answer delays (a slow
provider) with the sends in flight, and the refusal every blueprint renders in its own provider's
error shape.

Invariant: a send is recorded only once the simulated provider accepted it, and a repeated
idempotency key (Apple `id`, in-app `message_id`) is acknowledged without a second record — its
`duplicate` counter goes up instead, so a test can assert that the connector never resent.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from connector.config.model import Asset
from connector.sandbox.providers.files import MediaFiles

CHANNELS = ("sms", "messenger", "whatsapp", "apple", "inapp")
# What a recorded send is. Besides the six of the brief: "read" (a read receipt alone: Messenger
# mark_seen, WhatsApp status read), "template" (WhatsApp), "interactive" (WhatsApp, Apple).
KINDS = ("text", "typing_on", "typing_off", "file", "close", "system", "read", "template", "interactive")

T = TypeVar("T")


class Refusal(Exception):
    """A simulated provider says no; the provider's blueprint renders it in that provider's shape.

    `code` is the provider's error code (Twilio 21211, Graph 100 / 131047, ...), `subcode` Graph's
    `error_subcode`, `details` WhatsApp's `error_data.details`, `field` the in-app error's field.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: int | str | None = None,
        subcode: int | None = None,
        details: str | None = None,
        retry_after: float | None = None,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.subcode = subcode
        self.details = details
        self.retry_after = retry_after
        self.field = field
        self.headers = dict(headers or {})

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(int(self.retry_after))
        return headers


@dataclass(frozen=True)
class Inbound:
    """The customer's last message to an asset: when (unix seconds) and its provider id."""

    at: float
    message_id: str | None = None


class ProviderStore:
    """Thread-safe record of accepted sends and of customers' last inbound messages."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sent: list[dict[str, Any]] = []
        self._by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._inbound: dict[tuple[str, str, str], Inbound] = {}
        self._message_customers: dict[tuple[str, str, str], str] = {}
        self._profiles: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._requests: list[dict[str, Any]] = []
        self._seq = 0

    # -- sends ---------------------------------------------------------------------------------

    def record(
        self,
        *,
        channel: str,
        asset: str,
        customer: str | None,
        kind: str,
        text: str | None = None,
        files: Iterable[Mapping[str, Any]] = (),
        provider_id: str | None = None,
        key: str | None = None,
        request: Any = None,
        **extra: Any,
    ) -> tuple[dict[str, Any], bool]:
        """Record an accepted send; returns (the record, whether `key` was already recorded).

        A repeated `key` (within channel and asset) is not recorded again: the first record's
        `duplicate` count goes up and that record is returned.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        with self._cond:
            if key is not None:
                first = self._by_key.get((channel, asset, key))
                if first is not None:
                    first["duplicate"] += 1
                    self._cond.notify_all()
                    return _copy(first), True
            self._seq += 1
            file_list = [dict(f) for f in files]
            entry: dict[str, Any] = {
                "seq": self._seq,
                "channel": channel,
                "asset": asset,
                "customer": customer,
                "kind": kind,
                "text": text,
                "files": file_list,
                "file": file_list[0] if file_list else None,
                "provider_id": provider_id,
                "key": key,
                "at": time.time(),
                "duplicate": 0,
                "request": request,
                **extra,
            }
            self._sent.append(entry)
            if key is not None:
                self._by_key[(channel, asset, key)] = entry
            self._cond.notify_all()
            return _copy(entry), False

    def sent(
        self, channel: str | None = None, customer: str | None = None, *, asset: str | None = None
    ) -> list[dict[str, Any]]:
        """Every recorded send, oldest first, optionally of one channel / customer / asset."""
        with self._cond:
            return [
                _copy(e)
                for e in self._sent
                if (channel is None or e["channel"] == channel)
                and (customer is None or e["customer"] == customer)
                and (asset is None or e["asset"] == asset)
            ]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Return `predicate()` once it is truthy; TimeoutError after `timeout` seconds.

        The predicate runs outside the store's lock, so it may call `sent()`.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"provider store: condition not met within {timeout} s")
            with self._cond:
                self._cond.wait(min(remaining, 0.05))

    def clear(self) -> None:
        """Forget sends, keys, requests and customers' inbound times."""
        with self._cond:
            self._sent.clear()
            self._by_key.clear()
            self._inbound.clear()
            self._message_customers.clear()
            self._profiles.clear()
            self._requests.clear()

    # -- every request a send endpoint answered (retries included) ------------------------------

    def log_request(self, channel: str, method: str, path: str, status: int) -> None:
        with self._cond:
            self._requests.append(
                {"channel": channel, "method": method, "path": path, "status": status, "at": time.time()}
            )

    def requests(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every request the simulators answered, refused ones included (to count retries)."""
        with self._cond:
            return [dict(r) for r in self._requests if channel is None or r["channel"] == channel]

    # -- customers' inbound messages (the emulator reports them) ---------------------------------

    def note_inbound(
        self, channel: str, asset: str, customer: str, *, at: float | None = None, message_id: str | None = None
    ) -> None:
        """The customer wrote to `asset` at `at` (default now); windows are counted from it."""
        with self._cond:
            self._inbound[(channel, asset, customer)] = Inbound(time.time() if at is None else at, message_id)
            if message_id:
                self._message_customers[(channel, asset, message_id)] = customer

    def set_last_inbound(self, channel: str, asset: str, customer: str, at: float) -> None:
        """For tests: pretend the customer last wrote at `at` (e.g. 25 h ago)."""
        previous = self.last_inbound(channel, asset, customer)
        self.note_inbound(channel, asset, customer, at=at, message_id=previous.message_id if previous else None)

    def last_inbound(self, channel: str, asset: str, customer: str) -> Inbound | None:
        with self._cond:
            return self._inbound.get((channel, asset, customer))

    def customer_of_message(self, channel: str, asset: str, message_id: str) -> str | None:
        """Who sent inbound message `message_id` (WhatsApp's typing indicator names only that)."""
        with self._cond:
            return self._message_customers.get((channel, asset, message_id))

    # -- customers' profiles at the provider (Messenger's User Profile API) ----------------------

    def set_profile(self, channel: str, asset: str, customer: str, **fields: Any) -> None:
        """The customer's profile as the provider keeps it (`first_name`, `last_name`, `locale`, ...);
        a customer the provider knows (see the simulator) also writes to the asset."""
        with self._cond:
            self._profiles[(channel, asset, customer)] = dict(fields)

    def profile(self, channel: str, asset: str, customer: str) -> dict[str, Any] | None:
        with self._cond:
            found = self._profiles.get((channel, asset, customer))
            return dict(found) if found is not None else None


def _copy(entry: dict[str, Any]) -> dict[str, Any]:
    copy = dict(entry)
    copy["files"] = [dict(f) for f in entry["files"]]
    copy["file"] = copy["files"][0] if copy["files"] else None
    return copy


@dataclass
class Failure:
    status: int
    error_code: int | str | None = None
    retry_after: float | None = None


DEFAULT_FAIL_STATUSES = (500, 503, 429)
"""What a provider's send API answers when it fails at random: an error, an outage, a throttle."""


class FaultSpecError(ValueError):
    """A fault switch refused: `field` names the setting that is wrong (the control answers 400 with it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FailRate:
    """A channel's sends fail at random: `rate` of them (0 to 1) answer one of `statuses`, picked
    uniformly; a 429 carries `Retry-After: retry_after` when given."""

    rate: float
    statuses: tuple[int, ...]
    retry_after: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "statuses": list(self.statuses), "retry_after": self.retry_after}


class Faults:
    """Injected failures per channel: the next N sends answer a status (`fail_next`), every send
    503s (`down`), or a share of sends fails at random (`fail_rate`).

    The random failures come from one stream per channel, seeded from `seed` and the channel's name,
    so the n-th send of a channel fails or not the same way in every run with the same seed, however
    the channels' sends interleave. Each failure injected at random is counted per channel and status
    (a soak reports the faults it injected)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, list[Failure]] = {}
        self._down: set[str] = set()
        self._rates: dict[str, FailRate] = {}
        self._seed = random.SystemRandom().randrange(2**32)
        self._streams: dict[str, random.Random] = {}
        self._injected: Counter[tuple[str, int]] = Counter()

    def fail_next(
        self,
        channel: str,
        count: int,
        status: int,
        error_code: int | str | None = None,
        retry_after: float | None = None,
    ) -> None:
        _check_channel(channel)
        if count < 1 or not 400 <= status <= 599:
            raise ValueError("count must be at least 1 and status an HTTP error status (4xx or 5xx)")
        with self._lock:
            self._queued.setdefault(channel, []).extend(Failure(status, error_code, retry_after) for _ in range(count))

    def set_down(self, channel: str | None = None, down: bool = True) -> None:
        """Every send of `channel` (None: all channels) answers 503 until set up again."""
        channels = CHANNELS if channel is None else (_check_channel(channel),)
        with self._lock:
            if down:
                self._down.update(channels)
            else:
                self._down.difference_update(channels)

    def is_down(self, channel: str) -> bool:
        with self._lock:
            return channel in self._down

    def set_fail_rate(
        self,
        channel: str | None,
        rate: float,
        statuses: Iterable[int] = DEFAULT_FAIL_STATUSES,
        retry_after: float | None = None,
        seed: int | None = None,
    ) -> None:
        """`rate` of the sends of `channel` (None: of every channel) fail at random with one of
        `statuses`; rate 0 turns it off. `seed` restarts every channel's stream from that seed.
        FaultSpecError (naming the field) for a bad value; nothing changes then."""
        channels = CHANNELS if channel is None else (_check_field("channel", channel),)
        spec = FailRate(_rate(rate), _statuses(statuses), _retry_after(retry_after))
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultSpecError("seed", f"seed must be an integer, got {seed!r}")
        with self._lock:
            if seed is not None:
                self._seed = seed
                self._streams.clear()
            for name in channels:
                if spec.rate:
                    self._rates[name] = spec
                else:
                    self._rates.pop(name, None)

    def fail_rate(self) -> dict[str, Any]:
        """The random failures as the control shows them: each channel's rate (None: off), the seed,
        and the failures injected so far per status, in all and per channel."""
        with self._lock:
            per_channel: dict[str, dict[str, int]] = {}
            total: Counter[int] = Counter()
            for (channel, status), count in sorted(self._injected.items()):
                per_channel.setdefault(channel, {})[str(status)] = count
                total[status] += count
            return {
                "rates": {name: (r.as_json() if (r := self._rates.get(name)) else None) for name in CHANNELS},
                "seed": self._seed,
                "injected": {str(status): count for status, count in sorted(total.items())},
                "injected_by_channel": per_channel,
            }

    def injected_count(self, channel: str | None = None, status: int | None = None) -> int:
        """Failures injected at random so far, of one channel and / or status (None: all)."""
        with self._lock:
            return sum(
                n
                for (c, s), n in self._injected.items()
                if (channel is None or c == channel) and (status is None or s == status)
            )

    def take(self, channel: str) -> Failure | None:
        """The next injected failure of `channel`, consumed; None when none is queued and the
        channel's random failure rate (if any) lets this send through."""
        with self._lock:
            queued = self._queued.get(channel)
            if queued:
                return queued.pop(0)
            spec = self._rates.get(channel)
            if spec is None:
                return None
            stream = self._streams.get(channel)
            if stream is None:
                stream = self._streams[channel] = random.Random(f"{self._seed}:{channel}")
            if stream.random() >= spec.rate:
                return None
            status = stream.choice(spec.statuses)
            self._injected[(channel, status)] += 1
            return Failure(status, retry_after=spec.retry_after if status == 429 else None)

    def clear(self) -> None:
        """No failures queued, no channel down, no random failures; the counts start again at 0."""
        with self._lock:
            self._queued.clear()
            self._down.clear()
            self._rates.clear()
            self._streams.clear()
            self._injected.clear()


def _check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; use one of {', '.join(CHANNELS)}")
    return channel


def _check_field(name: str, channel: str) -> str:
    if channel not in CHANNELS:
        raise FaultSpecError(name, f"{name} must be one of {', '.join(CHANNELS)} or null (every channel)")
    return channel


def _rate(rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise FaultSpecError("rate", f"rate must be a number from 0.0 to 1.0, got {rate!r}")
    return float(rate)


def _statuses(statuses: Any) -> tuple[int, ...]:
    if isinstance(statuses, str | bytes) or not isinstance(statuses, Iterable):
        raise FaultSpecError("statuses", f"statuses must be a list of HTTP error statuses, got {statuses!r}")
    found = tuple(statuses)
    if not found or not all(isinstance(s, int) and not isinstance(s, bool) and 400 <= s <= 599 for s in found):
        raise FaultSpecError("statuses", f"statuses must be a non-empty list of 4xx / 5xx statuses, got {found!r}")
    return found


def _retry_after(seconds: Any) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
        raise FaultSpecError("retry_after", f"retry_after must be 0 to 3600 seconds or null, got {seconds!r}")
    return float(seconds)


MAX_DELAY_SECONDS = 60.0


class SendLatency:
    """A slow provider: per-channel answer delays, and the sends in flight (every channel) with their peak.

    A provider under load answers a send in hundreds of milliseconds to seconds, and the connector
    must hold many sends in flight to keep up. `hooks.install_hooks` applies the delay
    where every send endpoint of the four simulators passes, before the send is looked at, so a slow
    send is recorded (counts as sent) only when it answers, as a real provider's would. Like the
    ECE simulator's `delay_seconds` (connector/sandbox/ece/model.py).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._delays: dict[str, float] = {}
        self._in_flight = 0
        self._peak = 0

    def set_delay(self, channel: str | None, seconds: float) -> None:
        """Every send of `channel` (None: of every channel) answers `seconds` later; 0: at once."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or math.isnan(seconds):
            raise ValueError(f"delay_seconds must be a number of seconds, got {seconds!r}")
        if not 0 <= seconds <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay_seconds must be 0 to {MAX_DELAY_SECONDS:g}, got {seconds!r}")
        channels = CHANNELS if channel is None else (_check_channel(channel),)
        with self._lock:
            for name in channels:
                if seconds:
                    self._delays[name] = float(seconds)
                else:
                    self._delays.pop(name, None)

    def delays(self) -> dict[str, float]:
        """Each channel's delay in seconds (0: answers at once)."""
        with self._lock:
            return {name: self._delays.get(name, 0.0) for name in CHANNELS}

    def began(self, channel: str) -> float:
        """A send of `channel` arrived: counted in flight; returns how long it waits before going on."""
        with self._lock:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            return self._delays.get(channel, 0.0)

    def ended(self) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most sends in flight at once since the last `reset_peak` (or `clear`)."""
        with self._lock:
            return self._peak

    def reset_peak(self) -> None:
        """The peak counts from now, from the sends in flight now."""
        with self._lock:
            self._peak = self._in_flight

    def clear(self) -> None:
        """Every channel answers at once again; the peak counts from now."""
        with self._lock:
            self._delays.clear()
            self._peak = self._in_flight


@dataclass
class ProviderState:
    """Everything the four blueprints share; one per `ProviderSimulators`."""

    assets: tuple[Asset, ...]
    base_url: str
    store: ProviderStore = field(default_factory=ProviderStore)
    files: MediaFiles = field(default_factory=MediaFiles)
    faults: Faults = field(default_factory=Faults)
    latency: SendLatency = field(default_factory=SendLatency)

    def assets_of(self, channel: str) -> list[Asset]:
        return [a for a in self.assets if a.channel == channel]

    def injected(self, channel: str, defaults: Mapping[int, tuple[int | str | None, str]]) -> None:
        """Raise the next injected failure of `channel` as a Refusal; `defaults` maps a status (or
        its class: 400, 500) to the provider's (code, message) used when the test gave no code."""
        failure = self.faults.take(channel)
        if failure is None:
            return
        code, message = _default(defaults, failure.status)
        if failure.error_code is not None:
            code = failure.error_code
        raise Refusal(failure.status, message, code=code, retry_after=failure.retry_after)

    def refuse_if_down(self, channel: str, defaults: Mapping[int, tuple[int | str | None, str]]) -> None:
        """A provider set down answers 503 to every send, before even looking at the credentials."""
        if self.faults.is_down(channel):
            code, message = _default(defaults, 503)
            raise Refusal(503, message, code=code)


def _default(defaults: Mapping[int, tuple[int | str | None, str]], status: int) -> tuple[int | str | None, str]:
    return defaults.get(status) or defaults.get(status // 100 * 100) or (None, f"HTTP {status}")
