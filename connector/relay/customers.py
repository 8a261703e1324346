"""The customer's side of a thread as the relay sees it: the channel instance that talks to them
and who they are to that channel."""

from __future__ import annotations

import threading

from connector.channels import channel_class
from connector.channels.base import Channel
from connector.channels.sending import Recipient
from connector.errors import PermanentError
from connector.runtime import Runtime
from connector.store.threads import Thread

_instances: dict[tuple[int, str, str], Channel] = {}
_lock = threading.Lock()


def channel_for(runtime: Runtime, thread: Thread) -> Channel:
    """One channel instance per (configuration, asset) and process, so its HTTP session (and its
    connection pool) is reused across sends."""
    config = runtime.config
    cache_key = (id(config), thread.channel, thread.asset)
    with _lock:
        channel = _instances.get(cache_key)
        if channel is None:
            cls = channel_class(thread.channel)
            asset = config.asset(thread.channel, thread.asset)
            if cls is None or asset is None:
                raise PermanentError(
                    f"{thread.channel} asset {thread.asset!r} is no longer configured: "
                    "messages for this customer cannot be sent"
                )
            channel = _instances[cache_key] = cls(asset, runtime.settings)
    return channel


def recipient(thread: Thread) -> Recipient:
    return Recipient(
        address=thread.customer,
        details=thread.details,
        last_inbound_at=thread.last_inbound_at,
        last_message_id=thread.last_message_id,
    )
