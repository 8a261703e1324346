"""The drain's side of the steps that wait for no answer (connector/flows/branching.py): the facts
they decide on, gathered from the thread, the event and the configuration; and what their decisions
do to the thread, under its lease, in the commit that takes the event out of the inbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connector.backends import outbox
from connector.channels.base import InboundEvent
from connector.conversations import State
from connector.flows import branching
from connector.relay import system_messages
from connector.rules import PHONE_CHANNELS
from connector.runtime import Runtime
from connector.store.threads import Thread

ACTIONS = (branching.LocaleSet, branching.Branched, branching.HoursChecked)


def opening_zone(opening: datetime | None) -> str | None:
    """The IANA name of the zone `opening` is in (hours.next_opening answers in the calendar's)."""
    zone = opening.tzinfo if opening else None
    return str(zone) if zone is not None else None


def facts_for(runtime: Runtime, thread: Thread, event: InboundEvent) -> branching.Facts:
    """What the thread's steps decide on. The time is the event's acceptance (`received_at`, else the
    provider's timestamp), so the same event decides the same when a crash makes the drain repeat it."""
    accepted = event.received_at or event.timestamp
    integration = runtime.config.integration(thread.integration) if thread.integration else None
    calendars = {ep.name: ep.hours for ep in integration.entry_points if ep.hours} if integration else {}
    locale = thread.details.get("locale")
    return branching.Facts(
        at=datetime.fromtimestamp(accepted, UTC) if accepted else None,
        locales=tuple(sorted(system_messages.locales_of(runtime))),
        default_locale=system_messages.default_locale_of(runtime, thread),
        channel_locale=locale if isinstance(locale, str) and locale else None,
        phone=thread.customer if thread.channel in PHONE_CHANNELS else None,
        language=thread.language,
        attributes=dict(thread.attributes),
        entry_point=thread.entry_point,
        calendars=calendars,
    )


def apply(runtime: Runtime, thread: Thread, entry: dict[str, Any], action: branching.StepAction) -> str | None:
    """Do what a step decided; fills the timeline's `flow` entry and returns its note (None: none)."""
    flow = entry["flow"]
    if isinstance(action, branching.LocaleSet):
        choice = action.choice
        thread.locale, thread.language = choice.locale, action.language
        entry["language"] = {
            "locale": choice.locale,
            "source": choice.source,
            "detected": choice.language,
            "confidence": round(choice.confidence, 2),
            "customer": action.language,
        }
        return f"flow {flow}: locale {choice.locale} ({choice.source})"
    if isinstance(action, branching.Branched):
        entry["branch"] = {"step": action.step, "entry_point": action.entry_point, "branch": action.branch}
        if action.entry_point is None:
            return f"flow {flow}: no branch of {action.step} matched, entry point {thread.entry_point} stays"
        thread.entry_point = action.entry_point
        return f"flow {flow}: {action.step} chose entry point {action.entry_point}"
    entry["hours"] = {"step": action.step, "open": action.open, "calendar": action.calendar}
    if action.open:
        return None
    opening = action.next_opening
    # The instant with its offset: the template formats it in the customer's locale when it is sent.
    outbox.system_message(
        runtime,
        thread.id,
        thread.sequence,
        "out_of_hours",
        hours={"next_opening": opening.isoformat() if opening else None, "time_zone": opening_zone(opening)},
    )
    if action.closed == "discard":
        thread.state = State.CLOSED
        entry["outcome"] = "closed: out of hours"
        return f"flow {flow}: out of hours ({action.calendar}): conversation closed"
    return f"flow {flow}: out of hours ({action.calendar}): routed anyway"
