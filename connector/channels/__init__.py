"""The channel registry: channel name → Channel class. Adding a channel is adding a module here."""

from __future__ import annotations

from connector.channels.apple import Apple
from connector.channels.base import Channel
from connector.channels.inapp import InApp
from connector.channels.messenger import Messenger
from connector.channels.sms import Sms
from connector.channels.whatsapp import WhatsApp

CHANNELS: dict[str, type[Channel]] = {cls.name: cls for cls in (Sms, Messenger, WhatsApp, Apple, InApp)}
"""Every channel by name, in the order operators see them."""
NAMES = tuple(CHANNELS)
MESSAGE_EVENTS = tuple(dict.fromkeys(cls.message_event for cls in CHANNELS.values()))
"""The rule `event` names a customer message can have (`incoming_message`; SMS: `mo`)."""


def channel_class(name: str) -> type[Channel] | None:
    return CHANNELS.get(name)
