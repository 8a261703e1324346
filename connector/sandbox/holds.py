"""Test-only: hold a simulator's next answer until the test releases it.

A crash test needs the connector's worker to be *inside* a call when it is killed: the simulator
has received the request, the far side has not answered yet. A test arms a hold on a point (the
ECE start, one channel's send); the request thread that reaches that point blocks there until the
test releases it, then goes on and completes the call as the real service would, whether or not
the caller is still there to read the answer.

    hold = holds.hold_next("start")          # the next start request that arrives is held
    ... the connector calls ...
    hold.wait_held(10)                        # it arrived and waits
    worker.kill()
    hold.release()                            # the simulator completes the start

A hold never outlives `MAX_HOLD_SECONDS`, so a test that forgets to release cannot wedge a
simulator's thread for good. Nothing here is reachable by the connector: tests and the simulators'
control APIs arm holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

MAX_HOLD_SECONDS = 60.0


class Hold:
    """One armed hold: taken by the first request at its point that `matches`, released once."""

    def __init__(self, point: str, matches: Callable[[Any], bool] | None) -> None:
        self.point = point
        self.matches = matches
        self._held = threading.Event()
        self._released = threading.Event()
        self.subject: Any = None

    @property
    def held(self) -> bool:
        """A request reached the point and waits (or waited) here."""
        return self._held.is_set()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def wait_held(self, timeout: float = 10.0) -> bool:
        """Block until a request is held here; False after `timeout` seconds."""
        return self._held.wait(timeout)

    def release(self) -> None:
        """Let the held request (or the next one to come, if none is held yet) go on."""
        self._released.set()

    def _take(self, subject: Any) -> None:
        self.subject = subject
        self._held.set()

    def _wait_release(self) -> None:
        self._released.wait(MAX_HOLD_SECONDS)


class Holds:
    """The armed holds of one simulator, by point name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Hold] = []
        self._issued: list[Hold] = []

    def hold_next(self, point: str, matches: Callable[[Any], bool] | None = None) -> Hold:
        """Hold the next request at `point` (for which `matches(subject)` is true, if given)."""
        hold = Hold(point, matches)
        with self._lock:
            self._armed.append(hold)
            self._issued.append(hold)
        return hold

    def checkpoint(self, point: str, subject: Any = None) -> None:
        """Called by a request thread at `point`: blocks while an armed hold takes it, else returns
        at once. Call it outside every lock of the simulator: other requests must go on meanwhile."""
        with self._lock:
            hold = next(
                (h for h in self._armed if h.point == point and (h.matches is None or h.matches(subject))), None
            )
            if hold is None:
                return
            self._armed.remove(hold)
            hold._take(subject)
        hold._wait_release()

    def release_all(self) -> None:
        """Release every hold, armed or taken (a simulator stopping; a test's cleanup)."""
        with self._lock:
            issued, self._issued, self._armed = self._issued, [], []
        for hold in issued:
            hold.release()
