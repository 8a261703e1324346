"""A faithful Finesse cluster on loopback: publisher and subscriber REST nodes over one shared model,
the XMPP notification service, and a JSON control API.

    sandbox = start_finesse_sandbox()          # ports 0 = any free port; XMPP with STARTTLS required
    sandbox.model.add_agent("1001", "secret", extension="1001")
    ... FinesseConfig(publisher=sandbox.publisher_url, subscriber=sandbox.subscriber_url,
                      xmpp_port=sandbox.xmpp_port, ca_bundle=str(sandbox.xmpp_ca_file), ...)
    sandbox.node_down("publisher")             # connection refused; or mode="out_of_service" (503)
    sandbox.stop()

Protocol facts and their sources: docs/protocols/finesse.md, including "The Finesse simulator".
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from connector.sandbox.finesse.control import create_control_app
from connector.sandbox.finesse.model import FinesseModel, SimError
from connector.sandbox.finesse.rest import create_node_app
from connector.sandbox.finesse.switch import Switch
from connector.sandbox.finesse.xmpp import XmppServer
from connector.sandbox.http import LoopbackServer

__all__ = ["FinesseModel", "FinesseSandbox", "SimError", "Switch", "start_finesse_sandbox"]


def _node(app: Flask, host: str, port: int) -> LoopbackServer:
    # One request per connection: a node taken down refuses the next request instead of answering
    # it on a kept-alive socket.
    return LoopbackServer(app, port, host, name="finesse-sim", keep_alive=False).start()


@dataclass
class FinesseSandbox:
    """The running simulator; `model` and `switch` can be driven in-process or over `control_url`."""

    model: FinesseModel
    switch: Switch
    xmpp: XmppServer
    nodes: dict[str, LoopbackServer] = field(default_factory=dict)
    control: LoopbackServer | None = None

    @property
    def publisher_url(self) -> str:
        return self.nodes["publisher"].url

    @property
    def subscriber_url(self) -> str:
        return self.nodes["subscriber"].url

    @property
    def control_url(self) -> str:
        assert self.control is not None
        return self.control.url

    @property
    def xmpp_host(self) -> str:
        return self.xmpp.host

    @property
    def xmpp_port(self) -> int:
        return self.xmpp.port

    @property
    def xmpp_domain(self) -> str:
        return self.xmpp.domain

    @property
    def xmpp_ca_file(self) -> Path | None:
        """The XMPP service's generated self-signed certificate: what a client trusts (its CA bundle)."""
        return self.xmpp.ca_file

    def node_down(self, name: str, mode: str = "refused") -> None:
        """`refused`: the node's port is closed; `out_of_service`: it answers SystemInfo
        OUT_OF_SERVICE and 503 to everything else."""
        node = self.nodes.get(name)
        if node is None:
            raise SimError(404, "Not Found", f"no node {name!r} (publisher | subscriber)")
        if mode == "refused":
            node.stop()
            self.model.node(name).reachable = False
        elif mode == "out_of_service":
            self.model.set_status(name, "OUT_OF_SERVICE", "sandbox: taken out of service")
        else:
            raise SimError(400, "Invalid Input", "mode must be refused or out_of_service")

    def node_up(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            raise SimError(404, "Not Found", f"no node {name!r} (publisher | subscriber)")
        node.start()
        self.model.node(name).reachable = True
        self.model.set_status(name, "IN_SERVICE")

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        if self.control is not None:
            self.control.stop()
        self.xmpp.stop()


def start_finesse_sandbox(
    *,
    host: str = "127.0.0.1",
    publisher_port: int = 0,
    subscriber_port: int = 0,
    xmpp_port: int = 0,
    control_port: int = 0,
    xmpp_domain: str = "finesse.sandbox",
    admin_user: str = "admin",
    admin_password: str = "admin-password",  # noqa: S107 (the sandbox's published demo login)
    deployment: str = "UCCE",
    reason_code_required: bool = True,
    admin_may_change_states: bool = False,
    xmpp_tls: str = "starttls",
    xmpp_starttls_required: bool = True,
    xmpp_ssl_context: ssl.SSLContext | None = None,
    xmpp_cert_path: Path | None = None,
) -> FinesseSandbox:
    """Start both nodes, the XMPP service and the control API on threads; ports 0 = any free port.

    XMPP: `xmpp_tls` "starttls" (default; required unless `xmpp_starttls_required=False`), "direct" or
    "plain"; the certificate is `xmpp_ssl_context`'s, else made at start and written to `xmpp_cert_path`
    (else a temporary file), named by `xmpp_ca_file`."""
    model = FinesseModel(
        admin_user=admin_user,
        admin_password=admin_password,
        deployment=deployment,
        xmpp_domain=xmpp_domain,
        reason_code_required=reason_code_required,
        admin_may_change_states=admin_may_change_states,
    )
    switch = Switch(model)
    xmpp = XmppServer(
        model,
        host=host,
        port=xmpp_port,
        domain=xmpp_domain,
        tls=xmpp_tls,
        starttls_required=xmpp_starttls_required,
        ssl_context=xmpp_ssl_context,
        cert_path=xmpp_cert_path,
    ).start()
    model.xmpp_port = xmpp.port
    sandbox = FinesseSandbox(model=model, switch=switch, xmpp=xmpp)
    try:
        for name, port in (("publisher", publisher_port), ("subscriber", subscriber_port)):
            node = _node(create_node_app(model, switch, name), host, port)
            sandbox.nodes[name] = node
            model.nodes[name].host, model.nodes[name].https_port = host, node.port
        sandbox.control = _node(create_control_app(sandbox), host, control_port)
    except Exception:
        sandbox.stop()
        raise
    return sandbox
