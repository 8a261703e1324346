"""Faithful simulators of the channel providers' send APIs, for the sandbox and the tests.

    providers = ProviderSimulators(config.assets, base_url="http://127.0.0.1:8100")
    for prefix, blueprint in providers.blueprints():
        app.register_blueprint(blueprint, url_prefix=prefix)
    ... the connector sends to each asset's api_base_url / delivery_url ...
    providers.store.sent("whatsapp", "15551230001")       # what the customer received
    providers.fail_next("sms", 2, 429, retry_after=3)      # the next two sends are throttled
    providers.set_delay("whatsapp", 1.0)                   # WhatsApp answers each send 1 s late
    providers.set_fail_rate(None, 0.3, retry_after=1, seed=7)  # 30 % of sends fail (500, 503, 429)

Each simulator checks credentials the provider's way, answers with the provider's success and error
shapes (docs/protocols/channels.md) and records every accepted send in `store`. `files` holds
the media customers send, served back at the provider's URL shapes. The `/providers` blueprint is
the simulators' own HTTP control surface (for the customer emulator's CLI, demos and benchmarks).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from connector.config.model import Asset
from connector.sandbox.providers import apple, graph, inapp, twilio
from connector.sandbox.providers.files import MediaFiles
from connector.sandbox.providers.store import (
    CHANNELS,
    DEFAULT_FAIL_STATUSES,
    Faults,
    FaultSpecError,
    ProviderState,
    ProviderStore,
    SendLatency,
)

__all__ = ["CHANNELS", "ProviderSimulators"]

CONTROL_PREFIX = "/providers"


class ProviderSimulators:
    """The four provider simulators over one shared state (store, media files, injected faults)."""

    def __init__(self, assets: Iterable[Asset], base_url: str) -> None:
        self.state = ProviderState(assets=tuple(assets), base_url=base_url.rstrip("/"))
        self._blueprints: list[tuple[str, Blueprint]] | None = None

    @property
    def base_url(self) -> str:
        return self.state.base_url

    @property
    def assets(self) -> tuple[Asset, ...]:
        return self.state.assets

    @property
    def store(self) -> ProviderStore:
        return self.state.store

    @property
    def files(self) -> MediaFiles:
        return self.state.files

    @property
    def faults(self) -> Faults:
        return self.state.faults

    @property
    def latency(self) -> SendLatency:
        return self.state.latency

    def blueprints(self) -> list[tuple[str, Blueprint]]:
        """(url_prefix, blueprint) pairs; the prefixes are the ones the URL shapes in `files` assume."""
        if self._blueprints is None:
            self._blueprints = [
                ("/twilio", twilio.create_blueprint(self.state)),
                ("/graph", graph.create_blueprint(self.state)),
                ("/apple", apple.create_blueprint(self.state)),
                ("/inapp", inapp.create_blueprint(self.state)),
                (CONTROL_PREFIX, control_blueprint(self)),
            ]
        return self._blueprints

    def create_app(self) -> Flask:
        """A WSGI app serving only the simulators (tests; `python -m connector sandbox` mounts them too)."""
        app = Flask("provider-simulators")
        for prefix, blueprint in self.blueprints():
            app.register_blueprint(blueprint, url_prefix=prefix)
        return app

    def fail_next(
        self,
        channel: str,
        count: int,
        status: int,
        error_code: int | str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next `count` sends of `channel` answer `status` with the provider's error JSON
        (`error_code` or the provider's usual code for that status; `Retry-After` when given)."""
        self.faults.fail_next(channel, count, status, error_code, retry_after)

    def set_down(self, channel: str | None = None, down: bool = True) -> None:
        """Every send of `channel` (None: every channel) answers 503 until `set_down(..., down=False)`."""
        self.faults.set_down(channel, down)

    def set_fail_rate(
        self,
        channel: str | None,
        rate: float,
        statuses: Iterable[int] = DEFAULT_FAIL_STATUSES,
        retry_after: float | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """`rate` (0 to 1) of the sends of `channel` (None: of every channel) fail at random, each
        with one of `statuses` in the channel's error shape, a 429 with `Retry-After: retry_after`
        when given; rate 0 turns it off. Applied where `fail_next` is (after the credentials, before
        the send is recorded), after any failures `fail_next` queued. `seed` restarts the random
        streams, so a run can be repeated. Returns the state (`fail_rate()`); FaultSpecError (a
        ValueError naming the field) for a bad value."""
        self.faults.set_fail_rate(channel, rate, statuses, retry_after, seed)
        return self.fail_rate()

    def fail_rate(self) -> dict[str, Any]:
        """Each channel's random failure rate (None: off), the seed, and the failures injected at
        random so far per status (`injected`) and per channel and status (`injected_by_channel`)."""
        return self.faults.fail_rate()

    def set_delay(self, channel: str | None, seconds: float) -> None:
        """Every send of `channel` (None: every channel) answers `seconds` (0 to 60) later and is
        recorded only then, as a slow provider's; 0 answers at once. ValueError for a bad value."""
        self.latency.set_delay(channel, seconds)

    def reset(self) -> None:
        """Forget sends, files, injected faults (random failure rates and their counts too) and delays."""
        self.store.clear()
        self.files.clear()
        self.faults.clear()
        self.latency.clear()


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A record as JSON: file bytes as base64."""
    out = dict(record)
    out["files"] = [
        {k: v for k, v in f.items() if k != "data"}
        | ({"data_base64": base64.b64encode(f["data"]).decode()} if f.get("data") is not None else {})
        for f in record["files"]
    ]
    out["file"] = out["files"][0] if out["files"] else None
    return out


def control_blueprint(providers: ProviderSimulators) -> Blueprint:
    """`/providers/...`: put customer media, report a customer's message, inject faults and delays,
    read sends.

    No authentication and no CSRF protection: the sandbox serves it on loopback only, for the
    customer emulator's CLI and for demos; it is never part of a production deployment.
    """
    bp = Blueprint("sandbox_providers", __name__)

    def bad(message: str) -> tuple[Response, int]:
        return jsonify(error="bad_request", message=message), 400

    def payload() -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    @bp.post("/files")
    def put_file() -> tuple[Response, int]:
        """Raw body = the file; Content-Type = its MIME type; X-File-Name = its name. → 201 {"id"}."""
        data = request.get_data()
        if not data:
            return bad("the body must be the file's bytes")
        mime_type = request.mimetype or "application/octet-stream"
        name = request.headers.get("X-File-Name") or "file"
        file_id = providers.files.put(data, mime_type, name)
        return jsonify(id=file_id, size=len(data), mime_type=mime_type, name=name), 201

    @bp.post("/inbound")
    def inbound() -> tuple[Response, int] | Response:
        """{"channel", "asset", "customer", "message_id"?, "at"?}: the customer just wrote."""
        data = payload()
        if data.get("channel") not in CHANNELS or not data.get("asset") or not data.get("customer"):
            return bad("channel, asset and customer are required")
        at = data.get("at")
        if at is not None and not isinstance(at, int | float):
            return bad("at must be unix seconds")
        providers.store.note_inbound(
            data["channel"], str(data["asset"]), str(data["customer"]), at=at, message_id=data.get("message_id")
        )
        return Response(status=204)

    @bp.post("/fail")
    def fail() -> tuple[Response, int] | Response:
        """{"channel", "count", "status", "error_code"?, "retry_after"?}: see ProviderSimulators.fail_next."""
        data = payload()
        try:
            providers.fail_next(
                data.get("channel", ""),
                int(data.get("count", 1)),
                int(data.get("status", 0)),
                data.get("error_code"),
                data.get("retry_after"),
            )
        except (TypeError, ValueError) as exc:
            return bad(str(exc))
        return Response(status=204)

    @bp.post("/down")
    def down() -> tuple[Response, int] | Response:
        """{"channel"?: null for all, "down": true | false}."""
        data = payload()
        try:
            providers.set_down(data.get("channel"), bool(data.get("down", True)))
        except ValueError as exc:
            return bad(str(exc))
        return Response(status=204)

    def latency_state() -> Response:
        latency = providers.latency
        return jsonify(delays=latency.delays(), in_flight=latency.in_flight, peak_in_flight=latency.peak_in_flight)

    @bp.post("/control/delay")
    def delay() -> tuple[Response, int] | Response:
        """{"channel"?: null for all, "delay_seconds"?: 0 to 60, "reset_peak"?: true}: each send of the
        channel answers that much later (recorded when it answers). → the delays per channel, the sends
        in flight now and the most at once since the last reset_peak (an empty body only reads them)."""
        data = request.get_json(silent=True) if request.get_data() else {}
        if not isinstance(data, dict):
            return bad("the body must be a JSON object")
        channel = data.get("channel")
        if channel is not None and channel not in CHANNELS:
            return bad(f"channel must be one of {', '.join(CHANNELS)} or null (every channel)")
        if "delay_seconds" in data:
            try:
                providers.set_delay(channel, data["delay_seconds"])
            except ValueError as exc:
                return bad(str(exc))
        elif channel is not None:
            return bad("delay_seconds is required with channel")
        if data.get("reset_peak"):
            providers.latency.reset_peak()
        return latency_state()

    @bp.get("/control/delay")
    def delay_state() -> Response:
        """The delays per channel, the sends in flight now and their peak (see POST)."""
        return latency_state()

    @bp.post("/control/fail_rate")
    def fail_rate() -> tuple[Response, int] | Response:
        """{"channel": null for all | "sms" | ..., "rate": 0.0 to 1.0, "statuses"?: [500, 503, 429],
        "retry_after"?: seconds (on a 429), "seed"?: integer}: see ProviderSimulators.set_fail_rate.
        → the state, as GET shows it. A bad value: 400 with the field it names."""
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return jsonify(error="bad_request", field=None, message="the body must be a JSON object"), 400
        if "rate" not in data:
            return jsonify(error="bad_request", field="rate", message="rate is required (0.0 to 1.0)"), 400
        try:
            state = providers.set_fail_rate(
                data.get("channel"),
                data["rate"],
                data.get("statuses", DEFAULT_FAIL_STATUSES),
                data.get("retry_after"),
                data.get("seed"),
            )
        except FaultSpecError as exc:
            return jsonify(error="bad_request", field=exc.field, message=str(exc)), 400
        return jsonify(state)

    @bp.get("/control/fail_rate")
    def fail_rate_state() -> Response:
        """Each channel's random failure rate, the seed and the failures injected so far (see POST)."""
        return jsonify(providers.fail_rate())

    @bp.get("/sent")
    def sent() -> Response:
        """?channel=&customer=&asset=: the recorded sends, oldest first."""
        records = providers.store.sent(
            request.args.get("channel") or None,
            request.args.get("customer") or None,
            asset=request.args.get("asset") or None,
        )
        return jsonify(sent=[_public(r) for r in records])

    @bp.post("/reset")
    def reset() -> Response:
        providers.reset()
        return Response(status=204)

    return bp
