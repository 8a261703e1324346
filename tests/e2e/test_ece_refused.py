"""ECE down as the network shows it: its host refuses connections (ECONNREFUSED) while every other
simulator stays up. The connector acknowledges what customers write meanwhile, and once ECE listens
again every message reaches it once, in order. The refusal comes from the TcpForwarder
(connector/sandbox/forwarder.py) put where the ECE integration's base_url points."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from connector.sandbox.forwarder import TcpForwarder
from connector.store import keys
from tests.e2e.delivery import Traffic, delivered, open_chats
from tests.e2e.stack import ASSETS, Stack, settle
from tests.helpers import wait_for

PER_SIDE = 4


@pytest.fixture
def refusable_ece(stack_factory) -> Iterator[tuple[Stack, TcpForwarder]]:
    """The stack with its ECE simulator moved to another port and a forwarder on the port the
    configuration names (its base_url is fixed when the stack is built)."""
    stack = stack_factory()
    named_port = stack.ece_server.port
    stack.ece_server.stop()
    stack.ece_server.port = 0
    stack.ece_server.start()
    forwarder = TcpForwarder("127.0.0.1", stack.ece_server.port, port=named_port).start()
    try:
        yield stack, forwarder
    finally:
        forwarder.stop()


def customers_write(stack: Stack, traffic: Traffic) -> None:
    traffic.per_side = PER_SIDE
    for k in range(PER_SIDE):
        for chat in traffic.chats:
            stack.customer.send_text(ASSETS[chat.channel], chat.customer, f"{chat.tag} c{k}")  # raises unless 200


def customer_texts_on_ece(stack: Stack) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for conversation in stack.conversations():
        texts = [r.content or "" for r in list(conversation.received) if r.kind == "message"]
        found[texts[0].split()[0]] = [t for t in texts if " c" in t]
    return found


def test_while_ece_refuses_connections_messages_wait_then_arrive_once_in_order(refusable_ece) -> None:
    stack, forwarder = refusable_ece
    traffic = open_chats(stack, 1)  # through the forwarder: one conversation per channel
    assert forwarder.connections >= 1

    forwarder.refuse()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", forwarder.port), timeout=2)
    customers_write(stack, traffic)  # acknowledged by the connector while ECE is unreachable
    redis = stack.runtime.redis
    wait_for(lambda: redis.zcard(keys.deferred()), timeout=10, what="the drain to back off from a refused ECE")
    settle(1.0)
    assert delivered(stack) == 0, "nothing reached ECE while it refused connections"

    forwarder.accept()
    wait_for(lambda: delivered(stack) >= len(traffic.chats) * PER_SIDE, timeout=30, what="the backlog on ECE")
    settle(0.5)
    expected = {chat.tag: [f"{chat.tag} c{k}" for k in range(PER_SIDE)] for chat in traffic.chats}
    assert customer_texts_on_ece(stack) == expected, "each message once, in order"
