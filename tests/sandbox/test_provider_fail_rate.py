"""A flaky provider: a share of each channel's sends fails at random, in that provider's error shape,
from a seeded stream a run can repeat, counted per status; the control surface sets, shows and
validates it (connector/sandbox/providers/store.py, `Faults.set_fail_rate`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from connector.config.loader import load_config
from connector.config.model import Config
from connector.sandbox.http import serving
from connector.sandbox.providers import CHANNELS, ProviderSimulators
from tests.sandbox import CONFIG_DIR
from tests.sandbox.test_provider_latency import sender

# Each provider's own error code for a throttled (429) and a failed (500) send: Twilio, Graph
# (Messenger, WhatsApp), Apple's status echo, the in-app contract (docs/protocols/channels.md).
THROTTLED = {"sms": 20429, "messenger": 613, "whatsapp": 130429, "apple": 429, "inapp": "rate_limited"}
FAILED = {"sms": 20500, "messenger": 2, "whatsapp": 131000, "apple": 500, "inapp": "unavailable"}


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(CONFIG_DIR)


@pytest.fixture
def sims(config: Config) -> Iterator[ProviderSimulators]:
    with serving() as server:
        providers = ProviderSimulators(config.assets, server.url)
        server.app = providers.create_app()
        yield providers


def error_code(channel: str, response: requests.Response) -> Any:
    body = response.json()
    if channel in ("messenger", "whatsapp"):
        return body["error"]["code"]
    return body["error"] if channel == "inapp" else body["code"]


def statuses_of(send: Callable[[str], requests.Response], count: int, tag: str = "m") -> list[int]:
    return [send(f"{tag}{n}").status_code for n in range(count)]


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_send_fails_at_rate_1_in_the_channels_shape_and_none_is_recorded(
    sims: ProviderSimulators, config: Config, channel: str
) -> None:
    send = sender(sims, config, channel)
    sims.set_fail_rate(channel, 1.0, [429], retry_after=1)
    throttled = send("first")
    sims.set_fail_rate(channel, 1.0, [500], retry_after=1)
    failed = send("second")
    sims.set_fail_rate(channel, 0)
    accepted = send("third")

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert error_code(channel, throttled) == THROTTLED[channel]
    assert failed.status_code == 500
    assert "Retry-After" not in failed.headers, "Retry-After goes with a 429 only"
    assert error_code(channel, failed) == FAILED[channel]
    assert accepted.status_code in (200, 201, 204)
    assert [s["text"] for s in sims.store.sent(channel)] == ["third"], "a failed send is not sent"
    assert sims.fail_rate()["injected_by_channel"] == {channel: {"429": 1, "500": 1}}


def test_a_seed_repeats_the_same_failures_whatever_other_channels_send(
    sims: ProviderSimulators, config: Config
) -> None:
    sms, whatsapp = sender(sims, config, "sms"), sender(sims, config, "whatsapp")
    sims.set_fail_rate(None, 0.4, [500, 503, 429], seed=42)
    first_run = statuses_of(sms, 40)

    sims.reset()
    sims.set_fail_rate(None, 0.4, [500, 503, 429], seed=42)
    second_run = []
    for n in range(40):  # WhatsApp's sends interleave this time: SMS's stream is its own
        whatsapp(f"w{n}")
        second_run.append(sms(f"m{n}").status_code)

    assert second_run == first_run
    failures = [s for s in first_run if s != 201]
    assert 6 <= len(failures) <= 26, f"about 40 % of 40 sends fail, not {len(failures)}"
    assert {500, 503, 429} >= set(failures) and len(set(failures)) >= 2, "statuses are picked among the given"
    assert len(sims.store.sent("sms")) == 40 - len(failures)
    state = sims.fail_rate()
    assert state["seed"] == 42
    sms_counts = {str(s): failures.count(s) for s in set(failures)}
    assert state["injected_by_channel"]["sms"] == sms_counts, "each failure injected is counted by its status"
    assert sum(state["injected"].values()) == sims.faults.injected_count()
    assert sims.faults.injected_count("sms") == len(failures)


def test_another_seed_gives_other_failures_and_rate_0_turns_it_off(sims: ProviderSimulators, config: Config) -> None:
    sms = sender(sims, config, "sms")
    sims.set_fail_rate("sms", 0.5, seed=1)
    one = statuses_of(sms, 30)
    sims.set_fail_rate("sms", 0.5, seed=2)
    two = statuses_of(sms, 30)
    sims.set_fail_rate("sms", 0)
    off = statuses_of(sms, 10)

    assert one != two
    assert set(off) == {201}
    assert sims.fail_rate()["rates"]["sms"] is None


def test_fail_next_goes_first_and_down_still_answers_503(sims: ProviderSimulators, config: Config) -> None:
    sms = sender(sims, config, "sms")
    sims.set_fail_rate("sms", 1.0, [500])
    sims.fail_next("sms", 1, 400, error_code=21610)
    assert [sms("a").status_code, sms("b").status_code] == [400, 500]
    sims.set_down("sms")
    assert sms("c").status_code == 503
    assert sims.faults.injected_count("sms") == 1, "only the random failure is counted"


def control(sims: ProviderSimulators, body: Any) -> requests.Response:
    return requests.post(f"{sims.base_url}/providers/control/fail_rate", json=body, timeout=5)


def test_the_control_sets_and_shows_the_rate_and_counts(sims: ProviderSimulators, config: Config) -> None:
    body = {"channel": "inapp", "rate": 1.0, "statuses": [429], "retry_after": 2, "seed": 9}
    answer = control(sims, body)
    assert answer.status_code == 200
    assert answer.json()["rates"]["inapp"] == {"rate": 1.0, "statuses": [429], "retry_after": 2.0}
    assert answer.json()["rates"]["sms"] is None

    refused = sender(sims, config, "inapp")("x")
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "2")

    shown = requests.get(f"{sims.base_url}/providers/control/fail_rate", timeout=5).json()
    assert shown["seed"] == 9
    assert shown["injected"] == {"429": 1}
    assert shown["injected_by_channel"] == {"inapp": {"429": 1}}

    everyone = control(sims, {"channel": None, "rate": 0.3}).json()
    default = {"rate": 0.3, "statuses": [500, 503, 429], "retry_after": None}
    assert all(everyone["rates"][c] == default for c in CHANNELS)
    assert control(sims, {"channel": None, "rate": 0}).json()["rates"] == {c: None for c in CHANNELS}

    assert requests.post(f"{sims.base_url}/providers/reset", timeout=5).status_code == 204
    assert requests.get(f"{sims.base_url}/providers/control/fail_rate", timeout=5).json()["injected"] == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "sms"}, "rate"),
        ({"channel": "sms", "rate": 1.5}, "rate"),
        ({"channel": "sms", "rate": "0.3"}, "rate"),
        ({"channel": "fax", "rate": 0.3}, "channel"),
        ({"channel": "sms", "rate": 0.3, "statuses": [200]}, "statuses"),
        ({"channel": "sms", "rate": 0.3, "statuses": []}, "statuses"),
        ({"channel": "sms", "rate": 0.3, "statuses": "500"}, "statuses"),
        ({"channel": "sms", "rate": 0.3, "retry_after": -1}, "retry_after"),
        ({"channel": "sms", "rate": 0.3, "seed": "abc"}, "seed"),
    ],
)
def test_a_bad_value_is_400_naming_the_field_and_changes_nothing(
    sims: ProviderSimulators, body: dict[str, Any], field: str
) -> None:
    sims.set_fail_rate("sms", 0.1, seed=5)
    before = sims.fail_rate()
    answer = control(sims, body)
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert field in answer.json()["message"]
    assert sims.fail_rate() == before
