"""Small helpers the benchmarks share: percentiles and waiting on the stack."""

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
