"""The connector's XMPP notification source against the simulator's notification service: endpoints,
a listener that collects its events, and waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.blending.events import DialogChanged, VoiceStateChanged
from connector.blending.finesse.updates import Event
from connector.blending.finesse.xmpp import XmppEndpoint, XmppNotifications
from connector.sandbox.finesse import FinesseSandbox
from tests.blending.finesse_helpers import AGENT
from tests.helpers import wait_for

FAST = {"backoff_initial": 0.05, "backoff_max": 0.5, "connect_timeout": 3.0, "ping_timeout": 2.0}


def endpoint_of(sb: FinesseSandbox, **overrides: object) -> XmppEndpoint:
    """The sandbox's XMPP service as the connector reaches it by default: STARTTLS, its certificate trusted."""
    values: dict[str, object] = {"host": sb.xmpp_host, "port": sb.xmpp_port, "domain": sb.xmpp_domain}
    if sb.xmpp_ca_file is not None:
        values["ca_bundle"] = str(sb.xmpp_ca_file)
    values.update(overrides)
    return XmppEndpoint(**values)  # type: ignore[arg-type]


class Listener:
    """An XmppNotifications with its events collected; stopped at teardown."""

    def __init__(self, endpoint: object, **options: object) -> None:
        self.events: list[Event] = []
        settings = {**FAST, **options}
        self.source = XmppNotifications(endpoint, self.events.append, **settings).start()  # type: ignore[arg-type]

    def kinds(self) -> list[tuple[str, str, bool]]:
        out = []
        for e in list(self.events):
            if isinstance(e, VoiceStateChanged):
                out.append(("voice", e.state, False))
            elif isinstance(e, DialogChanged):
                out.append((e.call_type, e.state, e.ended))
        return out


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        listener.source.stop()


def listen(listeners: list[Listener], endpoint: object, **options: object) -> Listener:
    listener = Listener(endpoint, **options)
    listeners.append(listener)
    return listener


def connected(listener: Listener, agent: str = AGENT) -> None:
    wait_for(lambda: listener.source.connected(agent), timeout=5, what=f"agent {agent} subscribed")
