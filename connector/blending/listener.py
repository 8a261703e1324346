"""`python -m connector listen`: the blending module's long-lived process.

It watches Finesse node liveness (failover), keeps the agent registry in sync, receives voice
events (XMPP for agents who logged in to the connector, REST polling with the admin account for the
others), consumes chat-side events, and feeds everything to the blending service.

Invariants:
- one agent's events are handled in the order they arrived: events are sharded by agent id onto a
  fixed set of dispatcher threads, each a FIFO;
- while no Finesse node is in service nothing is sent to Finesse (the failover halts the client);
  when a node comes back, every agent is re-read and what is due is re-applied;
- a chat event leaves its stream only after the service has handled it.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from connector.blending.agents import AgentBusy, AgentRegistry
from connector.blending.chat_events import ChatEntry, ChatEventConsumer
from connector.blending.chat_side import ECE, chat_ready_from_media, finesse_agent_for
from connector.blending.events import BlendingEvent, MediaStateChanged
from connector.blending.finesse.client import FinesseClient, FinesseError
from connector.blending.finesse.credentials import CredentialStore
from connector.blending.finesse.failover import Failover
from connector.blending.finesse.polling import PollingSource
from connector.blending.finesse.updates import Event
from connector.blending.finesse.xmpp import XmppNotifications, announce_transport, endpoint_provider
from connector.blending.lease import Lease
from connector.blending.service import BlendingService, ReasonCodeMissing
from connector.blending.sync import AgentSync, SyncInProgress
from connector.config.model import LOCAL_AGENT_PREFIX, ChatEnabledPolicy, FinesseConfig
from connector.config.reload import EXIT_TO_RELOAD
from connector.runtime import CONFIG_CHECK_SECONDS, Runtime, install
from connector.store import keys

log = logging.getLogger(__name__)

DISPATCHERS = 8
CREDENTIAL_SCAN_SECONDS = 2.0
RECONCILE_SECONDS = 5.0
BUSY_RETRY_SECONDS = 0.2
SYNC_POLL_SECONDS = 0.5


@dataclass
class Dispatcher:
    """Per-agent FIFO delivery of events to the service across a few threads."""

    handle: Callable[[BlendingEvent], object]
    threads: int = DISPATCHERS
    _queues: list[queue.Queue[BlendingEvent | None]] = field(default_factory=list)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Dispatcher:
        for index in range(self.threads):
            inbox: queue.Queue[BlendingEvent | None] = queue.Queue()
            worker = threading.Thread(target=self._run, args=(inbox,), name=f"blend-{index}", daemon=True)
            self._queues.append(inbox)
            self._workers.append(worker)
            worker.start()
        return self

    def submit(self, event: BlendingEvent) -> None:
        shard = zlib.crc32(event.agent_id.encode()) % len(self._queues)
        self._queues[shard].put(event)

    def stop(self) -> None:
        for inbox in self._queues:
            inbox.put(None)
        for worker in self._workers:
            worker.join(10)

    def _run(self, inbox: queue.Queue[BlendingEvent | None]) -> None:
        while (event := inbox.get()) is not None:
            while True:
                try:
                    self.handle(event)
                    break
                except AgentBusy:
                    time.sleep(BUSY_RETRY_SECONDS)  # another process holds the agent; the event is idempotent
                except Exception:
                    log.exception("blending event failed", extra={"agent_id": event.agent_id})
                    break


class Listener:
    """Wires failover, sync, notification sources, chat events and the blending service."""

    def __init__(self, runtime: Runtime, config: FinesseConfig) -> None:
        self.runtime = runtime
        self.config = config
        self.redis = runtime.redis
        self.stop_event = threading.Event()
        self.registry = AgentRegistry(self.redis)
        self.credentials = CredentialStore(self.redis, runtime.settings.secret_key)
        self.client = FinesseClient(config, credentials=self.credentials.get)
        self.failover = Failover.for_client(
            self.client, config, on_recovered=self._on_recovered, on_switched=self._on_switched
        )
        self.service: BlendingService | None = None
        self.dispatcher: Dispatcher | None = None
        self.xmpp: XmppNotifications | None = None
        self.polling: PollingSource | None = None
        self._threads: list[threading.Thread] = []
        self._xmpp_agents: set[str] = set()
        self._synced = threading.Event()  # the first agent sync was tried: chat events can name agents

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Listener:
        """Raises ReasonCodeMissing (a configuration error) before anything runs."""
        self.failover.check_once()
        self.failover.start()
        try:
            self.service = self._start_service()
        except BaseException:
            self.failover.stop()
            raise
        self.dispatcher = Dispatcher(self.service.handle).start()
        sync = AgentSync(self.client, self.registry, self.service, ChatEnabledPolicy.parse(self.config.chat_enabled))
        self._spawn("agent-sync", lambda: self._sync_loop(sync))
        if self.config.events == "xmpp":
            announce_transport(self.config)  # plain TCP or unverified TLS: a WARNING at every start
            self.xmpp = XmppNotifications(
                endpoint_provider(self.config, self.client),
                self._on_finesse_event,
                media=self.service.chat_mrd_id is not None,
            ).start()
        self.polling = PollingSource(self.client, self._polled_agents, self.dispatcher.submit).start()
        self._spawn("credentials", self._watch_credentials)
        self._spawn("chat-events", self._consume_chat_events)
        self._spawn("reconcile", self._reconcile_loop)
        log.info(
            "routing listener started",
            extra={"node": self.failover.active, "events": self.config.events, "chat_mrd_id": self.service.chat_mrd_id},
        )
        return self

    def stop(self) -> None:
        """The parts that talk to Finesse without Redis first (XMPP sessions, node probes): a listener
        that lost its lease because Redis stopped answering must fall silent before the lease can
        lapse, while the others may still be stuck in a Redis call."""
        self.stop_event.set()
        if self.xmpp:
            self.xmpp.stop()
        self.failover.stop()
        if self.polling:
            self.polling.stop()
        for thread in self._threads:
            thread.join(10)
        if self.dispatcher:
            self.dispatcher.stop()

    def _start_service(self) -> BlendingService:
        """Waits while no node is in service (halted at start); a missing reason label is fatal."""
        ece = self._ece_configured()
        while not self.stop_event.is_set():
            try:
                return BlendingService.start(self.config, self.client, self.registry, ece=ece)
            except ReasonCodeMissing:
                raise
            except FinesseError as exc:
                log.warning("Finesse not reachable yet, retrying: %s", exc)
                self.stop_event.wait(self.config.liveness_interval_seconds)
        raise RuntimeError("stopped before Finesse became reachable")

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _sync_loop(self, sync: AgentSync) -> None:
        """Every sync_interval_seconds, and at once when an operator asks (POST /api/v1/agents/sync)."""
        next_run = 0.0
        while not self.stop_event.is_set():
            try:
                requested = bool(self.redis.delete(keys.agent_sync_requested()))
            except RedisError:
                requested = False
            if requested or time.monotonic() >= next_run:
                next_run = time.monotonic() + self.config.sync_interval_seconds
                try:
                    sync.sync()
                except SyncInProgress:
                    log.debug("agent sync skipped: another process is running it")
                except FinesseError as exc:
                    log.warning("agent sync failed, retried in %.0f s: %s", self.config.sync_interval_seconds, exc)
                except Exception:
                    log.exception("agent sync failed")
                self._synced.set()
            self.stop_event.wait(SYNC_POLL_SECONDS)

    # -- sources --------------------------------------------------------------------------------

    def _polled_agents(self) -> list[str]:
        """Agents without an XMPP session: everyone when events are polled."""
        return [a for a in self.registry.ids() if a not in self._xmpp_agents]

    def _watch_credentials(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.xmpp is not None:
                    logged_in = set(self.credentials.agents())
                    for agent_id in sorted(logged_in - self._xmpp_agents):
                        found = self.credentials.get(agent_id)
                        if found is None:
                            continue
                        profile = self.registry.profile(agent_id)
                        self.xmpp.add_agent(agent_id, found[1], extension=profile.extension if profile else None)
                        self._xmpp_agents.add(agent_id)
                    for agent_id in sorted(self._xmpp_agents - logged_in):
                        self.xmpp.remove_agent(agent_id)
                        self._xmpp_agents.discard(agent_id)
            except (RedisError, FinesseError) as exc:
                log.warning("credential scan failed: %s", exc)
            except Exception:
                log.exception("credential scan failed")
            self.stop_event.wait(CREDENTIAL_SCAN_SECONDS)

    def _ece_configured(self) -> bool:
        try:
            return any(i.type == ECE for i in self.runtime.config.integrations)
        except Exception:
            log.exception("configuration check failed")
            return False

    def _on_finesse_event(self, event: Event) -> None:
        """A notification to the dispatcher. A Media update becomes the agent's own chat readiness on
        ECE's chat MRD (`chat_ready_from_media`) or is dropped: blend() takes no Media event."""
        assert self.dispatcher is not None and self.service is not None
        if isinstance(event, MediaStateChanged):
            mrd_id = self.service.chat_mrd_id
            ready = chat_ready_from_media(event, mrd_id, self.service.policy.reason_code_id) if mrd_id else None
            if ready is None:
                return
            self.dispatcher.submit(ready)
            return
        self.dispatcher.submit(event)

    def _chat_agent_id(self, entry: ChatEntry) -> str | None:
        agent = entry.agent
        agent_id = finesse_agent_for(agent, self.config, self.registry)
        if agent_id is None and (agent.id or "").startswith(LOCAL_AGENT_PREFIX):
            return None  # a local agent of the built-in router: nothing to blend, nothing to warn about
        if agent_id is None:
            field = self.config.ece_agent_field
            log.warning(
                "chat event for an agent no synced Finesse agent matches (%s agent id %r, name %r; "
                "finesse.ece_agent_field %s): not blended. Map it with finesse.ece_agents {%s: <Finesse login>}",
                agent.backend or "chat side",
                agent.id,
                agent.name,
                field,
                agent.id if field == "id" else agent.name,
                extra={"chat": entry.fields.get("chat")},
            )
        return agent_id

    def _consume_chat_events(self) -> None:
        consumer = ChatEventConsumer(self.redis)
        assert self.service is not None
        while not (self._synced.is_set() or self.stop_event.is_set()):
            self.stop_event.wait(0.05)  # chat events name agents as sync knows them
        while not self.stop_event.is_set():
            try:
                for entry in consumer.read(block_ms=500):
                    agent_id = self._chat_agent_id(entry)
                    event = entry.to_event(agent_id) if agent_id is not None else None
                    if event is not None:
                        self._handle_now(event)
                    consumer.ack(entry)
            except RedisError as exc:
                log.warning("chat events unreadable, retrying: %s", exc)
                self.stop_event.wait(1.0)

    def _handle_now(self, event: BlendingEvent) -> None:
        """Chat events are handled before their stream entry is acknowledged (no lost assignment)."""
        assert self.service is not None
        while not self.stop_event.is_set():
            try:
                self.service.handle(event)
                return
            except AgentBusy:
                time.sleep(BUSY_RETRY_SECONDS)

    # -- failover -------------------------------------------------------------------------------

    def _reconcile_loop(self) -> None:
        while not self.stop_event.wait(RECONCILE_SECONDS):
            if self.service is not None and not self.failover.halted:
                try:
                    self.service.reconcile_all()
                except Exception:
                    log.exception("reconcile failed")

    def _on_recovered(self, node: str) -> None:
        log.warning("Finesse back in service; reconciling every agent", extra={"node": node})
        self._reconcile_everyone()

    def _on_switched(self, node: str | None) -> None:
        log.warning("Finesse active node changed", extra={"node": node or "none (halted)"})
        if node is None:
            return
        if self.xmpp is not None:
            # sessions re-subscribe on the new node (docs/protocols/finesse.md, "SystemInfo and failover")
            self.xmpp.reconnect_all()
        self._reconcile_everyone()

    def _reconcile_everyone(self) -> None:
        if self.service is None:
            return
        service = self.service
        threading.Thread(target=lambda: service.reconcile_all(everyone=True), name="reconcile-all", daemon=True).start()


class FinesseFollower:
    """Follows reloads for `run_listener`: every CONFIG_CHECK_SECONDS it reads the configuration
    (which applies a reload of the provisioned files, or a UI edit) and compares the `finesse:`
    section with the one the listener runs; on a change it sets `wake`, which ends the process
    (`run_listener` stops the listener, standby or not).

    A changed section is applied by restarting the process, not its parts: the listener stops and
    exits with EXIT_TO_RELOAD, which the supervisor restarts at once (standalone, run it with a
    restart policy). Why not stop and start the components in place: every one of them (the client,
    failover, XMPP sessions, polling, sync, the service) is built from the section, and `start` waits
    for Finesse and may fail on the new section (a reason label missing): a fresh process takes the
    one start path that handles all of that, and no thread that outlived its stop timeout keeps
    talking to the old nodes. Nothing is lost: the registry, the agents' states and the chat events
    not yet acknowledged are in Redis, and a start re-reads every agent.

    A removed section stops blending: the listener stops and idles (exiting would only have the
    supervisor restart a listener with nothing to do) until a section comes back."""

    def __init__(self, runtime: Runtime, running: FinesseConfig, wake: threading.Event) -> None:
        self.runtime = runtime
        self.running = running
        self.wake = wake
        self.changed = False
        self.section: FinesseConfig | None = running

    def start(self) -> FinesseFollower:
        threading.Thread(target=self._follow, name="finesse-follower", daemon=True).start()
        return self

    def current(self) -> FinesseConfig | None:
        """The section in effect now; the read is the configuration check."""
        try:
            return self.runtime.config.finesse
        except Exception:
            log.exception("configuration check failed")
            return self.section

    def _follow(self) -> None:
        while not self.wake.wait(CONFIG_CHECK_SECONDS):
            section = self.current()
            if section == self.running:
                continue
            self.changed, self.section = True, section
            if section is not None:
                log.warning(
                    "the finesse: section changed (%s): the listener stops and exits with %d so that its "
                    "restart applies it",
                    section.source or "made in the UI",
                    EXIT_TO_RELOAD,
                )
            else:
                log.warning("the finesse: section was removed: media blending stops")
            self.wake.set()
            return

    def exit_code(self, stop: threading.Event) -> int:
        """After the listener stopped: 0 when a signal stopped it, EXIT_TO_RELOAD for a changed
        section; a removed one idles here until a section comes back (EXIT_TO_RELOAD) or a signal."""
        if stop.is_set() or not self.changed:
            return 0
        if self.section is not None:
            return EXIT_TO_RELOAD
        log.warning("media blending is off (no finesse: section): the listener idles until one is configured")
        return _wait_for_section(self.runtime, stop)


def _wait_for_section(runtime: Runtime, stop: threading.Event) -> int:
    """Idle until a finesse: section is configured (EXIT_TO_RELOAD: a restart starts with it) or a
    signal stops the process (0)."""
    while not stop.wait(CONFIG_CHECK_SECONDS):
        try:
            section = runtime.config.finesse
        except Exception:
            log.exception("configuration check failed")
            continue
        if section is not None:
            log.warning("a finesse: section was added: the listener exits with %d to start with it", EXIT_TO_RELOAD)
            return EXIT_TO_RELOAD
    return 0


STANDBY_RETRY_SECONDS = 1.0
"""How often a standby listener tries to take the lease."""

LEASE_WATCH_SECONDS = 0.2
"""How often the holder checks its lease is still valid (a renewal may hang on an unreachable Redis)."""


def listener_lease(runtime: Runtime) -> Lease:
    """The lease that lets one listener at a time drive the Finesse agents (keys.listener_lease)."""
    return Lease(runtime.redis, keys.listener_lease(), runtime.settings.listener_lease_seconds, owner=runtime.name)


def run_listener(runtime: Runtime, *, wait_for_section: bool = False) -> int:
    """The listener's process. Without a finesse: section it exits with an error, or, with
    `wait_for_section` (as `run` starts it), waits for one and exits with EXIT_TO_RELOAD when it
    appears, so the supervisor's restart runs it.

    With a section it drives the agents only while it holds the listener lease: listeners on other
    hosts wait as standbys, and one takes over within about CONNECTOR_LISTENER_LEASE_SECONDS of the
    holder's death. A holder that loses the lease stops its parts at once and becomes a standby."""
    runtime.role = "listener"
    install(runtime)
    stop = threading.Event()
    config = runtime.config.finesse
    if config is None and not wait_for_section:
        log.error("media blending is not configured: add a finesse: section to the provisioning files")
        return 2
    if config is None:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        log.info("no finesse: section: media blending waits for one (in the files or on the Finesse page)")
        return _wait_for_section(runtime, stop)
    wake = threading.Event()  # a signal or a changed section: this process ends
    current: list[Listener] = []

    def on_signal(*_: object) -> None:
        stop.set()
        wake.set()
        for listener in current:
            listener.stop_event.set()  # also ends a start still waiting for Finesse to be reachable

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    follower = FinesseFollower(runtime, config, wake).start()
    lease = listener_lease(runtime)
    try:
        while _await_lease(lease, wake):
            listener = Listener(runtime, config)
            current[:] = [listener]
            if (code := _lead(listener, lease, wake)) is not None:
                return code
            current.clear()
    finally:
        lease.release()
    return follower.exit_code(stop)


def _await_lease(lease: Lease, wake: threading.Event) -> bool:
    """Standby until this process holds the lease (True) or is told to end (False)."""
    announced = False
    while not wake.is_set():
        try:
            if lease.acquire():
                if announced:
                    log.warning("listener lease taken over: this listener now drives the Finesse agents")
                return True
            holder = lease.holder()
        except RedisError as exc:
            holder = f"unknown: Redis unreachable ({exc})"
        if not announced:
            log.info(
                "standby: another listener drives the Finesse agents; this one takes over when its lease lapses",
                extra={"holder": holder},
            )
            announced = True
        wake.wait(STANDBY_RETRY_SECONDS)
    return False


def _lead(listener: Listener, lease: Lease, wake: threading.Event) -> int | None:
    """Drive the agents while the lease holds. Returns an exit code for a configuration error, else
    None once the listener stopped (lease lost: back to standby; `wake` set: the process ends)."""
    lease.keep(on_lost=listener.stop_event.set)

    def watch() -> None:
        """Ends the term at once when the process is told to end or the lease runs out, even while a
        renewal hangs on an unreachable Redis or the start waits for Finesse."""
        while not listener.stop_event.wait(LEASE_WATCH_SECONDS):
            if wake.is_set() or not lease.held():
                listener.stop_event.set()

    threading.Thread(target=watch, name="lease-watch", daemon=True).start()
    try:
        listener.start()
    except ReasonCodeMissing as exc:
        log.error("%s", exc)
        print(f"configuration error: {exc}", flush=True)
        return 2
    except RuntimeError:
        if not listener.stop_event.is_set():
            raise
        if not wake.is_set() and not lease.held():
            log.warning("listener lease lost before Finesse became reachable: back to standby")
        elif not wake.is_set():
            log.info("stopped before Finesse became reachable")
        return None
    try:
        listener.stop_event.wait()
    finally:
        listener.stop()
    if not wake.is_set():
        log.warning("listener lease lost: this listener stopped driving the Finesse agents and is a standby again")
    return None
