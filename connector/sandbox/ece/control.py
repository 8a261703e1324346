"""The simulator's control API (`/control/...`, JSON) and the agent console page (`/console`).

Tests and the console drive the agent's side here: entry point switches, agent actions (each
produces the callback events of docs/protocols/ece.md, "Callback events"), failure switches and emitter
options; `GET /control/state` shows everything the simulator holds.

No authentication on purpose: the sandbox binds to loopback only and this API exists to be scripted.
It must never be mounted in a production process.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, render_template_string, request, send_from_directory

from connector.sandbox.ece.model import Attachment, Conversation, EntryPoint, SimError

if TYPE_CHECKING:
    from connector.sandbox.ece import EceSimulator

HERE = Path(__file__).resolve().parent
CONSOLE_PAGE = (HERE / "console.html").read_text(encoding="utf-8")
# The console's demo agents. [I] ECE user ids are not Finesse ids; these match the Finesse sandbox's
# demo agents (connector/sandbox/main.py) so the two simulators tell one story.
DEMO_AGENTS = ({"id": "1001", "name": "Alice"}, {"id": "1002", "name": "Bob"})
SWITCHES = (
    "active",
    "agents_available",
    "capacity",
    "queue_depth",
    "wait_seconds",
    "bound",
    "attachment_policies",
    "name",
)


def entry_point_json(ep: EntryPoint) -> dict[str, Any]:
    return {**asdict(ep), "eligibility": ep.eligibility, "slots": ep.slots, "chat_allowed": ep.chat_allowed}


def attachment_json(att: Attachment, url: str) -> dict[str, Any]:
    return {
        "id": att.id,
        "direction": att.direction,
        "name": att.name,
        "mime_type": att.mime_type,
        "size": att.size,
        "url": url,
        "decision": att.decision,
        "received_at": att.received_at,
    }


def conversation_json(conv: Conversation, files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": conv.id,
        "entry_point_id": conv.entry_point_id,
        "app": conv.app,
        "activity_id": conv.activity_id,
        "customer_attributes": conv.customer_attributes,
        "custom_attributes": conv.custom_attributes,
        "subject": conv.subject,
        "locale": conv.locale,
        "state": conv.state,
        "reference": conv.reference,
        "agent": asdict(conv.agent) if conv.agent else None,
        "started_at": conv.started_at,
        "received": [asdict(r) for r in conv.received],
        "attachments": files,
        "events": conv.events,
    }


def snapshot(sim: EceSimulator) -> dict[str, Any]:
    """Everything the simulator holds, as `GET /control/state` shows it (and the console renders)."""
    model, emitter = sim.model, sim.emitter
    with model.lock:
        files: dict[str, list[dict[str, Any]]] = {}
        for att in model.files.values():
            files.setdefault(att.conversation_id, []).append(attachment_json(att, model.file_url(att.id)))
        url, auth = model.callback()
        return {
            "entry_points": [entry_point_json(ep) for ep in model.entry_points.values()],
            "conversations": [conversation_json(c, files.get(c.id, [])) for c in model.conversations.values()],
            "callback": {"url": url, "auth_type": auth.get("type", "none")},
            "failures": {
                "down": model.down,
                "fail_next_pending": model.failures_pending,
                "lookup_served": model.lookup_served,
                "delay_seconds": model.answer_delay_seconds,
                "in_flight": model.in_flight,
                "peak_in_flight": model.peak_in_flight,
            },
            "emitter": emitter.options(),
            "demo_agents": list(DEMO_AGENTS),
        }


def _payload() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if data is None:
        if request.get_data():
            raise SimError(400, "body must be a JSON object")
        return {}
    if not isinstance(data, dict):
        raise SimError(400, "body must be a JSON object")
    return data


def _required(data: dict[str, Any], name: str) -> Any:
    if data.get(name) in (None, ""):
        raise SimError(400, f"{name} is required")
    return data[name]


def _file_from_request() -> tuple[str, str, bytes]:
    """A multipart `file` (the console) or JSON `{name, mime_type, content | data_base64}` (tests)."""
    upload = request.files.get("file")
    if upload is not None:
        name = request.form.get("name") or upload.filename or ""
        mime = request.form.get("mimeType") or upload.mimetype or "application/octet-stream"
        return name, mime, upload.read()
    data = _payload()
    if "data_base64" in data:
        try:
            raw = base64.b64decode(data["data_base64"], validate=True)
        except (binascii.Error, TypeError) as exc:
            raise SimError(400, "data_base64 is not valid base64") from exc
    else:
        raw = str(data.get("content", "")).encode()
    name = str(_required(data, "name"))
    return name, data.get("mime_type") or mimetypes.guess_type(name)[0] or "application/octet-stream", raw


def register_control(bp: Blueprint, sim: EceSimulator) -> None:
    """Add the control API and the console to `bp`."""
    model, emitter = sim.model, sim.emitter

    # -- state ----------------------------------------------------------------------------------

    @bp.get("/control/state")
    def state() -> Response:
        return jsonify(snapshot(sim))

    @bp.get("/control/deliveries")
    def deliveries() -> Response:
        return jsonify(deliveries=[{**asdict(d), "ok": d.ok} for d in list(emitter.delivered)])

    # -- entry points ---------------------------------------------------------------------------

    @bp.post("/control/entry_points")
    def add_entry_point() -> tuple[Response, int]:
        data = _payload()
        ep_id = str(_required(data, "id"))
        if ep_id in model.entry_points:
            raise SimError(409, f"entry point {ep_id} exists: POST /control/entry_points/{ep_id} to change it")
        ep = model.add_entry_point(ep_id, **{k: data[k] for k in SWITCHES if k in data})
        return jsonify(entry_point_json(ep)), 201

    @bp.post("/control/entry_points/<ep_id>")
    def set_entry_point(ep_id: str) -> Response:
        """Body: any of the switches, and `bump_last_modified: true` (connector's copy goes stale)."""
        data = _payload()
        unknown = set(data) - {*SWITCHES, "bump_last_modified"}
        if unknown:
            raise SimError(400, f"unknown switches {sorted(unknown)}; known: {', '.join(SWITCHES)}, bump_last_modified")
        with model.lock:
            ep = model.set_entry_point(ep_id, **{k: data[k] for k in SWITCHES if k in data})
            if data.get("bump_last_modified"):
                model.bump_last_modified(ep_id)
            return jsonify(entry_point_json(ep))

    # -- agent actions --------------------------------------------------------------------------

    @bp.post("/control/conversations/<conv_id>/<action>")
    def agent_action(conv_id: str, action: str) -> tuple[Response, int]:
        """assign {agent_id, agent_name} | typing {on} | say {text, html} | transfer {kind, name} |
        page_push {url} | upload_file (multipart file, or JSON) | accept_attachment {attachment_id} |
        reject_attachment {attachment_id} | complete. An ended conversation refuses them all (409)."""
        if action == "upload_file":
            name, mime, raw = _file_from_request()
            return jsonify(model.upload_file(conv_id, name, mime, raw)), 201
        data = _payload()
        if action == "assign":
            event = model.assign(conv_id, str(_required(data, "agent_id")), str(_required(data, "agent_name")))
        elif action == "typing":
            event = model.typing(conv_id, bool(data.get("on", True)))
        elif action == "say":
            event = model.say(conv_id, str(_required(data, "text")), html=bool(data.get("html", False)))
        elif action == "transfer":
            event = model.transfer(conv_id, str(_required(data, "kind")), str(_required(data, "name")))
        elif action == "page_push":
            event = model.page_push(conv_id, str(_required(data, "url")))
        elif action == "accept_attachment":
            event = model.accept_attachment(conv_id, str(_required(data, "attachment_id")))
        elif action == "reject_attachment":
            event = model.reject_attachment(conv_id, str(_required(data, "attachment_id")))
        elif action == "complete":
            event = model.complete(conv_id)
        else:
            raise SimError(404, f"unknown agent action {action!r}")
        return jsonify(event), 201

    # -- failure switches, callback and emitter -------------------------------------------------

    @bp.post("/control/failures")
    def failures() -> Response:
        """Body: down ("503" | null), token_expire_all (true), fail_next ({count, status}),
        lookup_served (bool: whether the find_conversation lookup is served; off answers 405),
        delay_seconds (every API call answers that much later; 0 at once), reset_peak (true: the
        most calls in flight at once counts from now)."""
        data = _payload()
        if "delay_seconds" in data:
            model.set_answer_delay(float(data["delay_seconds"] or 0))
        if data.get("reset_peak"):
            model.reset_peak()
        if "lookup_served" in data:
            model.lookup_served = bool(data["lookup_served"])
        if "down" in data:
            model.set_down(data["down"])
        if data.get("token_expire_all"):
            model.token_expire_all()
        if "fail_next" in data:
            spec = data["fail_next"] or {}
            model.fail_next(int(spec.get("count", 1)), int(_required(spec, "status")))
        return jsonify(
            down=model.down,
            fail_next_pending=model.failures_pending,
            lookup_served=model.lookup_served,
            delay_seconds=model.answer_delay_seconds,
            in_flight=model.in_flight,
            peak_in_flight=model.peak_in_flight,
        )

    @bp.post("/control/holds")
    def holds() -> tuple[Response, int] | Response:
        """Test-only. Body: {"hold": "start"} holds the next start request (received, not yet done)
        until {"release": true} lets every held request complete, as ECE would."""
        data = _payload()
        if data.get("hold") is not None:
            if data["hold"] != "start":
                raise SimError(400, 'hold must be "start"')
            model.holds.hold_next("start")
            return jsonify(armed="start"), 201
        if data.get("release"):
            model.holds.release_all()
            return jsonify(released=True)
        raise SimError(400, 'body must be {"hold": "start"} or {"release": true}')

    @bp.post("/control/callback")
    def callback() -> Response:
        """Body: url (or null) and auth ({type: none} | {type: bearer, token} | {type: basic, username, password})."""
        data = _payload()
        model.configure_callback(data.get("url"), data.get("auth"))
        emitter.wake()
        url, auth = model.callback()
        return jsonify(url=url, auth_type=auth.get("type"))

    @bp.post("/control/emitter")
    def emitter_options() -> Response:
        """Body: batch_size (1..1000 | null), duplicate_next (n), reverse_next_batch (true), paused (bool)."""
        data = _payload()
        if "batch_size" in data:
            emitter.set_batch_size(data["batch_size"])
        if data.get("duplicate_next"):
            emitter.duplicate_next(int(data["duplicate_next"]))
        if data.get("reverse_next_batch"):
            emitter.reverse_next_batch()
        if data.get("paused") is True:
            emitter.pause()
        elif data.get("paused") is False:
            emitter.resume()
        return jsonify(emitter.options())

    # -- the agent console ----------------------------------------------------------------------

    @bp.get("/console")
    def console() -> str:
        """The page carries the current state, so it lists the conversations at once; console.js then
        renders it and keeps it fresh by polling `control/state`."""
        return render_template_string(CONSOLE_PAGE, initial_state=snapshot(sim))

    @bp.get("/console.js")
    def console_js() -> Response:
        return send_from_directory(HERE, "console.js", mimetype="text/javascript")
