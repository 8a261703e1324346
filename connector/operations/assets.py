"""Assets as operators see them (UI and API alike): secrets masked, where the item comes from, and
the exact URLs to paste into the provider's console."""

from __future__ import annotations

from typing import Any

from connector.channels import channel_class
from connector.channels.base import Channel
from connector.config import raw as raw_shape
from connector.config.model import Asset
from connector.config.overrides import masked
from connector.runtime import Runtime

KIND = "assets"


def webhook_url(rt: Runtime, asset: Asset) -> str:
    return f"{rt.settings.public_base_url.rstrip('/')}/webhooks/{asset.channel}/{asset.name}"


def status_url(rt: Runtime, asset: Asset) -> str | None:
    """The separate delivery-receipt URL, for channels whose provider posts receipts elsewhere."""
    cls = channel_class(asset.channel)
    if cls is None or cls.parse_status is Channel.parse_status:
        return None
    return f"{webhook_url(rt, asset)}/status"


def shown(rt: Runtime, asset: Asset) -> dict[str, Any]:
    data = masked(KIND, raw_shape.of(KIND, asset))
    data.update(
        source=asset.source,
        read_only=asset.source is not None,
        webhook_url=webhook_url(rt, asset),
        status_url=status_url(rt, asset),
    )
    return data
