"""Small helpers the benchmarks share: percentiles, goal verdicts, and waiting on and reading the stack."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank rule; NaN for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll every 0.5 s until `predicate()` holds (a failed HTTP call counts as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


def met(ok: bool) -> str:
    """A goal line's verdict."""
    return "met" if ok else "NOT met"


def ece_conversation_ids(ece_url: str, address_prefix: str) -> dict[int, str]:
    """The ECE simulator's conversations of customers whose address is `address_prefix` + a number:
    that number → the conversation id (a benchmark's customers are numbered behind a run prefix)."""
    state = requests.get(f"{ece_url}/control/state", timeout=30).json()
    ids: dict[int, str] = {}
    for conversation in state["conversations"]:
        attributes = {a["name"]: a["value"] for a in conversation["customer_attributes"]}
        address = attributes.get("address", "")
        if address.startswith(address_prefix):
            ids[int(address[len(address_prefix) :])] = conversation["id"]
    return ids
