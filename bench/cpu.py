"""CPU time of a stack's processes by role, so a benchmark can say where a message's CPU goes.

CPU seconds (user + system, every thread) are counted per process between two readings and summed
by role (web, worker, listener, redis, sandbox). Unlike a latency, a CPU figure barely moves with
what else runs on the machine, so it is what a deployment is sized from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil

ROLES = ("web", "worker", "listener", "redis", "supervisor", "sandbox")


def role_of(process: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    if "redis-server" in command:
        return "redis"
    if "connector run" in command:
        return "supervisor"
    if "connector sandbox" in command:
        return "sandbox"
    if "gunicorn" in command or "wsgi:app" in command or "connector web" in command:
        return "web"
    if "connector worker" in command:
        return "worker"
    if "connector listen" in command:
        return "listener"
    return "other"


def cpu_by_process(root_pid: int) -> dict[int, tuple[str, float]]:
    """pid → (role, CPU seconds so far) of `root_pid` and every process under it."""
    root = psutil.Process(root_pid)
    found: dict[int, tuple[str, float]] = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            found[process.pid] = (role_of(process), times.user + times.system)
        except psutil.Error:
            continue  # ended between the listing and the reading
    return found


@dataclass
class CpuUse:
    """CPU seconds by role over a measured block (`measuring`)."""

    seconds: dict[str, float] = field(default_factory=dict)

    def per_message_ms(self, role: str, messages: int) -> float:
        return 1000 * self.seconds.get(role, 0.0) / max(messages, 1)

    @property
    def connector_seconds(self) -> float:
        """The connector's own processes and its Redis, not the simulators."""
        return sum(v for k, v in self.seconds.items() if k in ("web", "worker", "listener", "redis", "supervisor"))

    def summary(self, messages: int) -> str:
        """`web 1.3 / worker 3.1 / redis 0.8 / sandbox 1.3 ms`: CPU per message by role."""
        parts = [f"{role} {self.per_message_ms(role, messages):.1f}" for role in ROLES if role in self.seconds]
        return " / ".join(parts) + " ms"


@contextmanager
def measuring(root_pid: int) -> Iterator[CpuUse]:
    """CPU by role of the processes under `root_pid` during the block. A process that ended during
    the block is left out (its last reading is gone); one started during it counts from zero."""
    use = CpuUse()
    before = cpu_by_process(root_pid)
    yield use
    for pid, (role, seconds) in cpu_by_process(root_pid).items():
        use.seconds[role] = use.seconds.get(role, 0.0) + seconds - before.get(pid, (role, 0.0))[1]
