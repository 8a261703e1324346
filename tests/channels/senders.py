"""What the channel send tests share: the test assets, a channel built from one with changed
options, the providers' error bodies, and DNS answered without the network (`fake_dns`): every
name resolves to a public address except those in PRIVATE_NAMES; IP literals and localhost resolve
for real."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from connector.channels.base import Channel
from connector.config.loader import load_config
from connector.settings import Settings

CONFIG = load_config(Path(__file__).resolve().parent.parent / "config")
C = TypeVar("C", bound=Channel)


def channel(cls: type[C], asset_name: str, *, sandbox: bool = False, **options: object) -> C:
    """The test asset `asset_name` as a `cls` channel, with `options` changed."""
    asset = CONFIG.asset(cls.name, asset_name)
    assert asset is not None, f"no {cls.name} asset {asset_name!r} in tests/config"
    return cls(replace(asset, options={**asset.options, **options}), Settings(sandbox=sandbox))


def twilio_error(code: int, message: str = "Something new", *, status: int = 400) -> dict[str, Any]:
    """Twilio's REST error body: `{"code", "message", "more_info", "status"}`."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def graph_error(
    code: int, message: str = "An error", *, subcode: int | None = None, whatsapp: bool = False
) -> dict[str, Any]:
    """Meta's Graph API error body; WhatsApp Cloud adds `error_data` with the details."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if whatsapp:
        error["error_data"] = {"messaging_product": "whatsapp", "details": message}
    return {"error": error}


PUBLIC_ADDRESS = "151.101.1.1"
PRIVATE_NAMES = {
    "files.internal.test": ["10.1.2.3"],
    "metadata.internal.test": ["169.254.169.254"],
    "mixed.internal.test": [PUBLIC_ADDRESS, "127.0.0.1"],  # one bad answer is enough to refuse
    "mapped.internal.test": ["::ffff:192.168.0.1"],
}
UNRESOLVABLE = "nowhere.invalid"


@pytest.fixture
def fake_dns(monkeypatch):
    """Resolve names without the network; IP literals and localhost resolve for real."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == UNRESOLVABLE:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        try:
            real(host, port, flags=socket.AI_NUMERICHOST)
        except (socket.gaierror, UnicodeError):
            if host != "localhost":
                addresses = PRIVATE_NAMES.get(host, [PUBLIC_ADDRESS])
                return [
                    (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                    for a in addresses
                ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
