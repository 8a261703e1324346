"""The simulator's JSON control API (`/control/...`): provision agents and reason codes, script calls,
take nodes down, inject asynchronous refusals, and read back the requests and notifications.

It runs on its own port, so it stays reachable while both Finesse nodes refuse connections.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request

from connector.sandbox.finesse.model import SimAgent, SimDialog, SimError

if TYPE_CHECKING:
    from connector.sandbox.finesse import FinesseSandbox


def agent_json(agent: SimAgent) -> dict[str, Any]:
    """An agent as the control API shows it (never the password)."""
    return {
        "id": agent.id,
        "login_name": agent.login_name,
        "extension": agent.extension,
        "first_name": agent.first_name,
        "last_name": agent.last_name,
        "team_id": agent.team_id,
        "team_name": agent.team_name,
        "roles": list(agent.roles),
        "state": agent.state,
        "reason_code_id": agent.reason_code_id,
        "pending_state": agent.pending_state,
        "media": {m.mrd_id: {"state": m.state, "reason_code_id": m.reason_code_id} for m in agent.media.values()},
    }


def dialog_json(dialog: SimDialog) -> dict[str, Any]:
    return {
        "id": dialog.id,
        "agent_id": dialog.agent_id,
        "call_type": dialog.call_type,
        "routed": dialog.routed,
        "state": dialog.state,
        "from_address": dialog.from_address,
        "to_address": dialog.to_address,
        "associated_dialog_id": dialog.associated_dialog_id,
        "participants": [{"media_address": p.media_address, "state": p.state} for p in dialog.participants],
    }


def create_control_app(sandbox: FinesseSandbox) -> Flask:
    app = Flask("finesse-sim-control")
    model, switch = sandbox.model, sandbox.switch

    @app.errorhandler(SimError)
    def refused(exc: SimError) -> tuple[Response, int]:
        return jsonify(error=exc.error_type, message=exc.message), exc.status

    def payload() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            if request.get_data():
                raise SimError(400, "Invalid Input", "body must be a JSON object")
            return {}
        return data

    def required(data: dict[str, Any], name: str) -> Any:
        if data.get(name) in (None, ""):
            raise SimError(400, "Parameter Missing", f"{name} is required")
        return data[name]

    # -- provisioning ---------------------------------------------------------------------------

    @app.get("/control/state")
    def state() -> Response:
        with model.lock:
            return jsonify(
                agents=[agent_json(a) for a in model.agents.values()],
                dialogs=[dialog_json(d) for d in model.dialogs.values()],
                reason_codes=[asdict(rc) for rc in model.reason_codes.values()],
                nodes={n.name: {"status": n.status, "reachable": n.reachable} for n in model.nodes.values()},
            )

    @app.post("/control/reason_codes")
    def add_reason_code() -> tuple[Response, int]:
        data = payload()
        rc = model.add_reason_code(
            str(required(data, "id")),
            required(data, "category"),
            str(required(data, "code")),
            required(data, "label"),
            system=bool(data.get("system", False)),
        )
        return jsonify(asdict(rc)), 201

    @app.post("/control/agents")
    def add_agent() -> tuple[Response, int]:
        """Body: id, password, extension, and optionally login_name, first_name, last_name, team_id,
        team_name, roles, state, reason_code_id, media (MRD ids; default the chat MRD "2"), reason_codes
        ([{id, category, code, label}])."""
        data = payload()
        for rc in data.get("reason_codes", []):
            model.add_reason_code(str(rc["id"]), rc["category"], str(rc["code"]), rc["label"])
        details = {k: data[k] for k in ("login_name", "first_name", "last_name", "team_id", "team_name") if k in data}
        if "roles" in data:
            details["roles"] = tuple(data["roles"])
        agent = model.add_agent(
            str(required(data, "id")),
            required(data, "password"),
            extension=str(required(data, "extension")),
            state=data.get("state", "LOGOUT"),
            reason_code_id=data.get("reason_code_id"),
            media=tuple(str(m) for m in data["media"]) if "media" in data else None,  # default: the chat MRD
            **details,
        )
        return jsonify(agent_json(agent)), 201

    @app.get("/control/agents/<agent_id>")
    def get_agent(agent_id: str) -> Response:
        with model.lock:
            return jsonify(agent_json(model.agent(agent_id)))

    @app.post("/control/agents/<agent_id>/wrapup_end")
    def wrapup_end(agent_id: str) -> Response:
        model.end_wrapup(agent_id)
        return jsonify(agent_json(model.agent(agent_id)))

    @app.post("/control/agents/<agent_id>/refuse_next")
    def refuse_next(agent_id: str) -> Response:
        data = payload()
        model.refuse_next(
            agent_id,
            data.get("error_type", "Invalid State"),
            data.get("message", "CTI refused"),
            data.get("error_data"),
        )
        return jsonify(queued=True)

    @app.post("/control/agents/<agent_id>/api_error")
    def api_error(agent_id: str) -> Response:
        data = payload()
        model.publish_api_error(
            agent_id,
            data.get("error_type", "Invalid State"),
            data.get("message", "CTI refused"),
            data.get("error_data"),
            data.get("request_id"),
        )
        return jsonify(published=True)

    @app.post("/control/agents/reset")
    def reset_agents() -> Response:
        model.reset_agents(payload().get("state", "NOT_READY"))
        return jsonify(reset=True)

    # -- calls ----------------------------------------------------------------------------------

    @app.post("/control/calls")
    def start_call() -> tuple[Response, int]:
        """Body: agent_id, call_type, and optionally from_address, to_address, routed,
        associated_dialog_id, queue_name, call_variables."""
        data = payload()
        dialog = switch.start_call(
            str(required(data, "agent_id")),
            required(data, "call_type"),
            from_address=data.get("from_address"),
            to_address=data.get("to_address"),
            routed=data.get("routed"),
            associated_dialog_id=data.get("associated_dialog_id"),
            queue_name=data.get("queue_name"),
            call_variables=data.get("call_variables"),
        )
        with model.lock:
            return jsonify(dialog_json(dialog)), 201

    @app.post("/control/calls/<dialog_id>/<step>")
    def call_step(dialog_id: str, step: str) -> Response:
        """step: answer | hold | retrieve | end (body: wrapup WORK | WORK_READY) | rona."""
        if step == "end":
            switch.end(dialog_id, wrapup=payload().get("wrapup"))
        elif step in ("answer", "hold", "retrieve", "rona"):
            getattr(switch, step)(dialog_id)
        else:
            raise SimError(404, "Not Found", f"unknown step {step!r}")
        return jsonify(done=step)

    # -- nodes ----------------------------------------------------------------------------------

    @app.post("/control/nodes/<name>/down")
    def node_down(name: str) -> Response:
        """Body: mode "refused" (connections refused) or "out_of_service" (503 but SystemInfo),
        reset_agents (bool: agents come back NOT_READY, as after a real failover)."""
        data = payload()
        sandbox.node_down(name, data.get("mode", "refused"))
        if data.get("reset_agents"):
            model.reset_agents()
        return jsonify(node=name, up=False)

    @app.post("/control/nodes/<name>/up")
    def node_up(name: str) -> Response:
        sandbox.node_up(name)
        return jsonify(node=name, up=True)

    # -- observations ---------------------------------------------------------------------------

    @app.get("/control/requests")
    def requests_received() -> Response:
        """Query: node, api_only=1 (leave out SystemInfo probes)."""
        found = model.requests_to(request.args.get("node"), api_only=request.args.get("api_only") == "1")
        return jsonify(requests=[asdict(r) for r in found])

    @app.delete("/control/requests")
    def clear_requests() -> Response:
        with model.lock:
            model.requests.clear()
        return jsonify(cleared=True)

    @app.get("/control/notifications")
    def notifications() -> Response:
        node = request.args.get("node")
        with model.lock:
            found = [{"node": n, "update": x} for n, x in model.notifications if node in (None, n)]
        return jsonify(notifications=found)

    @app.get("/control/xmpp/sessions")
    def xmpp_sessions() -> Response:
        return jsonify(sessions=sandbox.xmpp.connected())

    @app.post("/control/xmpp/disconnect")
    def xmpp_disconnect() -> Response:
        sandbox.xmpp.disconnect_all()
        return jsonify(disconnected=True)

    return app
