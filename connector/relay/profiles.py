"""The customer's profile at the provider (Messenger's User Profile API), fetched by the drain when a
customer event starts a new conversation, before the contact center is called, and cached.

A webhook carries only the customer's address on some channels (Messenger: the PSID), so the name
and locale the contact center and the system messages use come from the provider's profile API
(docs/protocols/channels.md, "Customer details"). The profile is a nicety: a failed or slow call
(`connector.channels.meta.LOOKUP_TIMEOUT_SECONDS`) never delays the message beyond that time, never
fails, retries or dead-letters it; the conversation starts without the profile.

Cache (`keys.customer_profile`, per thread: one customer on one asset): a profile is kept 24 h, so a
returning customer costs no call; "none" (no permission, no such customer, the call failed) 5 min,
so an outage costs one call per customer every 5 minutes, not one per conversation. The fields asked
are kept with the answer: an asset changed to ask for more (profile_locale) asks again at once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from connector.channels.base import InboundEvent
from connector.errors import PermanentError
from connector.runtime import Runtime
from connector.store import keys

log = logging.getLogger(__name__)

PROFILE_TTL_SECONDS = 24 * 3600
"""How long a profile found is reused: a returning customer costs no call within a day."""
NO_PROFILE_TTL_SECONDS = 5 * 60
"""How long "no profile" (no permission, unknown customer, the call failed) is reused."""


def customer_profile(runtime: Runtime, event: InboundEvent) -> dict[str, str]:
    """The provider's details of the event's customer ({} when the channel has no profile API or the
    provider has none); from the cache when fresh, else one call. Never raises for the profile's
    sake: whatever goes wrong is logged at WARNING and the answer is {}."""
    try:
        channel = runtime.channel(event.channel, event.asset)
    except PermanentError:
        return {}  # the asset is gone: the drain reports that where it matters
    fields = list(channel.profile_fields)
    if not fields:
        return {}
    key = keys.customer_profile(event.thread_id)
    cached = _cached(runtime.redis.get(key), fields)
    if cached is not None:
        return cached
    try:
        profile = channel.profile(event.customer)
    except Exception as exc:  # a channel's hook must not raise; if one does, the message still goes on
        log.warning(
            "customer profile lookup failed; going on without it",
            extra={"conversation": event.thread_id, "channel": event.channel, "error": type(exc).__name__},
        )
        profile = None
    ttl = PROFILE_TTL_SECONDS if profile is not None else NO_PROFILE_TTL_SECONDS
    runtime.redis.set(key, json.dumps({"fields": fields, "profile": profile}, sort_keys=True), ex=ttl)
    return dict(profile or {})


def _cached(raw: Any, fields: list[str]) -> dict[str, str] | None:
    """The cached answer for these fields ({} for a cached "none"); None when there is none to use."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("fields") != fields:
        return None
    profile = data.get("profile")
    if not isinstance(profile, dict):
        return {}
    return {k: v for k, v in profile.items() if isinstance(k, str) and isinstance(v, str)}
