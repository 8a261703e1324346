"""What the channel send tests share: the test assets, a channel built from one with changed
options, and DNS answered without the network (`fake_dns`): every name resolves to a public
address except those in PRIVATE_NAMES; IP literals and localhost resolve for real."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

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
