"""The soak's handles on the simulators' fault modes (connector/sandbox): the provider failure rate
and "ECE refuses connections" (a `TcpForwarder` in front of the ECE API), each with a line for the
report saying what exactly was switched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connector.sandbox.forwarder import TcpForwarder
from connector.sandbox.providers import ProviderSimulators


@dataclass
class EceRefuser:
    """The connector's ECE `base_url` points at `forwarder`; refusing closes its port (ECONNREFUSED
    for new connections, resets for open ones) while the simulator itself keeps running."""

    forwarder: TcpForwarder
    kind: str = "TcpForwarder in front of the ECE API: connections refused, open ones reset"

    def refuse(self) -> None:
        self.forwarder.refuse()

    def accept(self) -> None:
        self.forwarder.accept()


@dataclass
class ProviderFailureRate:
    """Every provider send API failing at a rate (the simulators' `set_fail_rate`, in process)."""

    providers: ProviderSimulators
    kind: str = "ProviderSimulators.set_fail_rate (as POST /providers/control/fail_rate)"

    def set(
        self, rate: float, statuses: Sequence[int] = (500, 503, 429), retry_after: float = 1, seed: int = 1
    ) -> None:
        if rate <= 0:
            self.providers.set_fail_rate(None, 0)
        else:
            self.providers.set_fail_rate(None, rate, statuses, retry_after=retry_after, seed=seed)

    def injected(self) -> dict[str, int]:
        """Failures injected so far, per status."""
        return {str(k): int(v) for k, v in (self.providers.fail_rate().get("injected") or {}).items()}
