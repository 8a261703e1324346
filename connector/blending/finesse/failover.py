"""Finesse node liveness and failover, as the Hybrid Chat integration does it.

Every `liveness_interval_seconds` the SystemInfo of the publisher and of the subscriber is polled:

- publisher in service → work through the publisher (also when it comes back after an outage);
- publisher unreachable or not IN_SERVICE → work through the subscriber, keep polling the publisher;
- both down → halted: `active_node()` raises FinesseUnavailable, so no Finesse call is attempted
  ("halts login and media blending operations until any node is up again"); when a node is up
  again `on_recovered` fires and the blending service reconciles every agent (after a Finesse
  failover agents come back NOT_READY, so their state must be re-derived, not assumed).

Only IN_SERVICE counts as up: an OUT_OF_SERVICE or PARTIAL_SERVICE node answers 503 to every API
but SystemInfo (docs/protocols/finesse.md, "SystemInfo and failover").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from connector.blending.finesse.client import FinesseClient, FinesseError, FinesseUnavailable, SystemInfo
from connector.config.model import FinesseConfig

log = logging.getLogger(__name__)

Probe = Callable[[str], SystemInfo]
NodeListener = Callable[[str | None], None]


class Failover:
    """Which Finesse node is active, decided by `check_once()`; `start()` runs it on a thread.

    Invariant: `active_node()` returns a node whose last probe said IN_SERVICE, or raises. Before
    the first check the publisher is assumed active, so a process that starts during an outage
    makes one failing call per agent at most before the first check halts it.
    """

    def __init__(
        self,
        publisher: str,
        subscriber: str | None,
        probe: Probe,
        *,
        interval: float = 5.0,
        on_recovered: Callable[[str], None] | None = None,
        on_switched: NodeListener | None = None,
        deployment: str | None = None,
    ) -> None:
        self.publisher = publisher.rstrip("/")
        self.deployment = deployment
        self._deployment_checked: set[str] = set()
        self.subscriber = subscriber.rstrip("/") if subscriber else None
        self.probe = probe
        self.interval = interval
        self.on_recovered = on_recovered
        self.on_switched = on_switched
        self.up: dict[str, bool] = {}
        self._active: str | None = self.publisher
        self._halted = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_client(
        cls,
        client: FinesseClient,
        config: FinesseConfig,
        *,
        on_recovered: Callable[[str], None] | None = None,
        on_switched: NodeListener | None = None,
    ) -> Failover:
        """A failover probing with `client` and routing `client`'s calls to the active node."""
        failover = cls(
            config.publisher,
            config.subscriber,
            client.system_info,
            interval=config.liveness_interval_seconds,
            on_recovered=on_recovered,
            on_switched=on_switched,
            deployment=config.deployment,
        )
        client.nodes = failover
        return failover

    # -- the answer ---------------------------------------------------------------------------

    @property
    def active(self) -> str | None:
        """The node in use, or None while halted."""
        with self._lock:
            return self._active

    @property
    def halted(self) -> bool:
        with self._lock:
            return self._halted

    def active_node(self) -> str:
        with self._lock:
            if self._active is None:
                raise FinesseUnavailable("no Finesse node is in service; blending is halted", error_type="Halted")
            return self._active

    # -- the decision -------------------------------------------------------------------------

    def _in_service(self, node: str) -> bool:
        try:
            info = self.probe(node)
        except FinesseError as exc:
            log.info("finesse node %s unreachable: %s", node, exc, extra={"node": node})
            return False
        except Exception:  # a probe must never kill the liveness thread
            log.exception("finesse liveness probe of %s failed", node, extra={"node": node})
            return False
        if not info.in_service:
            log.info("finesse node %s is %s", node, info.status, extra={"node": node, "reason": info.status_reason})
        self._check_deployment(node, info)
        return info.in_service

    def _check_deployment(self, node: str, info: SystemInfo) -> None:
        """Once per node: SystemInfo's deploymentType (UCCE, UCCX) must be the configured one, since
        `finesse.deployment` decides which agents may chat by default (docs/blending.md)."""
        if node in self._deployment_checked or not self.deployment or not info.deployment_type:
            return
        self._deployment_checked.add(node)
        reported = info.deployment_type.strip().lower()
        if reported != self.deployment:
            log.error(
                "finesse.deployment is %s but node %s reports deploymentType %s: set deployment: %s",
                self.deployment,
                node,
                info.deployment_type,
                reported,
                extra={"node": node},
            )

    def check_once(self) -> str | None:
        """Probe both nodes once and switch; returns the active node (None = halted)."""
        publisher_up = self._in_service(self.publisher)
        subscriber_up = self._in_service(self.subscriber) if self.subscriber else False
        self.up = {self.publisher: publisher_up} | ({self.subscriber: subscriber_up} if self.subscriber else {})
        if publisher_up:
            chosen: str | None = self.publisher
        elif subscriber_up:
            chosen = self.subscriber
        else:
            chosen = None
        with self._lock:
            previous, was_halted = self._active, self._halted
            self._active = chosen
            self._halted = chosen is None
        if chosen != previous:
            if chosen is None:
                log.error("both Finesse nodes are down: blending halted until one is in service")
            else:
                log.warning(
                    "finesse: working through %s (was %s)", chosen, previous or "halted", extra={"node": chosen}
                )
            self._notify(self.on_switched, chosen)
        if was_halted and chosen is not None:
            self._notify(self.on_recovered, chosen)
        return chosen

    @staticmethod
    def _notify(callback: Callable[..., None] | None, node: str | None) -> None:
        if callback is None:
            return
        try:
            callback(node)
        except Exception:
            log.exception("finesse failover callback failed")

    # -- the runner ---------------------------------------------------------------------------

    def start(self) -> Failover:
        """Check now, then every `interval` seconds on a daemon thread until `stop()`."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self.check_once()
        self._thread = threading.Thread(target=self._run, name="finesse-liveness", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_once()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
