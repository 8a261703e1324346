"""Reading back what the webhooks stored: the thread inboxes in Redis."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis as redis_lib

from connector.channels.base import InboundEvent, thread_id_for
from connector.store import keys

Inbox = Callable[[str, str, str], list[InboundEvent]]


@pytest.fixture
def inbox(redis: redis_lib.Redis) -> Inbox:
    """inbox(channel, asset, customer) → the events stored for that thread, oldest first."""

    def read(channel: str, asset: str, customer: str) -> list[InboundEvent]:
        key = keys.inbox(thread_id_for(channel, asset, customer))
        return [InboundEvent.from_json(raw) for raw in redis.lrange(key, 0, -1)]

    return read


@pytest.fixture
def stored(redis: redis_lib.Redis) -> Callable[[], list[InboundEvent]]:
    """Every event in every inbox, in provider-time order; for batches and 'nothing stored' checks."""

    def read() -> list[InboundEvent]:
        events = [
            InboundEvent.from_json(raw)
            for key in redis.scan_iter(match=keys.inbox("*"))
            for raw in redis.lrange(key, 0, -1)
        ]
        return sorted(events, key=lambda e: (e.timestamp, e.provider_id))

    return read


from tests.channels.senders import fake_dns  # noqa: E402, F401  (a fixture the send and media tests use)
