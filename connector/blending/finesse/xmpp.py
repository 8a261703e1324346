"""Finesse notifications over XMPP: one slixmpp login per agent, pubsub Updates → blending events.

As the reference's Communication Server does, each agent is logged in to the Finesse Notification
Service with its own JID `{agentId}@{xmppDomain}` and password. The stream is encrypted before the
password is sent: STARTTLS on 5222 by default (`finesse.xmpp_tls: starttls`), or direct TLS on 5223
(`direct`); the certificate is verified against `finesse.ca_bundle`, else the system's CAs, and only
`verify_tls: false` without a ca_bundle turns that off, as for the REST client. A server that offers
no STARTTLS, or a certificate that is not trusted, fails the session with an ERROR: there is no
fallback to plain TCP, which happens only with `finesse.xmpp_tls: false` (a WARNING at every start
of the listener, `announce_transport`). The session subscribes to
`/finesse/api/User/{id}` and `/finesse/api/User/{id}/Dialogs` (with `media`, also `.../Media`, where
ECE's chat MRD is reported) on `pubsub.{xmppDomain}`, unwraps each
pubsub item's `<notification>` (an escaped `<Update>`), reads it with `updates.py` and hands the
events to `on_event`. It pings the server every 20 s (Finesse drops clients that stay silent) and
reconnects with exponential backoff and jitter; after a failover `reconnect_all()` moves every
session to the new active node at once.

All sessions share one asyncio loop on one thread; `on_event` runs on that thread and must be quick
(enqueue, don't work). Agent passwords are never logged (slixmpp's own DEBUG trace is redacted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, tostring

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
from slixmpp.xmlstream.stanzabase import StanzaBase

from connector.blending.finesse.client import FinesseClient, FinesseError
from connector.blending.finesse.updates import Event, UpdateReader
from connector.config.model import FinesseConfig

log = logging.getLogger(__name__)

PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
STREAMS = "http://etherx.jabber.org/streams"
XMPP_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
EventSink = Callable[[Event], None]

TLS_MODES = ("starttls", "direct", "plain")
"""`finesse.xmpp_tls` as loaded: STARTTLS on the plain port, TLS from the first byte, or plain TCP."""
XMPP_PORT = 5222
"""Finesse's XMPP client port: STARTTLS (or plain TCP where the cluster still allows it)."""
XMPP_DIRECT_TLS_PORT = 5223
"""Finesse's XMPP port with TLS from the first byte."""


def xmpp_port(config: FinesseConfig) -> int:
    """`finesse.xmpp_port`, else Finesse's port for the mode: 5223 for direct TLS, 5222 otherwise."""
    if config.xmpp_port:
        return config.xmpp_port
    return XMPP_DIRECT_TLS_PORT if config.xmpp_tls == "direct" else XMPP_PORT


def announce_transport(config: FinesseConfig) -> None:
    """Say how the agents' sessions travel; the listener calls it at every start. Plain TCP and
    unverified certificates are WARNINGs (agents' passwords are at stake), the rest INFO."""
    port = xmpp_port(config)
    if config.xmpp_tls == "plain":
        log.warning(
            "finesse xmpp on plain TCP (finesse.xmpp_tls: false), port %d: agent passwords cross the network "
            "unencrypted; set xmpp_tls: starttls (port 5222) or direct (5223)",
            port,
        )
        return
    how = "STARTTLS" if config.xmpp_tls == "starttls" else "direct TLS"
    if config.ca_bundle:
        log.info(
            "finesse xmpp over %s, port %d, certificates verified against ca_bundle %s", how, port, config.ca_bundle
        )
    elif config.verify_tls:
        log.info("finesse xmpp over %s, port %d, certificates verified against the system's CAs", how, port)
    else:
        log.warning(
            "Finesse XMPP TLS certificates are NOT verified (finesse.verify_tls: false); "
            "set ca_bundle to the cluster's CA instead in production"
        )


class _RedactSasl(logging.Filter):
    """slixmpp logs every byte it sends at DEBUG, including SASL PLAIN's base64 `\\0user\\0password`."""

    _auth = re.compile(r"(<(?:\w+:)?(?:auth|response)\b[^>]*>)[^<]*(</)")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(self._auth.sub(r"\1[redacted]\2", a) if isinstance(a, str) else a for a in record.args)
        return True


logging.getLogger("slixmpp.xmlstream.xmlstream").addFilter(_RedactSasl())


@dataclass(frozen=True)
class XmppEndpoint:
    """Where an agent's XMPP session goes. `domain` is SystemInfo's xmppDomain (the JID domain);
    `pubsub` defaults to `pubsub.{domain}` (Openfire's convention)."""

    host: str
    port: int
    domain: str
    pubsub: str | None = None
    tls: str = "starttls"  # one of TLS_MODES
    verify_tls: bool = True
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise ValueError(f"XMPP tls must be one of {', '.join(TLS_MODES)}, not {self.tls!r}")

    @property
    def pubsub_jid(self) -> str:
        return self.pubsub or f"pubsub.{self.domain}"

    @property
    def verified(self) -> bool:
        """Whether the server's certificate is checked (always, unless verify_tls: false and no ca_bundle)."""
        return bool(self.ca_bundle) or self.verify_tls


EndpointProvider = Callable[[], XmppEndpoint | None]


def endpoint_provider(config: FinesseConfig, client: FinesseClient) -> EndpointProvider:
    """The XMPP endpoint of the client's active Finesse node: its host, the port (`xmpp_port`), the TLS
    mode, and the xmppDomain from that node's SystemInfo (cached per node). None while no node is in
    service."""
    cache: dict[str, XmppEndpoint] = {}

    def current() -> XmppEndpoint | None:
        try:
            node = client.nodes.active_node()
            if node not in cache:
                info = client.system_info(node)
                host = urlsplit(node).hostname or node
                cache[node] = XmppEndpoint(
                    host=host,
                    port=xmpp_port(config),
                    domain=info.xmpp_domain or host,
                    pubsub=info.xmpp_pubsub_domain,
                    tls=config.xmpp_tls,
                    verify_tls=config.verify_tls,
                    ca_bundle=config.ca_bundle,
                )
            return cache[node]
        except FinesseError as exc:
            log.info("no Finesse XMPP endpoint now: %s", exc)
            return None

    return current


def backoff_delay(failures: int, initial: float, maximum: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, so a fleet of agent sessions
    cut off together does not reconnect in lock-step."""
    ceiling: float = min(maximum, initial * (2 ** max(0, failures)))  # int ** int is Any to typeshed
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _ssl_context(endpoint: XmppEndpoint) -> ssl.SSLContext:
    """As the REST client: verified against `ca_bundle` when set, else against the system's CAs, and
    not at all only with `verify_tls: false` and no ca_bundle. Built at every connection, so a renewed
    bundle is read; raises OSError / ssl.SSLError when the bundle cannot be read."""
    if endpoint.ca_bundle:
        return ssl.create_default_context(cafile=endpoint.ca_bundle)
    context = ssl.create_default_context()
    if not endpoint.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


HOSTNAME_MISMATCH = 62  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH


def _tls_refused(endpoint: XmppEndpoint, error: object) -> str:
    """The ERROR line of a failed TLS handshake, with what to do about it."""
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_code == HOSTNAME_MISMATCH:
        return (
            f"TLS refused: the certificate of {endpoint.host}:{endpoint.port} is not valid for {endpoint.domain}, "
            f"the XMPP domain ({error.verify_message}); Finesse's certificate must name its xmppDomain"
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS refused: the certificate of {endpoint.host}:{endpoint.port} (for {endpoint.domain}) is not "
            f"trusted ({error.verify_message}); set finesse.ca_bundle to the CA that signed it"
        )
    hint = (
        " (not a TLS port? Finesse's direct TLS port is 5223, STARTTLS is on 5222)" if endpoint.tls == "direct" else ""
    )
    return f"TLS handshake with {endpoint.host}:{endpoint.port} failed: {error}{hint}"


class _AgentClient(slixmpp.ClientXMPP):
    """The unmodified slixmpp client, configured for Finesse: no SRV lookups, PLAIN only. STARTTLS:
    plain TCP upgraded by the server's `<starttls/>` (`enable_starttls`); direct: TLS at connect
    (`enable_direct_tls`); PLAIN over an unencrypted stream only in the plain mode
    (`unencrypted_plain`), so even a server that skips STARTTLS never gets the password in clear."""

    def __init__(self, agent_id: str, password: str, endpoint: XmppEndpoint, context: ssl.SSLContext | None) -> None:
        plain = endpoint.tls == "plain"
        plugin_config = {"feature_mechanisms": {"unencrypted_plain": plain}}
        super().__init__(
            f"{agent_id}@{endpoint.domain}/connector",
            password,
            plugin_config=plugin_config,
            sasl_mech="PLAIN",
            ssl_context=context,
        )
        self.enable_direct_tls = endpoint.tls == "direct"
        self.enable_starttls = endpoint.tls == "starttls"
        self.enable_plaintext = plain
        for plugin in ("xep_0030", "xep_0060", "xep_0199"):
            self.register_plugin(plugin)

    def tls_version(self) -> str | None:
        """The TLS version of the stream now, None while it is plain TCP."""
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport is not None else None
        return ssl_object.version() if isinstance(ssl_object, ssl.SSLObject) else None


class AgentSession:
    """Keeps one agent subscribed: connect, subscribe, ping, and on any loss reconnect after a backoff.

    Invariant: at most one slixmpp client per agent exists at a time, so a reconnect never doubles
    the agent's events.
    """

    def __init__(
        self,
        agent_id: str,
        password: str,
        endpoint: EndpointProvider,
        deliver: Callable[[str, str], None],
        *,
        ping_interval: float,
        ping_timeout: float,
        connect_timeout: float,
        backoff_initial: float,
        backoff_max: float,
        media: bool = False,
    ) -> None:
        self.agent_id = agent_id
        self.media = media  # also subscribe to the agent's Media node (ECE's chat MRD)
        self._password = password
        self.endpoint = endpoint
        self.deliver = deliver
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connected = False
        self.sessions_started = 0
        self.failures = 0  # consecutive attempts that did not reach a subscribed session
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def reconnect(self) -> None:
        """Drop the current connection (if any) and connect again now, to the current endpoint."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            # The provider may ask Finesse for SystemInfo: keep that blocking call off the shared loop.
            endpoint = await asyncio.get_running_loop().run_in_executor(None, self.endpoint)
            started = await self._session(endpoint) if endpoint is not None else False
            if self._stop.is_set():
                break
            self.failures = 0 if started else self.failures + 1
            if self._wake.is_set():
                continue  # asked to move (failover): no wait
            delay = backoff_delay(self.failures, self.backoff_initial, self.backoff_max)
            log.info(
                "finesse xmpp: agent %s reconnects in %.1f s", self.agent_id, delay, extra={"agent_id": self.agent_id}
            )
            await _wait_any([self._stop, self._wake], delay)

    async def _session(self, endpoint: XmppEndpoint) -> bool:
        """One connection's life; True when it got as far as a subscribed session."""
        try:
            context = _ssl_context(endpoint) if endpoint.tls != "plain" else None
        except (OSError, ssl.SSLError) as exc:  # e.g. the sandbox has not written its CA yet: retried
            log.error(
                "finesse xmpp: agent %s not connected: finesse.ca_bundle %s cannot be read: %s",
                self.agent_id,
                endpoint.ca_bundle,
                exc,
            )
            return False
        client = _AgentClient(self.agent_id, self._password, endpoint, context)
        started, ended = asyncio.Event(), asyncio.Event()
        why: list[tuple[int, str]] = []  # (log level, reason); the first one is reported

        def finish(reason: str, level: int = logging.WARNING) -> None:
            why.append((level, reason))
            ended.set()

        def connection_failed(error: object) -> None:
            client.cancel_connection_attempt()  # our backoff decides when to retry, not slixmpp's
            if isinstance(error, ssl.SSLError):  # direct TLS: the handshake is part of the connect
                finish(_tls_refused(endpoint, error), logging.ERROR)
            else:
                finish(f"connection failed: {error}")

        def disconnected(reason: object) -> None:
            if isinstance(reason, ssl.SSLError):  # a failed STARTTLS handshake closes the connection first
                finish(_tls_refused(endpoint, reason), logging.ERROR)
            else:
                finish(f"disconnected: {reason}")

        def refuse(reason: str) -> None:
            finish(reason, logging.ERROR)
            client.abort()  # before slixmpp's own feature handling runs (it is queued, this is not)

        def check_features(features: StanzaBase) -> None:
            """RFC 6120 §5.3.1: TLS comes before SASL. With TLS required and the stream still plain, a
            server that offers no STARTTLS is refused here (no plain fallback)."""
            offers_starttls = features.xml.find(f"{{{XMPP_TLS}}}starttls") is not None
            if endpoint.tls != "plain" and client.tls_version() is None and not offers_starttls:
                refuse(
                    f"{endpoint.host}:{endpoint.port} offers no STARTTLS: refusing to log in over plain TCP "
                    "(finesse.xmpp_tls: starttls; use direct for Finesse's TLS port 5223)"
                )
            elif endpoint.tls == "plain" and offers_starttls and features.xml.find(f"{{{SASL}}}mechanisms") is None:
                refuse(f"{endpoint.host}:{endpoint.port} requires STARTTLS: set finesse.xmpp_tls: starttls")

        client.add_event_handler("session_start", lambda _event: started.set())
        client.add_event_handler("disconnected", disconnected)
        client.add_event_handler("connection_failed", connection_failed)
        client.add_event_handler("failed_all_auth", lambda _event: finish("authentication failed", logging.ERROR))
        # The STARTTLS handshake failed (slixmpp leaves the connection to _close once this is handled).
        client.add_event_handler(
            "ssl_invalid_chain", lambda error: finish(_tls_refused(endpoint, error), logging.ERROR)
        )
        client.register_handler(Callback("finesse tls first", MatchXPath(f"{{{STREAMS}}}features"), check_features))
        client.register_handler(
            Callback(
                "finesse starttls refused",
                MatchXPath(f"{{{XMPP_TLS}}}failure"),
                lambda _failure: refuse(f"{endpoint.host}:{endpoint.port} refused STARTTLS"),
            )
        )
        client.register_handler(
            Callback(
                "finesse notification",
                MatchXPath(f"{{{client.default_ns}}}message/{{{PUBSUB_EVENT}}}event"),
                lambda message: self._on_message(message.xml),
            )
        )
        client.connect(endpoint.host, endpoint.port)
        try:
            await _wait_any([started, ended, self._stop, self._wake], self.connect_timeout)
            if not started.is_set():
                if self._stop.is_set() or self._wake.is_set():
                    return False  # told to stop or move while connecting: not a failure to report
                level, reason = why[0] if why else (logging.WARNING, "no session within the connect timeout")
                log.log(level, "finesse xmpp: agent %s not connected: %s", self.agent_id, reason)
                return False
            if not await self._subscribe(client, endpoint):
                return False
            self.connected = True
            self.sessions_started += 1
            self.failures = 0
            log.info(
                "finesse xmpp: agent %s subscribed on %s:%d over %s",
                self.agent_id,
                endpoint.host,
                endpoint.port,
                _transport_text(endpoint, client.tls_version()),
            )
            await self._keep_alive(client, ended)
            log.info("finesse xmpp: agent %s session ended: %s", self.agent_id, why[0][1] if why else "closed")
            return True
        finally:
            self.connected = False
            await self._close(client, ended)

    async def _subscribe(self, client: _AgentClient, endpoint: XmppEndpoint) -> bool:
        client.send_presence()
        for node in (f"/finesse/api/User/{self.agent_id}", f"/finesse/api/User/{self.agent_id}/Dialogs"):
            try:
                await client.plugin["xep_0060"].subscribe(  # type: ignore[no-untyped-call]  # slixmpp's XEP-0060 is unannotated
                    endpoint.pubsub_jid, node, timeout=self.ping_timeout
                )
            except IqError as exc:
                log.error(
                    "finesse xmpp: agent %s may not subscribe to %s: %s",
                    self.agent_id,
                    node,
                    exc.iq["error"]["condition"],
                )
                return False
            except IqTimeout:
                log.warning("finesse xmpp: agent %s: no answer subscribing to %s", self.agent_id, node)
                return False
        if self.media:
            # Media updates come on the User's Media node (source .../Media/{mrdId}); a refusal costs
            # only the agent's own MRD choices, never their voice events.
            node = f"/finesse/api/User/{self.agent_id}/Media"
            try:
                await client.plugin["xep_0060"].subscribe(  # type: ignore[no-untyped-call]  # slixmpp's XEP-0060 is unannotated
                    endpoint.pubsub_jid, node, timeout=self.ping_timeout
                )
            except (IqError, IqTimeout) as exc:
                log.warning(
                    "finesse xmpp: agent %s: no subscription to %s (%s): their own chat MRD changes are not seen",
                    self.agent_id,
                    node,
                    exc.iq["error"]["condition"] if isinstance(exc, IqError) else "no answer",
                )
        return True

    async def _keep_alive(self, client: _AgentClient, ended: asyncio.Event) -> None:
        """Ping every `ping_interval` seconds; an unanswered ping ends the session."""
        while not (ended.is_set() or self._stop.is_set() or self._wake.is_set()):
            if await _wait_any([ended, self._stop, self._wake], self.ping_interval):
                return
            try:
                await client.plugin["xep_0199"].ping(timeout=self.ping_timeout)
            except IqTimeout:
                log.warning("finesse xmpp: agent %s ping unanswered; reconnecting", self.agent_id)
                return
            except IqError:
                pass  # an error reply still proves the server is there

    async def _close(self, client: _AgentClient, ended: asyncio.Event) -> None:
        client.cancel_connection_attempt()
        if not ended.is_set() and client.transport is not None:
            client.disconnect(wait=1.0)
            await _wait_any([ended], 2.0)
        if client.transport is not None:
            client.abort()
        # slixmpp leaves the client's outgoing-filter task running after a disconnect; a dropped
        # client would take it down pending ("Task was destroyed but it is pending").
        filters = getattr(client, "_run_out_filters", None)
        if filters is not None and not filters.done():
            filters.cancel()
            await asyncio.wait([filters], timeout=1.0)

    def _on_message(self, message: Element) -> None:
        """Each pubsub item's `<notification>` wraps the Update as escaped text (some servers put the
        element itself); one item per message in practice, several handled anyway."""
        for item in message.iter(f"{{{PUBSUB_EVENT}}}item"):
            for wrapper in item:
                body = (wrapper.text or "").strip()
                if not body and len(wrapper):
                    body = tostring(wrapper[0], encoding="unicode")
                if body:
                    self.deliver(self.agent_id, body)


def _transport_text(endpoint: XmppEndpoint, tls_version: str | None) -> str:
    if tls_version is None:
        return "plain TCP (finesse.xmpp_tls: false)"
    how = "STARTTLS" if endpoint.tls == "starttls" else "direct TLS"
    checked = "certificate verified" if endpoint.verified else "certificate NOT verified (verify_tls: false)"
    return f"{how} ({tls_version}, {checked})"


async def _wait_any(events: list[asyncio.Event], timeout: float) -> bool:
    """Wait until one of `events` is set or `timeout` passes; True if one was set."""
    if any(e.is_set() for e in events):
        return True
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return bool(done)
    finally:
        for waiter in waiters:
            waiter.cancel()


class XmppNotifications:
    """The XMPP notification source: one AgentSession per agent with credentials, on one loop thread.

    `endpoint` is fixed or a provider (see `endpoint_provider`) consulted at every (re)connect.
    """

    def __init__(
        self,
        endpoint: XmppEndpoint | EndpointProvider,
        on_event: EventSink,
        *,
        media: bool = False,
        ping_interval: float = 20.0,
        ping_timeout: float = 10.0,
        connect_timeout: float = 15.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.endpoint: EndpointProvider = endpoint if callable(endpoint) else (lambda: endpoint)
        self.on_event = on_event
        self.reader = UpdateReader(media=media)
        self.media = media
        self.settings = {
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "connect_timeout": connect_timeout,
            "backoff_initial": backoff_initial,
            "backoff_max": backoff_max,
        }
        self.sessions: dict[str, AgentSession] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 5.0) -> XmppNotifications:
        if self._thread is not None:
            return self
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            loop.call_soon(ready.set)
            loop.run_forever()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

        self._thread = threading.Thread(target=run, name="finesse-xmpp", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the XMPP notification loop did not start")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Log every agent out (closing streams politely), then stop the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            self._call(self._stop_all(), timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = self._loop = None

    async def _stop_all(self) -> None:
        for session in self.sessions.values():
            session.stop()
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=5.0)
        self.sessions.clear()
        self._tasks.clear()

    def _call(self, coroutine: Coroutine[Any, Any, object], timeout: float = 5.0) -> object:
        if self._loop is None:
            raise RuntimeError("XmppNotifications is not started")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    # -- agents ---------------------------------------------------------------------------------

    def add_agent(self, agent_id: str, password: str, *, extension: str | None = None) -> None:
        """Start (or restart, with a new password) the agent's session. `extension`, when known (from
        the agent registry), identifies the agent in dialogs that arrive before its first User update."""
        self.reader.remember(agent_id, extension)
        self._call(self._add(agent_id, password))

    async def _add(self, agent_id: str, password: str) -> None:
        await self._remove(agent_id)
        session = AgentSession(
            agent_id,
            password,
            self.endpoint,
            self._deliver,
            media=self.media,
            **self.settings,
        )
        self.sessions[agent_id] = session
        self._tasks[agent_id] = asyncio.get_running_loop().create_task(session.run(), name=f"xmpp-{agent_id}")

    def remove_agent(self, agent_id: str) -> None:
        self._call(self._remove(agent_id))

    async def _remove(self, agent_id: str) -> None:
        session, task = self.sessions.pop(agent_id, None), self._tasks.pop(agent_id, None)
        if session is not None:
            session.stop()
        if task is not None:
            await asyncio.wait([task], timeout=5.0)

    def reconnect_all(self) -> None:
        """Move every session to the current endpoint now (call it when the active node changes)."""
        if self._loop is not None:
            for session in list(self.sessions.values()):
                self._loop.call_soon_threadsafe(session.reconnect)

    def connected(self, agent_id: str) -> bool:
        session = self.sessions.get(agent_id)
        return bool(session and session.connected)

    # -- events ---------------------------------------------------------------------------------

    def _deliver(self, agent_id: str, update_xml: str) -> None:
        for event in self.reader.read(update_xml, agent_id):
            try:
                self.on_event(event)
            except Exception:
                log.exception("finesse xmpp: on_event failed", extra={"agent_id": agent_id})
