"""The four live indicators of an entry point (Webex Connect's Agent / Depth / Wait / Status).

A refresh asks the integration's backend for the entry point's availability (`Backend.availability`)
and stores the reading (the numbers, or the error, and when) under `keys.indicator_reading`; pages
only read stored readings, so a page never waits on the contact center. The colours are computed
when a reading is shown, from the reading and the entry point's current configuration: a changed
wait threshold or an entry point disabled in the connector shows at once, without asking again.

Colours: green, red, or unknown. A failed reading (contact center down, 401, timeout) is unknown
with the error named, never red: red states something the contact center said.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis

from connector.backends import Availability, backend_for
from connector.config.model import EntryPoint, Integration
from connector.errors import PermanentError, RetryableError
from connector.store import keys, replies

__all__ = [
    "INDICATORS",
    "Indicator",
    "Reading",
    "indicators_of",
    "read",
    "read_all",
    "refresh",
    "refresh_all",
]

log = logging.getLogger(__name__)

INDICATORS = ("agent", "depth", "wait", "status")
"""The four indicators, in the order the UI shows them."""

READING_TTL_SECONDS = 7 * 24 * 3600
"""A reading older than this is forgotten (an entry point removed meanwhile leaves no trace)."""

TIMEOUT = (2.0, 4.0)
"""Connect and read timeouts of an indicator refresh: an operator waits on it, a worker does not."""

POOL_SIZE = 8
"""Entry points read side by side by `refresh_all`."""

DEADLINE_SECONDS = 15.0
"""How long `refresh_all` waits in all; entry points not read by then show as unknown."""


@dataclass(frozen=True)
class Indicator:
    """One coloured light: `state` green | red | unknown, `label` the word shown on it (colour is
    never the only sign), `detail` the number behind the colour ("3 slots free")."""

    name: str
    state: str
    label: str
    detail: str


@dataclass(frozen=True)
class Reading:
    """The contact center's last answer about one entry point: availability, or the error that
    prevented it."""

    entry_point_id: str
    checked_at: float
    availability: Availability | None = None
    error: str | None = None

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Reading:
        data = json.loads(raw)
        availability = data.get("availability")
        return cls(
            entry_point_id=str(data["entry_point_id"]),
            checked_at=float(data["checked_at"]),
            availability=Availability(**availability) if isinstance(availability, dict) else None,
            error=data.get("error"),
        )


# -- colours (pure) ---------------------------------------------------------------------------------


def indicators_of(entry_point: EntryPoint, reading: Reading | None) -> dict[str, Indicator]:
    """The four indicators of `entry_point` from its last reading (None: never checked)."""
    if reading is None or reading.availability is None:
        why = "never checked: press Refresh" if reading is None else f"reading failed: {reading.error}"
        unknown = {name: Indicator(name, "unknown", "unknown", why) for name in INDICATORS}
        if not entry_point.enabled:  # known without asking
            unknown["status"] = Indicator("status", "red", "offline", f"disabled in the connector; {why}")
        return unknown
    a = reading.availability
    return {
        "agent": _agent(a),
        "depth": _depth(a),
        "wait": _wait(a, entry_point.max_wait_seconds),
        "status": _status(a, entry_point.enabled),
    }


def _slots(a: Availability) -> str:
    return "capacity unknown" if a.capacity is None else f"{a.capacity} slot{'s' if a.capacity != 1 else ''} free"


def _agent(a: Availability) -> Indicator:
    if a.agents_available:
        return Indicator("agent", "green", "available", f"an agent can take chats: {_slots(a)}")
    return Indicator("agent", "red", "none", f"no agent available: {_slots(a)}")


def _depth(a: Availability) -> Indicator:
    waiting = "" if a.queue_depth is None else f", {a.queue_depth} waiting"
    if a.eligibility == 2 or a.capacity == 0:
        return Indicator("depth", "red", "full", f"no capacity left: {_slots(a)}{waiting}")
    if a.capacity is None and a.eligibility is None:
        return Indicator("depth", "unknown", "unknown", f"the contact center did not report capacity{waiting}")
    return Indicator("depth", "green", "room", f"{_slots(a)}{waiting}")


def _wait(a: Availability, threshold: int) -> Indicator:
    if a.wait_seconds is None:
        return Indicator(
            "wait", "unknown", "unknown", f"the contact center did not report the wait time; threshold {threshold} s"
        )
    detail = f"wait {a.wait_seconds} s, threshold {threshold} s"
    if a.wait_seconds > threshold:
        return Indicator("wait", "red", "long", detail)
    return Indicator("wait", "green", "ok", detail)


def _status(a: Availability, enabled: bool) -> Indicator:
    if not enabled:
        return Indicator("status", "red", "offline", "disabled in the connector: enable the entry point")
    if a.chat_allowed:
        return Indicator("status", "green", "online", "the contact center and the connector both take chats on it")
    return Indicator(
        "status",
        "red",
        "offline",
        "the contact center takes no chats on it: the entry point is inactive, or has no agent or room "
        "(see Agent and Depth)",
    )


def age(checked_at: float, now: float | None = None) -> str:
    """ "checked 12 s ago" in the largest unit that fits."""
    seconds = max(int((time.time() if now is None else now) - checked_at), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"checked {seconds // size} {unit} ago"
    return f"checked {seconds} s ago"


# -- storage ----------------------------------------------------------------------------------------


def store(redis: Redis, integration: str, reading: Reading) -> None:
    redis.set(keys.indicator_reading(integration, reading.entry_point_id), reading.to_json(), ex=READING_TTL_SECONDS)


def read(redis: Redis, integration: str, entry_point_id: str) -> Reading | None:
    raw = replies.bytes_or_none(redis.get(keys.indicator_reading(integration, entry_point_id)))
    return _decode(raw)


def read_all(redis: Redis, integration: str, entry_point_ids: Iterable[str]) -> dict[str, Reading | None]:
    """entry point id → its stored reading, in one round trip (a page with 100 entry points)."""
    ids = list(dict.fromkeys(entry_point_ids))
    if not ids:
        return {}
    values = replies.bytes_or_none_list(redis.mget([keys.indicator_reading(integration, ep_id) for ep_id in ids]))
    return {ep_id: _decode(raw) for ep_id, raw in zip(ids, values, strict=True)}


def _decode(raw: bytes | str | None) -> Reading | None:
    if raw is None:
        return None
    try:
        return Reading.from_json(raw)
    except (ValueError, KeyError, TypeError):
        return None  # a reading of an older shape: as if never checked


# -- refreshing (asks the contact center) ----------------------------------------------------------------------


def refresh(integration: Integration, entry_point: EntryPoint, redis: Redis) -> Reading:
    """Ask the contact center about one entry point, with an operator's short timeouts, and store the
    reading (also when it failed)."""
    backend = backend_for(integration)
    try:
        if backend is None:
            raise PermanentError(f"no backend for integration type {integration.type!r} is installed")
        availability = backend.availability(integration, entry_point, redis, timeout=TIMEOUT)
        reading = Reading(entry_point.id, time.time(), availability=availability)
    except (RetryableError, PermanentError) as exc:
        reading = Reading(entry_point.id, time.time(), error=str(exc))
        log.info(
            "indicator refresh failed",
            extra={"integration": integration.name, "entry_point_id": entry_point.id, "error": str(exc)},
        )
    store(redis, integration.name, reading)
    return reading


def refresh_all(integration: Integration, redis: Redis, *, deadline: float = DEADLINE_SECONDS) -> dict[str, Reading]:
    """Refresh every entry point side by side (POOL_SIZE threads), within `deadline`.

    Entry points not answered for by then get (and store) a reading naming the timeout; their
    threads finish in the background and store what they learn after all."""
    entry_points = list(integration.entry_points)
    if not entry_points:
        return {}
    pool = ThreadPoolExecutor(max_workers=min(POOL_SIZE, len(entry_points)), thread_name_prefix="indicators")
    futures = {pool.submit(refresh, integration, ep, redis): ep for ep in entry_points}
    done, _ = wait(futures, timeout=deadline)
    pool.shutdown(wait=False, cancel_futures=True)
    readings: dict[str, Reading] = {}
    for future, ep in futures.items():
        if future in done and future.exception() is None:
            readings[ep.name] = future.result()
        elif future in done:  # not a contact-center fault (those are readings): Redis, most likely
            readings[ep.name] = Reading(ep.id, time.time(), error=f"the reading was not stored: {future.exception()}")
        else:
            late = Reading(ep.id, time.time(), error=f"{integration.name} did not answer within {deadline:g} s")
            store(redis, integration.name, late)
            readings[ep.name] = late
    return readings


def as_dict(entry_point: EntryPoint, reading: Reading | None, now: float | None = None) -> dict[str, Any]:
    """A reading as the API and the page's script show it."""
    shown = indicators_of(entry_point, reading)
    checked = age(reading.checked_at, now) if reading is not None else "never checked"
    return {
        "entry_point": entry_point.name,
        "entry_point_id": entry_point.id,
        "checked_at": reading.checked_at if reading is not None else None,
        "checked": checked,
        "error": reading.error if reading is not None else None,
        "availability": asdict(reading.availability) if reading and reading.availability else None,
        "indicators": [asdict(shown[name]) for name in INDICATORS],
    }
