"""Live operator pages: Server-Sent Events that tell an open page what changed (`/admin/live/...`).

One stream per page, over the same mechanism as the agents' desktop (connector/live.py: slots, the
SSE body, heartbeats, a bounded life, `Last-Event-ID`), read from probes (operations/watch.py). A page
names its stream with `live_stream(topic, ...)` in its template: the URL carries the version the
page was rendered from, so a change between the render and the browser's connection is not missed.
The page's script (static/live.js) then re-reads the page and swaps the parts marked
`data-live-region`, or, for the entry-point lights, paints the readings the event carries
(static/integrations.js). Without JavaScript the pages are as they were: a reload shows the same.

The guard applies: a stream needs an operator's login like any page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, request, url_for

from connector import live
from connector.admin.access import guard, runtime
from connector.operations import watch

blueprint = guard(Blueprint("admin_live", __name__, url_prefix="/admin/live"))


def _probes() -> dict[str, tuple[str, Callable[..., live.Probe]]]:
    """topic → (endpoint, probe of the topic given the endpoint's arguments)."""
    rt = runtime()
    return {
        "conversations": ("admin_live.conversations", lambda: watch.conversations(rt.redis)),
        "conversation": ("admin_live.conversation", lambda thread_id: watch.conversation(rt.redis, thread_id)),
        "dead_letters": ("admin_live.dead_letters", lambda: watch.dead_letters(rt.redis)),
        "indicators": ("admin_live.indicators", lambda name: watch.entry_point_lights(rt, name)),
    }


@blueprint.app_template_global("live_stream")
def live_stream(topic: str, **args: Any) -> str:
    """The URL of `topic`'s stream from what the page shows now (`?after=` the current version)."""
    endpoint, make = _probes()[topic]
    current, _ = make(**args)()
    return url_for(endpoint, **args, after=current)


def _stream(topic: str, **args: Any) -> Response:
    after = request.headers.get("Last-Event-ID") or request.args.get("after") or None
    if after is not None and not live.valid_version(after):
        abort(400, "A live stream resumes from a version it sent (its `id:`); reload the page.")
    _, make = _probes()[topic]
    return live.event_stream(live.polled(make(**args)), after, live.operator_slots(runtime().settings.web_threads))


@blueprint.get("/conversations")
def conversations() -> Response:
    return _stream("conversations")


@blueprint.get("/conversations/<thread_id>")
def conversation(thread_id: str) -> Response:
    return _stream("conversation", thread_id=thread_id)


@blueprint.get("/dead-letters")
def dead_letters() -> Response:
    return _stream("dead_letters")


@blueprint.get("/integrations/<name>/indicators")
def indicators(name: str) -> Response:
    if runtime().config.integration(name) is None:
        abort(404, f"No integration named {name}.")
    return _stream("indicators", name=name)
