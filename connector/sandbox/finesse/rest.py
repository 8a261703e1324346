"""One Finesse node's REST API (docs/protocols/finesse.md, "The Finesse simulator"), served from the
shared model.

Every answer is XML; every refusal is an `<ApiErrors>` body with the status Finesse uses. While the
node is OUT_OF_SERVICE every API except SystemInfo answers 503, so a client must fail over. Each
request is recorded (node, method, path, Basic user name, requestId, status) for test assertions.
"""

from __future__ import annotations

import time

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from flask import Flask, Response, g, request

from connector.sandbox.finesse import documents as doc
from connector.sandbox.finesse.model import FinesseModel, Principal, RequestRecord, SimError
from connector.sandbox.finesse.switch import Switch

XML = "application/xml"


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, content_type=XML)


def _error(status: int, error_type: str, message: str, data: str | None = None) -> Response:
    return _xml(doc.serialize(doc.api_errors([(error_type, message, data)])), status)


def create_node_app(model: FinesseModel, switch: Switch, node: str) -> Flask:
    """The WSGI app of node `node` ("publisher" | "subscriber")."""
    app = Flask(f"finesse-sim-{node}")

    @app.before_request
    def out_of_service() -> Response | None:
        g.user = request.authorization.username if request.authorization else None
        state = model.node(node)
        if state.status != "IN_SERVICE" and not request.path.endswith("/SystemInfo"):
            # While out of service every API but SystemInfo answers 503
            # (docs/protocols/finesse.md, "SystemInfo and failover").
            return _error(503, "Service Unavailable", f"Finesse is {state.status}; retry on the other node")
        return None

    @app.after_request
    def record(response: Response) -> Response:
        model.record(
            RequestRecord(
                node=node,
                method=request.method,
                path=request.path,
                query=request.query_string.decode(errors="replace"),
                user=g.get("user"),
                request_id=request.headers.get("requestId"),
                content_type=request.headers.get("Content-Type"),
                status=response.status_code,
                at=time.time(),
            )
        )
        return response

    @app.errorhandler(SimError)
    def refused(exc: SimError) -> Response:
        return _error(exc.status, exc.error_type, exc.message, exc.data)

    @app.errorhandler(404)
    def not_found(_exc: Exception) -> Response:
        return _error(404, "Not Found", f"no resource at {request.path}")

    @app.errorhandler(405)
    def not_allowed(_exc: Exception) -> Response:
        return _error(405, "Method Not Allowed", f"{request.method} is not allowed on {request.path}")

    def caller() -> Principal:
        auth = request.authorization
        who = model.authenticate(auth.username, auth.password) if auth and auth.type == "basic" else None
        if who is None:
            raise SimError(401, "Authorization Failure", "invalid user ID or password")
        return who

    def body(root_tag: str) -> dict[str, str | None]:
        if request.mimetype != XML:
            # Finesse (Jersey) refuses bodies that are not declared application/xml.
            raise SimError(415, "Unsupported Media Type", "Content-Type must be application/xml")
        try:
            root = SafeET.fromstring(request.get_data(), forbid_dtd=True)
        except (SafeET.ParseError, DefusedXmlException) as exc:
            raise SimError(400, "Bad Request", f"body is not well-formed XML: {exc}") from exc
        # REST bodies are exact: <User><state>…, as Finesse's schema binds them.
        if root.tag != root_tag:
            raise SimError(400, "Invalid Input", f"body must be a <{root_tag}> document")
        names = ("state", "reasonCodeId", "extension", "requestedAction", "targetMediaAddress")
        return {name: (root.findtext(name) or "").strip() or None for name in names}

    # -- system -------------------------------------------------------------------------------

    @app.get("/finesse/api/SystemInfo")
    def system_info() -> Response:
        return _xml(model.system_info_xml(node))

    # -- users --------------------------------------------------------------------------------

    @app.get("/finesse/api/Users")
    def users() -> Response:
        model.require_admin(caller())
        with model.lock:
            listed = [(a, model.reason(a.reason_code_id)) for a in model.agents.values()]
            return _xml(doc.serialize(doc.users(listed)))

    @app.get("/finesse/api/User/<agent_id>")
    def get_user(agent_id: str) -> Response:
        model.require_read(caller(), agent_id)
        with model.lock:
            agent = model.agent(agent_id)
            return _xml(doc.serialize(doc.user(agent, model.reason(agent.reason_code_id))))

    @app.put("/finesse/api/User/<agent_id>")
    def put_user(agent_id: str) -> Response:
        who = caller()
        fields = body("User")
        model.change_state(
            who,
            agent_id,
            state=fields["state"],
            reason_code_id=fields["reasonCodeId"],
            extension=fields["extension"],
            request_id=request.headers.get("requestId"),
        )
        # Accepted; the outcome is published as an XMPP Update
        # (docs/protocols/finesse.md, "Transport and authentication").
        return Response(status=202)

    # -- reason codes -------------------------------------------------------------------------

    @app.get("/finesse/api/User/<agent_id>/ReasonCodes")
    def user_reason_codes(agent_id: str) -> Response:
        model.require_read(caller(), agent_id)
        model.agent(agent_id)
        category = request.args.get("category")
        if not category:
            raise SimError(400, "Parameter Missing", "category is required (NOT_READY or LOGOUT)")
        if category == "ALL":
            raise SimError(400, "Invalid Input", "category must be NOT_READY or LOGOUT")
        return _xml(doc.serialize(doc.reason_codes(model.visible_reason_codes(category))))

    @app.get("/finesse/api/User/<agent_id>/ReasonCode/<rc_id>")
    def user_reason_code(agent_id: str, rc_id: str) -> Response:
        model.require_read(caller(), agent_id)
        model.agent(agent_id)
        rc = model.reason(rc_id)
        if rc is None or rc.system:
            raise SimError(404, "Not Found", f"ReasonCode {rc_id} not found")
        return _xml(doc.serialize(doc.reason_code(rc)))

    @app.get("/finesse/api/ReasonCodes")
    def all_reason_codes() -> Response:
        model.require_admin(caller())
        category = request.args.get("category")
        if not category:
            raise SimError(400, "Parameter Missing", "category is required (NOT_READY, LOGOUT or ALL)")
        return _xml(doc.serialize(doc.reason_codes(model.visible_reason_codes(category))))

    # -- dialogs ------------------------------------------------------------------------------

    @app.get("/finesse/api/User/<agent_id>/Dialogs")
    def user_dialogs(agent_id: str) -> Response:
        model.require_read(caller(), agent_id)
        model.agent(agent_id)
        with model.lock:
            return _xml(doc.serialize(doc.dialogs(model.dialogs_of(agent_id))))

    @app.get("/finesse/api/Dialog/<dialog_id>")
    def get_dialog(dialog_id: str) -> Response:
        who = caller()
        with model.lock:
            dialog = model.dialog(dialog_id)
            model.require_read(who, dialog.agent_id)
            return _xml(doc.serialize(doc.dialog(dialog)))

    @app.put("/finesse/api/Dialog/<dialog_id>")
    def put_dialog(dialog_id: str) -> Response:
        who = caller()
        fields = body("Dialog")
        switch.act(who, dialog_id, fields["requestedAction"], fields["targetMediaAddress"])
        return Response(status=202)

    # -- non-voice media ----------------------------------------------------------------------

    @app.get("/finesse/api/User/<agent_id>/Media")
    def media_list(agent_id: str) -> Response:
        """Media—Get List: every non-voice MRD with the agent's state in it, as `<MediaList>`."""
        model.require_read(caller(), agent_id)
        with model.lock:
            agent, items = model.media_list(agent_id)
            return _xml(doc.serialize(doc.media_list(agent, [(m, model.reason(m.reason_code_id)) for m in items])))

    @app.get("/finesse/api/User/<agent_id>/Media/<mrd_id>")
    def get_media(agent_id: str, mrd_id: str) -> Response:
        model.require_read(caller(), agent_id)
        with model.lock:
            agent, media = model.media_of(agent_id, mrd_id)
            return _xml(doc.serialize(doc.media(agent, media, model.reason(media.reason_code_id))))

    @app.put("/finesse/api/User/<agent_id>/Media/<mrd_id>")
    def put_media(agent_id: str, mrd_id: str) -> Response:
        who = caller()
        fields = body("Media")
        model.change_media_state(
            who,
            agent_id,
            mrd_id,
            state=fields["state"],
            reason_code_id=fields["reasonCodeId"],
            request_id=request.headers.get("requestId"),
        )
        return Response(status=202)

    return app
