"""The ECE API the connector calls, exactly as docs/protocols/ece.md fixes it: the client-app
token, entry point configuration, the five availability checks, and start / find by reference /
send / attach / end.

Refusals are eGain-style JSON errors (`{"code": "401-101", "developerMessage": ...}`), except the
availability checks, which answer XML unless the caller sends `Accept: application/json`
(docs/protocols/ece.md, "Availability checks"). Failure switches apply before any effect: `down`
answers 503 to every API call (token and availability included); `fail_next` answers its status to
the next messaging calls.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from flask import Blueprint, Response, g, jsonify, request, send_file, url_for

from connector.sandbox.ece.model import AGENT_TYPES, REFERENCE_ATTRIBUTE, EceModel, EntryPoint, SimError

JSON = "application/json"
XML = "application/xml"
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024  # [I] the sandbox's cap; ECE's is set per entry point
AVAILABILITY = "/system/egain/chat/entrypoint"
# The availability XML root declares the eGain chat binding namespace
# (docs/protocols/ece.md, "Availability checks").
MESSAGING_ENDPOINTS = {
    "configuration",
    "start_conversation",
    "find_conversation",
    "send_message",
    "send_attachment",
    "end_conversation",
}
API_ENDPOINTS = {"token", "availability", "download_file", *MESSAGING_ENDPOINTS}
NS2 = 'xmlns:ns2="http://bindings.egain.com/chat"'
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'


def _flag(value: bool) -> str:
    return "true" if value else "false"


# check name → (JSON answer, XML answer): docs/protocols/ece.md, "Availability checks", "The ECE simulator".
CHECKS: dict[str, tuple[Callable[[EntryPoint], dict[str, Any]], Callable[[EntryPoint], str]]] = {
    "agentAvailability": (
        lambda ep: {"available": ep.agents_available},
        lambda ep: f'<agentAvailability {NS2} available="{_flag(ep.agents_available)}"/>',
    ),
    "capacity": (
        lambda ep: {"count": ep.slots},
        lambda ep: f"<availableSlots {NS2}><ns2:count>{ep.slots}</ns2:count></availableSlots>",
    ),
    "checkEligibility": (
        lambda ep: {"responseType": ep.eligibility},
        lambda ep: f'<checkEligibility {NS2} responseType="{ep.eligibility}"/>',
    ),
    "chatAllowed": (
        lambda ep: {"allowed": ep.chat_allowed},
        lambda ep: f'<chatAllowed {NS2} allowed="{_flag(ep.chat_allowed)}"/>',
    ),
    # [I] path and XML shape: the ECE path was not captured; modelled on sessionStatus
    # (docs/protocols/ece.md, "Queue depth and wait (inferred)").
    "liveSessionStatus": (
        lambda ep: {"queueDepth": ep.queue_depth, "waitTime": ep.wait_seconds},
        lambda ep: (
            f"<liveSessionStatus {NS2}><ns2:waitTime>{ep.wait_seconds}</ns2:waitTime>"
            f"<ns2:queueDepth>{ep.queue_depth}</ns2:queueDepth></liveSessionStatus>"
        ),
    ),
}


def error_response(exc: SimError) -> tuple[Response, int]:
    return jsonify(exc.as_json()), exc.status


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match([XML, JSON], default=XML) == JSON


def _xml(body: str, status: int = 200) -> Response:
    return Response(XML_DECLARATION + body, status=status, content_type=f"{XML}; charset=utf-8")


def _bearer_app(model: EceModel) -> str:
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    return model.app_for_token(value.strip() if scheme.lower() == "bearer" else None)


def _json_body() -> dict[str, Any]:
    try:
        data = json.loads(request.get_data(as_text=True) or "null")
    except ValueError as exc:
        # ECE answers bad escaping with a parser message, "illegal unquoted character"
        # (docs/protocols/ece.md, "Send message").
        raise SimError(400, f"request body is not valid JSON: {exc}", "400-100") from exc
    if not isinstance(data, dict):
        raise SimError(400, "request body must be a JSON object", "400-100")
    return data


def _name_values(data: Any, where: str) -> list[dict[str, Any]]:
    """`[{"name", "value"}]` as the profile's start body has it; absent is an empty list."""
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in data):
        raise SimError(400, f"{where} must be a list of {{name, value}} objects", "400-103")
    return [{"name": i["name"], "value": i.get("value")} for i in data]


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise SimError(400, f"{key} must be a string", "400-103")
    return value


def _entry_point_id(ep_id: str) -> int | str:
    # The confirmed configuration sample carries the id as a number: {"entryPoint":{"id":1001}}.
    return int(ep_id) if ep_id.isdigit() else ep_id


def register_api(bp: Blueprint, model: EceModel) -> None:
    """Add the ECE API routes to `bp` (all relative to its mount prefix)."""
    client_apps = f"/system/ws/{model.api_version}/clientapplications"
    conversations = f"{client_apps}/messaging/conversations"

    @bp.before_request
    def learn_url_and_apply_failures() -> tuple[Response, int] | None:
        if model.public_url is None:
            # Agent file URLs must be absolute for the connector to fetch them.
            model.configure_public_url(url_for(".download_file", file_id="0", _external=True).removesuffix("/files/0"))
        endpoint = (request.endpoint or "").rpartition(".")[2]
        if endpoint not in API_ENDPOINTS:
            return None
        g.ece_call = True
        if delay := model.call_began():
            time.sleep(delay)
        if model.down == "503":
            return error_response(SimError(503, "ECE is unavailable (sandbox down switch): retry later", "503-100"))
        if endpoint in MESSAGING_ENDPOINTS:
            status = model.take_failure()
            if status is not None:
                return error_response(
                    SimError(status, f"injected failure ({status}) from the sandbox fail_next switch")
                )
        return None

    @bp.teardown_request
    def count_the_answer(_exc: BaseException | None) -> None:
        if g.pop("ece_call", False):
            model.call_ended()

    # -- client application token (confirmed: docs/protocols/ece.md, "Client-application token") --

    @bp.post(f"{client_apps}/authentication/oauth2/token")
    def token() -> Response:
        auth = request.authorization
        if auth is None or auth.type != "basic":
            raise SimError(401, "Authorization: Basic base64(client key:client secret) is required", "401-100")
        model.authenticate_app(auth.username, auth.password)
        if request.form.get("grant_type") != "client_credentials":
            raise SimError(400, "grant_type must be client_credentials (form encoded)", "400-104")
        issued = model.issue_token(auth.username, auth.password)
        # The confirmed answer (docs/protocols/ece.md, "Client-application token"):
        # {"access_token", "expires_in", "token_type": "Bearer"}.
        return jsonify({"access_token": issued.value, "expires_in": model.token_ttl, "token_type": "Bearer"})

    # -- entry point configuration (confirmed) --------------------------------------------------

    @bp.get(f"{client_apps}/messaging/configuration")
    def configuration() -> Response:
        app = _bearer_app(model)
        ep_id = request.args.get("entrypoint")
        if not ep_id:
            raise SimError(400, "query parameter entrypoint is required", "400-105")
        ep = model.configuration(app, ep_id)
        return jsonify(
            entryPointConfiguration=[
                {
                    "entryPoint": {"id": _entry_point_id(ep.id)},
                    "lastModified": ep.last_modified,
                    "attachmentPolicies": ep.attachment_policies,
                }
            ]
        )

    # -- availability checks (confirmed family A paths, no auth; liveSessionStatus inferred) -----

    @bp.get(f"{AVAILABILITY}/<check>/<ep_id>")
    def availability(check: str, ep_id: str) -> Response | tuple[Response, int]:
        shapes = CHECKS.get(check)
        with model.lock:
            ep = model.entry_points.get(ep_id)
            if shapes is None or ep is None:
                what = f"entry point {ep_id} does not exist" if shapes else f"no availability check {check!r}"
                exc = SimError(404, what, "404-101")
                if _wants_json():
                    return error_response(exc)
                body = (
                    '<error xmlns="http://bindings.egain.com/ws/model/v12/gen/common">'
                    f"<code>{exc.code}</code><developerMessage>{escape(exc.message)}</developerMessage></error>"
                )
                return _xml(body, 404)
            as_json, as_xml = shapes
            return jsonify(as_json(ep)) if _wants_json() else _xml(as_xml(ep))

    # -- conversations (inferred paths, profile defaults) ---------------------------------------

    @bp.post(conversations)
    def start_conversation() -> tuple[Response, int]:
        app = _bearer_app(model)
        data = _json_body()
        entry_point = data.get("entryPoint")
        if not isinstance(entry_point, dict) or entry_point.get("id") in (None, ""):
            raise SimError(400, "entryPoint.id is required", "400-103")
        last_modified = entry_point.get("lastModified")
        if not isinstance(last_modified, str) or not last_modified:
            raise SimError(400, "entryPoint.lastModified is required: fetch the entry point configuration", "400-103")
        customer = data.get("customer") or {}
        if not isinstance(customer, dict):
            raise SimError(400, "customer must be an object with attributes", "400-103")
        custom = _name_values(data.get("customAttributes"), "customAttributes")
        # The connector's client reference is kept beside the conversation, apart from the
        # integration's own attributes (docs/protocols/ece.md, "Start conversation").
        reference = next((str(a["value"]) for a in custom if a["name"] == REFERENCE_ATTRIBUTE and a["value"]), None)
        model.holds.checkpoint("start", data)  # test-only: a held start completes once released
        conv = model.start_conversation(
            app,
            str(entry_point["id"]),
            last_modified,
            customer_attributes=_name_values(customer.get("attributes"), "customer.attributes"),
            custom_attributes=[a for a in custom if a["name"] != REFERENCE_ATTRIBUTE],
            subject=_optional_str(data, "subject"),
            locale=_optional_str(data, "locale"),
            reference=reference,
        )
        return jsonify(conversation={"id": conv.id}, activity={"id": conv.activity_id}), 201

    @bp.get(conversations)
    def find_conversation() -> tuple[Response, int]:
        """[I] The app's conversations started with `?reference=` (their `connector_reference` custom
        attribute); none is an empty list, not a 404 (docs/protocols/ece.md, "Start conversation")."""
        app = _bearer_app(model)
        if not model.lookup_served:
            raise SimError(405, "GET is not supported on conversations (sandbox lookup switch off)", "405-100")
        reference = request.args.get("reference", "")
        if not reference:
            raise SimError(400, "query parameter reference is required", "400-105")
        found = model.find_by_reference(app, reference)
        listed = [{"id": conv.id, "reference": reference, "state": conv.state} for conv in found]
        return jsonify(conversations=listed), 200

    @bp.post(f"{conversations}/<conv_id>/messages")
    def send_message(conv_id: str) -> tuple[Response, int]:
        app = _bearer_app(model)
        data = _json_body()
        kind = data.get("type")
        value = kind.get("value") if isinstance(kind, dict) else None
        if value not in AGENT_TYPES:
            raise SimError(400, f"type.value must be one of {', '.join(AGENT_TYPES)}", "400-103")
        content = data.get("content")
        if not isinstance(content, str) or not content:
            raise SimError(400, "content must be a non-empty string", "400-103")
        return jsonify(id=model.receive_message(app, conv_id, value, content)), 201

    @bp.post(f"{conversations}/<conv_id>/attachments")
    def send_attachment(conv_id: str) -> tuple[Response, int]:
        app = _bearer_app(model)
        if (request.content_length or 0) > MAX_ATTACHMENT_BYTES:
            raise SimError(413, f"attachment larger than {MAX_ATTACHMENT_BYTES} bytes", "413-100")
        upload = request.files.get("file")
        if upload is None:
            raise SimError(400, "multipart field file is required", "400-103")
        name = request.form.get("name") or upload.filename or ""
        if not name:
            raise SimError(400, "name is required", "400-103")
        mime_type = request.form.get("mimeType") or upload.mimetype or "application/octet-stream"
        file_id = model.receive_attachment(app, conv_id, name, mime_type, upload.read())
        return jsonify(id=file_id), 201

    @bp.post(f"{conversations}/<conv_id>/end")
    def end_conversation(conv_id: str) -> Response:
        model.end_conversation(_bearer_app(model), conv_id)
        return Response(status=204)

    # -- files ----------------------------------------------------------------------------------

    @bp.get("/files/<file_id>")
    def download_file(file_id: str) -> Response:
        """Both directions' files. No auth here: whether real ECE protects its attachment URLs (and
        how) is unconfirmed (docs/protocols/ece.md, "Open gaps"), so the connector must not rely on either."""
        with model.lock:
            att = model.files.get(file_id)
            if att is None:
                raise SimError(404, f"file {file_id} does not exist", "404-104")
            data, name, mime_type = att.data, att.name, att.mime_type
        return send_file(io.BytesIO(data), mimetype=mime_type, as_attachment=True, download_name=name)
