"""A minimal Finesse Notification Service: an XMPP server (RFC 6120 client streams over TCP) with just
what a Finesse client uses (docs/protocols/finesse.md, "XMPP notifications"): STARTTLS (RFC 6120 §5,
required by default, as Openfire's "required" client security), direct TLS, or plain TCP; SASL
PLAIN checked against the agents' passwords, offered only once the stream is encrypted when TLS is
required; resource binding, session, XEP-0199 ping, XEP-0060 subscribe / unsubscribe, and pubsub
event `<message>`s whose `<notification>` wraps the escaped `<Update>` document.

Without a given `ssl_context` the server makes its own self-signed certificate at start
(`certificate.py`) and writes it to `cert_path` (or a temporary folder): clients trust it with that
file (`ca_file`), as the connector's `finesse.ca_bundle`. Every connection is recorded
(`connections`: the negotiation steps in order and the bytes received before TLS) so tests can check
that no password crossed the wire in clear.

Subscriptions belong to the bare JID and outlive a connection, as Openfire's pubsub does; an agent may
subscribe to its own nodes (`/finesse/api/User/{id}` and below) and to `/finesse/api/SystemInfo`.
Runs its own asyncio loop on a thread; `publish()` is thread-safe and is the model's listener.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import logging
import shutil
import ssl
import tempfile
import threading
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from connector.sandbox.finesse.certificate import server_context
from connector.sandbox.finesse.model import FinesseModel

log = logging.getLogger(__name__)

STREAMS = "http://etherx.jabber.org/streams"
CLIENT = "jabber:client"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
TLS = "urn:ietf:params:xml:ns:xmpp-tls"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
SESSION = "urn:ietf:params:xml:ns:xmpp-session"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
PING = "urn:xmpp:ping"
PUBSUB = "http://jabber.org/protocol/pubsub"
PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
ROSTER = "jabber:iq:roster"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
TLS_MODES = ("starttls", "direct", "plain")
CLEARTEXT_CAP = 64 * 1024


@dataclass
class Connection:
    """What the server saw on one client connection, in order: `steps` among "tcp" (accepted plain),
    "tls" (handshake done: at accept for direct TLS, after `<proceed/>` for STARTTLS), "starttls",
    "tls-failed", "auth" (a SASL `<auth>` arrived), "authenticated", "bound"; `cleartext` holds the
    bytes received before TLS (capped)."""

    steps: list[str] = field(default_factory=list)
    cleartext: bytearray = field(default_factory=bytearray)


class _StreamReader:
    """Incremental parser target: reports the stream header, each complete top-level stanza, and
    the stream's end. Uses defusedxml's expat parser, so entities and DTDs are refused."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._depth = 0
        self._builder: TreeBuilder | None = None
        self.parser = SafeET.XMLParser(target=self, forbid_dtd=True)

    def feed(self, data: bytes) -> list[tuple[str, Any]]:
        self.parser.feed(data)
        events, self.events = self.events, []
        return events

    # target interface
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self._depth == 0:
            self.events.append(("open", (tag, dict(attrib))))
        else:
            if self._depth == 1:
                self._builder = TreeBuilder()
            assert self._builder is not None
            self._builder.start(tag, attrib)
        self._depth += 1

    def end(self, tag: str) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.events.append(("close", None))
        elif self._builder is not None:
            element = self._builder.end(tag)
            if self._depth == 1:
                self.events.append(("stanza", element))
                self._builder = None

    def data(self, text: str) -> None:
        if self._builder is not None:
            self._builder.data(text)

    def close(self) -> None:
        return None


def _ns(element: Element) -> tuple[str, str]:
    tag = element.tag
    if tag.startswith("{"):
        namespace, local = tag[1:].split("}", 1)
        return namespace, local
    return "", tag


def _child(element: Element, namespace: str, local: str) -> Element | None:
    return element.find(f"{{{namespace}}}{local}")


class _Session:
    """One client connection: negotiation state, then stanza handling."""

    def __init__(self, server: XmppServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.stream = _StreamReader()
        self.agent_id: str | None = None
        self.resource: str | None = None
        self.failures = 0
        self.closed = False
        self.tls = writer.get_extra_info("ssl_object") is not None  # direct TLS: encrypted from accept
        self.upgrade = False  # <proceed/> sent: the TLS handshake comes next
        self.record = Connection(steps=["tls" if self.tls else "tcp"])
        server.connections.append(self.record)

    @property
    def bare(self) -> str:
        return f"{self.agent_id}@{self.server.domain}"

    @property
    def full(self) -> str:
        return f"{self.bare}/{self.resource}"

    def send(self, data: str) -> None:
        if not self.closed:
            self.writer.write(data.encode())

    def close(self, error: str | None = None) -> None:
        if self.closed:
            return
        if error:
            self.send(f"<stream:error><{error} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>")
        self.send("</stream:stream>")
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()

    async def run(self) -> None:
        try:
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                if not self.tls and len(self.record.cleartext) < CLEARTEXT_CAP:
                    self.record.cleartext += data[: CLEARTEXT_CAP - len(self.record.cleartext)]
                try:
                    events = self.stream.feed(data)
                except (SafeET.ParseError, DefusedXmlException):
                    self.close("not-well-formed")
                    break
                for kind, value in events:
                    if kind == "open":
                        self.on_open(*value)
                    elif kind == "stanza":
                        self.on_stanza(value)
                    else:
                        self.close()
                    if self.closed or self.upgrade:
                        break  # nothing may follow <starttls/> before the handshake (RFC 6120 §5.4.3.3)
                with contextlib.suppress(ConnectionError):
                    await self.writer.drain()
                if self.upgrade:
                    await self.start_tls()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed = True
            self.server.sessions.discard(self)
            with contextlib.suppress(Exception):
                self.writer.close()

    async def start_tls(self) -> None:
        """RFC 6120 §5.4.3.3: after `<proceed/>`, the TLS handshake on the same connection, then the
        client opens a new stream. No read happens between `<proceed/>` and the handshake, so the
        client's first TLS bytes reach the TLS layer."""
        self.upgrade = False
        context = self.server.ssl_context
        assert context is not None
        try:
            await self.writer.start_tls(context, ssl_handshake_timeout=10.0)
        except (OSError, ssl.SSLError) as exc:  # the client refused the certificate, or went away
            self.record.steps.append("tls-failed")
            log.info("sandbox xmpp: TLS handshake failed: %r", exc)
            self.closed = True
            with contextlib.suppress(Exception):
                self.writer.close()
            return
        self.tls = True
        self.record.steps.append("tls")
        self.stream = _StreamReader()

    # -- stream ---------------------------------------------------------------------------------

    def on_open(self, tag: str, attrib: dict[str, str]) -> None:
        if tag != f"{{{STREAMS}}}stream":
            self.close("invalid-namespace")
            return
        self.send(
            f"<?xml version='1.0'?><stream:stream xmlns='{CLIENT}' xmlns:stream='{STREAMS}' "
            f"id='{uuid.uuid4().hex}' from={quoteattr(self.server.domain)} version='1.0' xml:lang='en'>"
        )
        mechanisms = f"<mechanisms xmlns='{SASL}'><mechanism>PLAIN</mechanism></mechanisms>"
        if self.agent_id is None and self.server.tls == "starttls" and not self.tls:
            if self.server.starttls_required:  # SASL only once encrypted
                features = f"<starttls xmlns='{TLS}'><required/></starttls>"
            else:
                features = f"<starttls xmlns='{TLS}'/>{mechanisms}"
        elif self.agent_id is None:
            features = mechanisms
        else:
            # Openfire (Finesse) still asks for the RFC 3921 session after binding.
            features = f"<bind xmlns='{BIND}'/><session xmlns='{SESSION}'/>"
        self.send(f"<stream:features>{features}</stream:features>")

    def on_stanza(self, stanza: Element) -> None:
        namespace, local = _ns(stanza)
        if namespace == TLS and local == "starttls":
            self.on_starttls()
        elif namespace == SASL and local == "auth":
            self.on_auth(stanza)
        elif self.agent_id is None:
            self.close("not-authorized")
        elif namespace == CLIENT and local == "iq":
            self.on_iq(stanza)
        # presence and messages from the client are accepted and ignored

    def on_starttls(self) -> None:
        if self.server.tls != "starttls" or self.tls or self.agent_id is not None:
            self.send(f"<failure xmlns='{TLS}'/>")  # RFC 6120 §5.4.2.2: then close the stream
            self.close()
            return
        self.record.steps.append("starttls")
        self.send(f"<proceed xmlns='{TLS}'/>")
        self.upgrade = True

    def on_auth(self, stanza: Element) -> None:
        self.record.steps.append("auth")
        if self.agent_id is not None:
            self.close("policy-violation")
            return
        if self.server.tls_required and not self.tls:
            self.send(f"<failure xmlns='{SASL}'><encryption-required/></failure>")
            self.close("policy-violation")
            return
        if stanza.get("mechanism") != "PLAIN":
            self.send(f"<failure xmlns='{SASL}'><invalid-mechanism/></failure>")
            return
        try:
            _authzid, username, password = base64.b64decode((stanza.text or "").strip()).split(b"\x00")
            agent_id, secret = username.decode(), password.decode()
        except (ValueError, binascii.Error):
            self.send(f"<failure xmlns='{SASL}'><malformed-request/></failure>")
            return
        who = self.server.model.authenticate(agent_id, secret)
        # The JID is {agentId}@{xmppDomain}: log in with the id, and only agents have XMPP accounts.
        if who is None or who.agent is None or who.agent.id != agent_id:
            self.failures += 1
            self.send(f"<failure xmlns='{SASL}'><not-authorized/></failure>")
            if self.failures >= 3:
                self.close("policy-violation")
            return
        self.agent_id = agent_id
        self.record.steps.append("authenticated")
        self.send(f"<success xmlns='{SASL}'/>")
        self.stream = _StreamReader()  # the client restarts the stream after SASL

    # -- iq -------------------------------------------------------------------------------------

    def reply(self, iq: Element, payload: str = "", *, sender: str | None = None) -> None:
        origin = f" from={quoteattr(sender)}" if sender else ""
        to = f" to={quoteattr(self.full)}" if self.resource else ""
        self.send(f"<iq type='result' id={quoteattr(iq.get('id', ''))}{origin}{to}>{payload}</iq>")

    def error(self, iq: Element, kind: str, condition: str) -> None:
        sender = f" from={quoteattr(iq.get('to'))}" if iq.get("to") else ""
        self.send(
            f"<iq type='error' id={quoteattr(iq.get('id', ''))}{sender}>"
            f"<error type='{kind}'><{condition} xmlns='{STANZAS}'/></error></iq>"
        )

    def on_iq(self, iq: Element) -> None:
        kind = iq.get("type")
        if kind in ("result", "error"):
            return
        payload = iq[0] if len(iq) else None
        if payload is None:
            self.error(iq, "modify", "bad-request")
            return
        namespace, _local = _ns(payload)
        if namespace == BIND and kind == "set":
            requested = (payload.findtext(f"{{{BIND}}}resource") or "").strip()
            self.resource = requested or uuid.uuid4().hex[:8]
            self.record.steps.append("bound")
            self.server.sessions.add(self)
            self.reply(iq, f"<bind xmlns='{BIND}'><jid>{escape(self.full)}</jid></bind>")
        elif namespace == SESSION and kind == "set":
            self.reply(iq)
        elif namespace == PING:
            self.server.pings += 1
            if self.server.answer_pings:
                self.reply(iq, sender=iq.get("to"))
        elif namespace == ROSTER and kind == "get":
            self.reply(iq, f"<query xmlns='{ROSTER}'/>")
        elif namespace == DISCO_INFO and kind == "get":
            identity = "<identity category='server' type='im' name='Finesse Notification Service (sandbox)'/>"
            self.reply(
                iq, f"<query xmlns='{DISCO_INFO}'>{identity}<feature var='{PING}'/></query>", sender=iq.get("to")
            )
        elif namespace == PUBSUB:
            self.on_pubsub(iq, payload)
        else:
            self.error(iq, "cancel", "service-unavailable")

    def on_pubsub(self, iq: Element, pubsub: Element) -> None:
        server = self.server
        if iq.get("to") != server.pubsub_domain:
            self.error(iq, "cancel", "service-unavailable")
            return
        request = _child(pubsub, PUBSUB, "subscribe")
        if request is None:  # (an Element without children is falsy: no `or` here)
            request = _child(pubsub, PUBSUB, "unsubscribe")
        if request is None or iq.get("type") != "set":
            self.error(iq, "cancel", "feature-not-implemented")
            return
        node, jid = request.get("node", ""), request.get("jid", "")
        if jid.split("/", 1)[0] != self.bare:
            self.error(iq, "modify", "bad-request")  # XEP-0060 jids-mismatch
            return
        if not node.startswith("/finesse/api/"):
            self.error(iq, "cancel", "item-not-found")
            return
        if not server.may_subscribe(self.agent_id or "", node):
            self.error(iq, "auth", "forbidden")
            return
        sender = server.pubsub_domain
        if _ns(request)[1] == "subscribe":
            server.subscriptions[node].add(self.bare)
            answer = (
                f"<pubsub xmlns='{PUBSUB}'><subscription node={quoteattr(node)} jid={quoteattr(jid)} "
                f"subid={quoteattr(uuid.uuid4().hex)} subscription='subscribed'/></pubsub>"
            )
            self.reply(iq, answer, sender=sender)
        else:
            server.subscriptions[node].discard(self.bare)
            self.reply(iq, sender=sender)


class XmppServer:
    """The notification service. `port=0` picks a free port. `tls`: "starttls" (the default, as
    Finesse's 5222; `starttls_required=False` also offers SASL before TLS), "direct" (TLS from the
    first byte, Finesse's 5223) or "plain" (no TLS offered at all). `ssl_context`: the server's
    certificate; without it one is made at start and written to `cert_path` (default: a temporary
    folder removed at stop), which `ca_file` names."""

    def __init__(
        self,
        model: FinesseModel,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        domain: str | None = None,
        tls: str = "starttls",
        starttls_required: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        cert_path: Path | None = None,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"tls must be one of {', '.join(TLS_MODES)}")
        self.model = model
        self.host = host
        self.port = port
        self.domain = domain or model.xmpp_domain
        self.pubsub_domain = f"pubsub.{self.domain}"
        self.tls = tls
        self.starttls_required = starttls_required
        self.ssl_context = ssl_context
        self.cert_path = cert_path
        self.ca_file: Path | None = None  # the generated certificate, for clients to trust
        self._temporary: Path | None = None
        self.connections: deque[Connection] = deque(maxlen=500)
        self.sessions: set[_Session] = set()
        self.subscriptions: defaultdict[str, set[str]] = defaultdict(set)
        self.delivered: list[tuple[str, str]] = []  # (full JID, node), for assertions
        self.pings = 0  # XEP-0199 pings received
        self.answer_pings = True  # False simulates a hung server: the TCP stream stays, pings go unanswered
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def tls_required(self) -> bool:
        return self.tls == "direct" or (self.tls == "starttls" and self.starttls_required)

    def _make_certificate(self) -> None:
        if self.tls == "plain" or self.ssl_context is not None:
            return
        if self.cert_path is None:
            self._temporary = Path(tempfile.mkdtemp(prefix="finesse-sim-xmpp-"))
            self.cert_path = self._temporary / "finesse-xmpp-ca.pem"
        self.ssl_context = server_context(self.domain, self.host, self.cert_path)
        self.ca_file = self.cert_path

    def start(self, timeout: float = 5.0) -> XmppServer:
        self._make_certificate()
        ready = threading.Event()
        failure: list[BaseException] = []
        direct = self.ssl_context if self.tls == "direct" else None

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._accept, self.host, self.port, ssl=direct)
                )
            except OSError as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="finesse-sim-xmpp", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("sandbox XMPP server did not start")
        if failure:
            self._remove_temporary()
            raise failure[0]
        self.model.listeners.append(self.publish)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self.publish in self.model.listeners:
            self.model.listeners.remove(self.publish)
        loop = self._loop
        if loop is None or self._thread is None:
            self._remove_temporary()
            return

        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for session in list(self.sessions):
                session.close("system-shutdown")
            for task in self._tasks:
                task.cancel()
            loop.stop()

        loop.call_soon_threadsafe(shutdown)
        self._thread.join(timeout)
        self._thread = None
        self._remove_temporary()

    def _remove_temporary(self) -> None:
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        finally:
            if task is not None:
                self._tasks.discard(task)

    # -- operations (thread-safe) -----------------------------------------------------------------

    def may_subscribe(self, agent_id: str, node: str) -> bool:
        own = f"/finesse/api/User/{agent_id}"
        return node == own or node.startswith(own + "/") or node == "/finesse/api/SystemInfo"

    def publish(self, node: str, update_xml: str) -> None:
        """Push an Update to every connected session of every JID subscribed to `node`."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already stopped
                self._loop.call_soon_threadsafe(self._deliver, node, update_xml)

    def _deliver(self, node: str, update_xml: str) -> None:
        subscribers = self.subscriptions.get(node, set())
        for session in list(self.sessions):
            if session.closed or session.resource is None or session.bare not in subscribers:
                continue
            message_id = next(self._ids)
            session.send(
                f"<message from={quoteattr(self.pubsub_domain)} to={quoteattr(session.full)} id='n{message_id}'>"
                f"<event xmlns='{PUBSUB_EVENT}'><items node={quoteattr(node)}><item id='i{message_id}'>"
                f"<notification xmlns='{PUBSUB}'>{escape(update_xml)}</notification>"
                f"</item></items></event></message>"
            )
            self.delivered.append((session.full, node))

    def disconnect_all(self) -> None:
        """Drop every client connection (to exercise reconnects); subscriptions are kept."""
        done = threading.Event()

        def drop() -> None:
            for session in list(self.sessions):
                session.close("system-shutdown")
            done.set()

        if self._loop is not None:
            self._loop.call_soon_threadsafe(drop)
            done.wait(5.0)

    def connected(self, agent_id: str | None = None) -> list[str]:
        """Full JIDs of bound sessions (of one agent)."""
        return sorted(
            s.full for s in list(self.sessions) if not s.closed and (agent_id is None or s.agent_id == agent_id)
        )
