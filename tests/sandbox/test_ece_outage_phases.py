"""The soak's ECE outage, phase by phase, as a caller of the ECE API meets it: connections refused (the
forwarder), then 5xx (the simulator's `down` switch), then slow answers (`delay_seconds`: 2 s), then
normal again, all through the control surfaces the soak uses."""

from __future__ import annotations

import time

import pytest
import requests

from connector.sandbox.forwarder import TcpForwarder
from tests.sandbox.test_forwarder import token


def failures(base: str, body: dict[str, object]) -> requests.Response:
    answer = requests.post(f"{base}/ece/control/failures", json=body, timeout=5)
    assert answer.status_code == 200
    return answer


def test_refused_then_5xx_then_slow_then_well(ece_simulator) -> None:
    _simulator, base_url = ece_simulator
    direct = base_url.removesuffix("/ece")
    port = int(direct.rsplit(":", 1)[1])
    with TcpForwarder("127.0.0.1", port) as forwarder:
        forwarder.refuse()
        with pytest.raises(requests.ConnectionError):
            token(forwarder.url)

        failures(direct, {"down": "503"})
        forwarder.accept()
        unavailable = token(forwarder.url)
        assert unavailable.status_code == 503
        assert unavailable.json()["code"] == "503-100"

        failures(direct, {"down": None, "delay_seconds": 2})
        began = time.monotonic()
        slow = token(forwarder.url)
        assert slow.status_code == 200
        assert time.monotonic() - began >= 2.0

        assert failures(direct, {"delay_seconds": 0}).json()["delay_seconds"] == 0
        began = time.monotonic()
        assert token(forwarder.url).status_code == 200
        assert time.monotonic() - began < 1.0
