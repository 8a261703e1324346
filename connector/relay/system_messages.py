"""Rendering the configurable system messages for one thread (docs/messages.md; docs/architecture.md,
"Configuration concepts").

Which template: the entry point's override, else `message_templates/<locale>/<type>.txt.j2`; the
locale comes from the customer's channel details, else the asset's default, else the entry
point's. Rendering is sandboxed and capped (connector/messages); an empty result means the
message is turned off.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from connector.messages.context import MessageContext, customer_context, entry_point_context, hours_context
from connector.messages.templates import MessageTemplates, resolve_locale
from connector.runtime import Runtime
from connector.store.threads import Thread

_templates: dict[tuple[Path, int], MessageTemplates] = {}
_lock = threading.Lock()


def templates_of(runtime: Runtime) -> MessageTemplates:
    settings = runtime.settings
    key = (settings.templates_dir, settings.template_output_cap)
    with _lock:
        if key not in _templates:
            _templates[key] = MessageTemplates(settings.templates_dir, output_cap=settings.template_output_cap)
        return _templates[key]


def render(
    runtime: Runtime,
    thread: Thread,
    message_type: str,
    *,
    agent: dict[str, Any] | None = None,
    queue: dict[str, Any] | None = None,
    transfer: dict[str, Any] | None = None,
    attachment: dict[str, Any] | None = None,
    hours: dict[str, Any] | None = None,
    flow: bool = False,
) -> str | None:
    """The thread's `message_type` in its locale, or None when off; `flow`: a flow's own template."""
    config = runtime.config
    integration = config.integration(thread.integration) if thread.integration else None
    entry_point = integration.entry_point(thread.entry_point) if integration and thread.entry_point else None
    asset = config.asset(thread.channel, thread.asset)
    templates = templates_of(runtime)
    default_locale = (asset.default_locale if asset else None) or (entry_point.default_locale if entry_point else None)
    locale = resolve_locale(_customer_locale(thread), default_locale, locales_of(runtime))
    context = MessageContext(
        customer=customer_context(
            thread.channel, thread.customer, name=_customer_name(thread), locale=locale, details=thread.details
        ),
        agent=agent if agent is not None else _agent_of(thread),
        entry_point=entry_point_context(entry_point) if entry_point else {},
        queue=queue,
        transfer=transfer,
        attachment=attachment,
        hours=hours_context(hours.get("next_opening"), hours.get("time_zone"), locale) if hours else None,
    )
    return templates.render(
        message_type, context, locale=locale, entry_point=entry_point, overrides=config.templates, flow=flow
    )


def locales_of(runtime: Runtime) -> set[str]:
    """The locales system messages can be written in: the template folders and the UI's overrides."""
    return {*templates_of(runtime).locales(), *runtime.config.templates}


def default_locale_of(runtime: Runtime, thread: Thread) -> str:
    """The locale the thread's messages are written in when the customer's is unknown."""
    config = runtime.config
    integration = config.integration(thread.integration) if thread.integration else None
    entry_point = integration.entry_point(thread.entry_point) if integration and thread.entry_point else None
    asset = config.asset(thread.channel, thread.asset)
    default_locale = (asset.default_locale if asset else None) or (entry_point.default_locale if entry_point else None)
    return resolve_locale(None, default_locale, locales_of(runtime))


def _customer_locale(thread: Thread) -> str | None:
    """The conversation's locale (a flow's `language` step chose it), else the channel's."""
    if thread.locale:
        return thread.locale
    locale = thread.details.get("locale")
    return locale if isinstance(locale, str) and locale else None


def _customer_name(thread: Thread) -> str | None:
    for field in ("name", "profile_name", "first_name"):
        value = thread.details.get(field)
        if isinstance(value, str) and value:
            return value
    return None


def _agent_of(thread: Thread) -> dict[str, Any] | None:
    if thread.agent_name or thread.agent_id:
        return {"id": thread.agent_id, "name": thread.agent_name}
    return None
