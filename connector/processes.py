"""Child-process hygiene shared by everything that starts a long-lived child."""

from __future__ import annotations

import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` for Popen: the kernel SIGTERMs the child when its parent dies, even by SIGKILL,
    so a crashed supervisor leaves no orphaned Redis, web or worker processes (Linux only)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
