"""A faithful Cisco ECE on loopback: the API of docs/protocols/ece.md (client-app token,
entry point configuration, availability checks, start / find / send / attach / end), agent events
POSTed to the connector's callback, a JSON control API and an agent console page.

    sim = EceSimulator(client_key="connector", client_secret="s3cret", callback_url=".../ece/x/callback")
    app.register_blueprint(sim.blueprint(), url_prefix="/ece")
    sim.start()                                  # the callback emitter thread
    sim.model.assign(conv_id, "1001", "Alice")   # or POST /ece/control/conversations/<id>/assign
    sim.stop()

Protocol facts and their sources: docs/protocols/ece.md, "Availability checks",
"Client-application token", "Callback webhook" and "The ECE simulator".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from flask import Blueprint, Response

from connector.sandbox.ece.api import error_response, register_api
from connector.sandbox.ece.control import register_control
from connector.sandbox.ece.emitter import CallbackEmitter, Delivery
from connector.sandbox.ece.model import EceModel, SimError

__all__ = ["CallbackEmitter", "Delivery", "EceModel", "EceSimulator", "SimError"]

NO_OTHER_APPS: Mapping[str, str] = MappingProxyType({})


class EceSimulator:
    """The model, its callback emitter and the blueprint serving both the API and the control side.

    `other_apps` (client key → secret) are further client applications of the same ECE, so a test can
    start a conversation as app B and see app A refused with 403."""

    def __init__(
        self,
        *,
        client_key: str,
        client_secret: str,
        entry_points: Iterable[str] = ("1001", "1002"),
        callback_url: str | None = None,
        callback_auth: Mapping[str, str] | None = None,
        api_version: str = "v19",
        token_ttl: int = 86400,
        other_apps: Mapping[str, str] = NO_OTHER_APPS,
    ) -> None:
        self.model = EceModel(
            client_key=client_key,
            client_secret=client_secret,
            entry_points=entry_points,
            callback_url=callback_url,
            callback_auth=callback_auth,
            api_version=api_version,
            token_ttl=token_ttl,
            other_apps=other_apps,
        )
        self.emitter = CallbackEmitter(self.model)
        self.model.listeners.append(self.emitter.enqueue)

    def blueprint(self, name: str = "ece_sandbox") -> Blueprint:
        """A fresh blueprint; every route is relative, so it can be mounted under any prefix."""
        bp = Blueprint(name, __name__)

        @bp.errorhandler(SimError)
        def refused(exc: SimError) -> tuple[Response, int]:
            return error_response(exc)

        register_api(bp, self.model)
        register_control(bp, self)
        return bp

    def start(self) -> None:
        """Start delivering callback events (held until a callback URL is configured)."""
        self.emitter.start()

    def stop(self) -> None:
        self.model.holds.release_all()
        self.emitter.stop()
