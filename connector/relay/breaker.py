"""A circuit breaker per contact-center integration, shared by every worker through Redis.

Without it, an ECE outage makes every conversation retry on its own: each attempt holds a drain
loop for up to the connect timeout (3 s when ECE is black-holed, so a few conversations stall the
relay for everyone, other integrations included), and after ECE recovers each conversation waits
out its own backoff, up to `retry_max_seconds`, before its customer is heard.

With it:
- after FAILURE_THRESHOLD outage failures in a row (no connection, timeout, 5xx: `RetryableError.outage`)
  the breaker opens for a cooldown; calls fail at once, without touching the network, and their
  threads are parked on the service;
- when the cooldown ends one call probes (a Redis key held for PROBE_SECONDS); if it fails the
  cooldown doubles, up to `retry_max_seconds`;
- the first call that succeeds closes the breaker and wakes every parked thread at once.

Parked threads keep their own retry schedule as well, so a lost probe or a crashed worker never
strands them: they try again, cheaply, at their next retry time. A backend marks outages on its
RetryableError (the ECE client does); `hybrid` has no backend yet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import Redis

from connector.config.model import Integration
from connector.errors import RetryableError
from connector.store import keys
from connector.store.boxes import Box

log = logging.getLogger(__name__)

FAILURE_THRESHOLD = 5
"""Outage failures in a row, across all conversations, that open the breaker."""
FIRST_COOLDOWN_SECONDS = 2.0
PROBE_SECONDS = 15.0
"""How long one probing call has before another caller may probe (longer than ECE's timeouts)."""
STATE_TTL_SECONDS = 24 * 3600
"""A breaker nobody has called for a day is forgotten (the service or its name may be gone)."""

# KEYS: state, probe. ARGV: probe ms. Returns {until, failures}: until is 0 when the call may go
# ahead (closed, or this call probes a half-open breaker), else the time (unix s) before which the
# service is not called; failures counted so far (0: a success has nothing to close).
_ADMIT = """
local state = redis.call('HMGET', KEYS[1], 'open_until', 'failures')
local open_until = tonumber(state[1] or '0')
local failures = tonumber(state[2] or '0')
if open_until == 0 then return {'0', failures} end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if now < open_until then return {tostring(open_until), failures} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {'0', failures} end
return {tostring(now + tonumber(ARGV[1]) / 1000), failures}
"""

# KEYS: state, probe. ARGV: threshold, first cooldown, longest cooldown, state ttl.
# Counts an outage failure; returns the open_until it set, or 0 while the breaker stays closed.
# Failures of calls that started before the breaker opened do not extend it; a failed probe
# (the cooldown is over) doubles the cooldown.
_FAILED = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if now < open_until then return '0' end
local cooldown
if open_until > 0 then
  redis.call('DEL', KEYS[2])
  cooldown = math.min(tonumber(ARGV[3]), tonumber(redis.call('HGET', KEYS[1], 'cooldown')) * 2)
elseif failures >= tonumber(ARGV[1]) then
  cooldown = tonumber(ARGV[2])
else
  return '0'
end
open_until = now + cooldown
redis.call('HSET', KEYS[1], 'open_until', tostring(open_until), 'cooldown', tostring(cooldown))
return tostring(open_until)
"""

# KEYS: state, probe, parked, deferred. ARGV: retry state key prefix, inbox box name, the suffix
# of a thread's deferred member for its inbox (keys.deferred_member).
# Closes the breaker; every parked thread is due at once (deferred now, its inbox's wait cleared).
# Returns how many were parked, or -1 when the breaker was closed with no failures counted.
_SUCCEEDED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('DEL', KEYS[1], KEYS[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local parked = redis.call('ZRANGE', KEYS[3], 0, -1)
for _, thread in ipairs(parked) do
  redis.call('HDEL', ARGV[1] .. thread, ARGV[2] .. '_until')
  redis.call('ZADD', KEYS[4], now, thread .. ARGV[3])
end
redis.call('DEL', KEYS[3])
return #parked
"""


@dataclass(frozen=True)
class Refused:
    """The breaker is open: the service is not called before `until` (unix s)."""

    until: float


class Parked(RetryableError):
    """Not called: the service's breaker is open. The drain parks the thread on `service`."""

    def __init__(self, service: str, until: float, now: float) -> None:
        super().__init__(
            f"{service} is unreachable (breaker open after repeated failures); next probe in "
            f"{max(0.0, until - now):.1f} s, and waiting conversations resume as soon as one call succeeds",
            wait=max(0.0, until - now),
        )
        self.service = service


class Breaker:
    """The breaker of one service, for one call: `admit`, then `failed` or `succeeded`. Each is one
    round trip, but `succeeded` costs nothing when `admit` saw no failures (the usual case)."""

    def __init__(self, redis: Redis, service: str, longest_cooldown: float) -> None:
        self.redis = redis
        self.service = service
        self.longest_cooldown = longest_cooldown
        self.failures_seen = True  # until `admit` says otherwise, `succeeded` checks
        self._admit = redis.register_script(_ADMIT)
        self._failed = redis.register_script(_FAILED)
        self._succeeded = redis.register_script(_SUCCEEDED)

    def admit(self) -> Refused | None:
        """None: call the service. Refused: do not; the thread is parked (`park`)."""
        until, failures = self._admit(
            keys=[keys.breaker(self.service), keys.breaker_probe(self.service)],
            args=[int(PROBE_SECONDS * 1000)],
        )
        self.failures_seen = int(failures) > 0
        return Refused(float(until)) if float(until) else None

    def failed(self) -> float:
        """An outage failure of a call that was admitted; returns the end of the cooldown when this
        failure opened the breaker (or failed its probe), else 0: the caller probes then."""
        opened = float(
            self._failed(
                keys=[keys.breaker(self.service), keys.breaker_probe(self.service)],
                args=[FAILURE_THRESHOLD, FIRST_COOLDOWN_SECONDS, self.longest_cooldown, STATE_TTL_SECONDS],
            )
        )
        if opened:
            log.warning(
                "service unreachable: breaker open, conversations wait and resume together",
                extra={"service": self.service, "open_until": round(opened, 3)},
            )
        return opened

    def succeeded(self) -> None:
        """A call that reached the service: close the breaker and wake what it parked. Failures
        another worker counts between `admit` and now are closed by the next call that sees them."""
        if not self.failures_seen:
            return
        woken = int(
            self._succeeded(
                keys=[
                    keys.breaker(self.service),
                    keys.breaker_probe(self.service),
                    keys.parked(self.service),
                    keys.deferred(),
                ],
                args=[keys.retry_state(""), Box.IN.value, keys.deferred_member("", Box.IN.value)],
            )
        )
        if woken >= 0:
            log.warning("service reachable again: breaker closed", extra={"service": self.service, "woken": woken})


def park(client: Redis, service: str, thread_id: str, now: float) -> None:
    """The thread's inbox head waits for `service`: wake it when the breaker closes."""
    client.zadd(keys.parked(service), {thread_id: now})
    client.expire(keys.parked(service), int(STATE_TTL_SECONDS))


def service_of(integration: Integration) -> str:
    """The breaker name of an integration's contact-center service (`ece:<name>`, `hybrid:<name>`)."""
    return f"{integration.type}:{integration.name}"
