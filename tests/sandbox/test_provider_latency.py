"""A slow provider: each channel's sends answer after the channel's delay and are recorded only then,
the sends in flight and their peak are counted, and the control surface sets, shows, validates and
resets it (connector/sandbox/providers/store.py, `SendLatency`; hooks.py applies it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from connector.config.loader import load_config
from connector.config.model import Config
from connector.sandbox.http import LoopbackServer
from connector.sandbox.providers import CHANNELS, ProviderSimulators
from tests.sandbox import CONFIG_DIR
from tests.sandbox.test_providers import (
    OPAQUE,
    apple_message,
    asset,
    inapp_post,
    inapp_text,
    messenger_send,
    text_to,
    twilio_send,
    wa_text,
    whatsapp_send,
)

DELAY = 0.3
CONCURRENT = 6


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(CONFIG_DIR)


@pytest.fixture
def sims(config: Config) -> Iterator[ProviderSimulators]:
    server = LoopbackServer(threads=CONCURRENT + 4).start()  # a slow send holds a server thread
    try:
        providers = ProviderSimulators(config.assets, server.url)
        server.app = providers.create_app()
        yield providers
    finally:
        server.stop()


def sender(sims: ProviderSimulators, config: Config, channel: str) -> Callable[[str], requests.Response]:
    """One accepted text send on `channel`, as its provider's API takes it."""
    target = asset(config, channel)
    if channel == "sms":
        return lambda text: twilio_send(sims, target, {"To": "+14155550123", "From": target["number"], "Body": text})
    if channel == "messenger":
        return lambda text: messenger_send(sims, target, text_to("6781234567890123", text))
    if channel == "whatsapp":
        return lambda text: whatsapp_send(sims, target, wa_text("5511987654321", text))
    if channel == "apple":
        return lambda text: apple_message(sims, target, OPAQUE, {"type": "text", "body": text})[0]
    return lambda text: inapp_post(sims, target, inapp_text(f"key-{text}", text))


def timed(send: Callable[[], requests.Response]) -> tuple[requests.Response, float, float]:
    """(the answer, when the request left, how long it took to answer)."""
    began = time.time()
    response = send()
    return response, began, time.time() - began


def control(sims: ProviderSimulators, body: Any = None, **kwargs: Any) -> requests.Response:
    return requests.post(f"{sims.base_url}/providers/control/delay", json=body, timeout=5, **kwargs)


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_slow_channel_answers_each_send_after_its_delay_and_records_it_then(
    sims: ProviderSimulators, config: Config, channel: str
) -> None:
    sims.set_delay(channel, DELAY)
    send = sender(sims, config, channel)
    answers: list[tuple[requests.Response, float, float]] = []
    request = threading.Thread(target=lambda: answers.append(timed(lambda: send("slow"))))
    request.start()
    time.sleep(DELAY / 3)
    assert sims.latency.in_flight == 1, "the send is in flight at the provider"
    assert sims.store.sent(channel) == [], "not recorded before the provider answers"
    request.join(10)

    [(response, began, took)] = answers
    assert response.ok, response.text
    assert took >= DELAY
    [sent] = sims.store.sent(channel)
    assert sent["text"] == "slow"
    assert sent["at"] >= began + DELAY, "recorded when it answered, after the delay"
    assert sims.latency.in_flight == 0


def test_the_delay_is_per_channel_and_none_means_every_channel(sims: ProviderSimulators, config: Config) -> None:
    sims.set_delay("whatsapp", 1.0)
    response, _, took = timed(lambda: sender(sims, config, "sms")("quick"))
    assert response.ok and took < 0.5, f"SMS is not slowed by WhatsApp's delay: {took:.2f} s"

    sims.set_delay(None, 2)
    assert sims.latency.delays() == dict.fromkeys(CHANNELS, 2.0)
    sims.set_delay("sms", 0)
    assert sims.latency.delays() == {**dict.fromkeys(CHANNELS, 2.0), "sms": 0.0}


def test_typing_read_receipts_and_refusals_are_as_slow_as_messages(sims: ProviderSimulators, config: Config) -> None:
    """One decision: a slow provider is slow on every call of its send endpoint, whatever it carries."""
    sims.set_delay(None, DELAY)
    page, number = asset(config, "messenger"), asset(config, "whatsapp")
    typing_on = {"recipient": {"id": "42"}, "sender_action": "typing_on"}
    typing, _, took = timed(lambda: messenger_send(sims, page, typing_on))
    assert typing.ok and took >= DELAY
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1"}
    receipt, _, took = timed(lambda: whatsapp_send(sims, number, read))
    assert receipt.ok and took >= DELAY
    assert [s["kind"] for s in sims.store.sent()] == ["typing_on", "read"]

    sims.set_down("whatsapp")
    refused, _, took = timed(lambda: whatsapp_send(sims, number, wa_text("5511987654321")))
    assert refused.status_code == 503 and took >= DELAY


def test_peak_in_flight_counts_the_sends_answered_at_once(sims: ProviderSimulators, config: Config) -> None:
    sims.set_delay("whatsapp", DELAY)
    send = sender(sims, config, "whatsapp")
    threads = [threading.Thread(target=send, args=(f"m{n}",)) for n in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(sims.store.sent("whatsapp")) == CONCURRENT
    state = requests.get(f"{sims.base_url}/providers/control/delay", timeout=5).json()
    assert (state["in_flight"], state["peak_in_flight"]) == (0, CONCURRENT)
    send("alone")
    assert sims.latency.peak_in_flight == CONCURRENT, "the peak stays until reset"
    assert control(sims, {"reset_peak": True}).json()["peak_in_flight"] == 0
    send("after the reset")
    assert sims.latency.peak_in_flight == 1


def test_the_control_endpoint_sets_and_shows_the_delays(sims: ProviderSimulators) -> None:
    answer = control(sims, {"channel": "whatsapp", "delay_seconds": 1})
    assert answer.status_code == 200
    assert answer.json() == {
        "delays": {**dict.fromkeys(CHANNELS, 0.0), "whatsapp": 1.0},
        "in_flight": 0,
        "peak_in_flight": 0,
    }
    assert control(sims, {"delay_seconds": 0.5}).json()["delays"] == dict.fromkeys(CHANNELS, 0.5)
    assert control(sims).json()["delays"] == dict.fromkeys(CHANNELS, 0.5), "an empty body only reads"
    assert requests.get(f"{sims.base_url}/providers/control/delay", timeout=5).json()["delays"]["sms"] == 0.5


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"delay_seconds": 61}, "delay_seconds"),
        ({"delay_seconds": "1"}, "delay_seconds"),
        ({"delay_seconds": True}, "delay_seconds"),
        ({"delay_seconds": None}, "delay_seconds"),
        ({"channel": "fax", "delay_seconds": 1}, "channel"),
        ({"channel": 5, "delay_seconds": 1}, "channel"),
        ({"channel": "sms"}, "delay_seconds"),
        ([1], "JSON object"),
    ],
)
def test_the_control_endpoint_refuses_bad_values_with_a_400_that_names_them(
    sims: ProviderSimulators, body: Any, names: str
) -> None:
    answer = control(sims, body)
    assert answer.status_code == 400
    assert names in answer.json()["message"]
    assert sims.latency.delays() == dict.fromkeys(CHANNELS, 0.0), "nothing changed"


def test_a_non_json_body_is_refused(sims: ProviderSimulators) -> None:
    answer = requests.post(f"{sims.base_url}/providers/control/delay", data=b"delay=1", timeout=5)
    assert answer.status_code == 400
    assert "JSON object" in answer.json()["message"]


def test_reset_clears_the_delays(sims: ProviderSimulators, config: Config) -> None:
    control(sims, {"delay_seconds": 1})
    assert requests.post(f"{sims.base_url}/providers/reset", timeout=5).status_code == 204
    assert sims.latency.delays() == dict.fromkeys(CHANNELS, 0.0)
    response, _, took = timed(lambda: sender(sims, config, "whatsapp")("quick again"))
    assert response.ok and took < 0.5, f"answered at once after the reset: {took:.2f} s"
