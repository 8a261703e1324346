"""The ECE API profile's paths (docs/protocols/ece.md, "Overriding paths"), in one table: the
names an integration's `api_paths` may override and their defaults, so the configuration and the
client read one list.

Only the token, configuration and the four family-A availability checks are confirmed; the rest is
inferred, so every path can be overridden per integration with `api_paths: {name: path}` and a site
whose ECE differs changes configuration, not code. Placeholders: `{v}` the API version, `{ep}` the
entry point id, `{id}` the conversation id, `{ref}` the client reference a start carried.
`api_paths.api_version` sets `{v}` (default v19) until Integration has a field of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import quote

API_VERSION = "v19"
API_VERSION_KEY = "api_version"

_CLIENT_APPS = "/system/ws/{v}/clientapplications"
_CONVERSATIONS = f"{_CLIENT_APPS}/messaging/conversations"
_ENTRY_POINT = "/system/egain/chat/entrypoint"  # family A: no auth, JSON with Accept: application/json

DEFAULT_PATHS: Mapping[str, str] = MappingProxyType(
    {
        # confirmed (docs/protocols/ece.md, "Client-application token", "Entry point configuration",
        # "Availability checks")
        "token": f"{_CLIENT_APPS}/authentication/oauth2/token",
        "configuration": f"{_CLIENT_APPS}/messaging/configuration?entrypoint={{ep}}",
        "agent_availability": f"{_ENTRY_POINT}/agentAvailability/{{ep}}",
        "capacity": f"{_ENTRY_POINT}/capacity/{{ep}}",
        "eligibility": f"{_ENTRY_POINT}/checkEligibility/{{ep}}",
        "chat_allowed": f"{_ENTRY_POINT}/chatAllowed/{{ep}}",
        # inferred [I]: the exact ECE paths were never captured
        "live_session_status": f"{_ENTRY_POINT}/liveSessionStatus/{{ep}}",
        "start": _CONVERSATIONS,
        # the conversation a start with this client reference created, if any (docs/protocols/ece.md,
        # "Start conversation": asked only when a start was attempted but its answer never recorded)
        "find_conversation": f"{_CONVERSATIONS}?reference={{ref}}",
        "send_message": f"{_CONVERSATIONS}/{{id}}/messages",
        "send_attachment": f"{_CONVERSATIONS}/{{id}}/attachments",
        "end": f"{_CONVERSATIONS}/{{id}}/end",
    }
)

NAMES = frozenset(DEFAULT_PATHS)


def api_version(api_paths: Mapping[str, str]) -> str:
    return api_paths.get(API_VERSION_KEY) or API_VERSION


def unknown_names(api_paths: Mapping[str, str]) -> list[str]:
    """Override keys that name no path (typos): they would be silently ignored otherwise."""
    return sorted(k for k in api_paths if k not in NAMES and k != API_VERSION_KEY)


def path_for(
    name: str,
    api_paths: Mapping[str, str],
    *,
    ep: str | None = None,
    id: str | None = None,
    ref: str | None = None,
) -> str:
    """The path (or absolute URL, if an override gives one) of `name`, placeholders filled in.

    Ids are percent-encoded, so an id can never change the shape of the path or the query."""
    template = api_paths.get(name) or DEFAULT_PATHS[name]
    values = {"{v}": api_version(api_paths), "{ep}": ep, "{id}": id, "{ref}": ref}
    for placeholder, value in values.items():
        if value is not None:
            template = template.replace(placeholder, quote(str(value), safe=""))
    return template
