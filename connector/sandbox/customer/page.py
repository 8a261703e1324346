"""The customer page of the sandbox: pick a channel asset and a customer id, write (or attach a
file), and watch the conversation — what the customer sent (the emulator's history) and what came
back (the provider simulators' store), refreshed by polling `conversation`.

No CSRF protection and no login, on purpose: the sandbox serves this page on loopback only, for a
newcomer trying the product; it is never mounted in a production deployment.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from flask import Blueprint, Response, abort, jsonify, render_template, request, url_for

from connector.channels import CHANNELS
from connector.sandbox.customer.emulator import CustomerEmulator, SandboxUnavailable
from connector.sandbox.providers import ProviderSimulators

# A customer address to start with, per channel (each channel's own address form).
EXAMPLE_CUSTOMERS = {name: cls.example_address for name, cls in CHANNELS.items()}
# Typing indicators fade on the provider's side (WhatsApp after 25 s, Messenger after 20 s) even
# when no typing_off follows; the page stops showing one this long after it arrived.
TYPING_SHOWN_SECONDS = 30
# What ends an agent's typing on the page: any of these sent after it.
AFTER_TYPING = {"typing_off", "text", "file", "system", "close", "template", "interactive"}


def customer_blueprint(emulator: CustomerEmulator, providers: ProviderSimulators) -> Blueprint:
    bp = Blueprint(
        "sandbox_customer",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )

    @bp.get("/")
    def index() -> str:
        assets = [
            {"name": a.name, "channel": a.channel, "example": EXAMPLE_CUSTOMERS.get(a.channel, "customer-1")}
            for a in emulator.config.assets
        ]
        return render_template("sandbox_customer.html", assets=assets)

    @bp.get("/conversation")
    def conversation() -> Response:
        asset_name, customer = request.args.get("asset", ""), request.args.get("customer", "")
        try:
            asset = emulator.asset(asset_name)
        except ValueError as exc:
            return _problem(400, str(exc))
        entries: list[dict[str, Any]] = [
            {
                "who": "customer",
                "at": item["at"],
                "kind": item["kind"],
                "text": item["text"],
                "files": [{"name": item["file_name"], "href": None}] if item["file_name"] else [],
                "status": item["status"],
            }
            for item in emulator.history(asset.name, customer)
            if item["kind"] not in ("typing_on", "typing_off")
        ]
        typing = False
        for record in providers.store.sent(asset.channel, customer, asset=asset.name):
            if record["kind"] == "typing_on":
                typing = time.time() - record["at"] < TYPING_SHOWN_SECONDS
            elif record["kind"] in AFTER_TYPING:
                typing = False
            if record["kind"] in ("typing_on", "typing_off", "read"):
                continue
            entries.append(
                {
                    "who": "system" if record["kind"] == "system" else "agent",
                    "at": record["at"],
                    "kind": record["kind"],
                    "text": record["text"],
                    "files": [
                        {
                            "name": f.get("name") or f.get("url") or "file",
                            "href": url_for(".sent_file", seq=record["seq"], index=n)
                            if f.get("data") is not None
                            else f.get("url"),
                        }
                        for n, f in enumerate(record["files"])
                    ],
                }
            )
        entries.sort(key=lambda e: e["at"])
        return jsonify(entries=entries, typing=typing)

    @bp.post("/send")
    def send() -> tuple[Response, int] | Response:
        """Form fields: asset, customer, text, optional file; `action=close` closes instead."""
        asset_name = request.form.get("asset", "")
        customer = request.form.get("customer", "").strip()
        text = request.form.get("text", "").strip()
        upload = request.files.get("file")
        if not customer:
            return _problem(400, "enter a customer id")
        try:
            if request.form.get("action") == "close":
                response = emulator.send_close(asset_name, customer, check=False)
            elif upload is not None and upload.filename:
                data = upload.read()
                mime_type = upload.mimetype or "application/octet-stream"
                response = emulator.send_file(
                    asset_name, customer, data, mime_type, upload.filename, caption=text or None, check=False
                )
            elif text:
                response = emulator.send_text(asset_name, customer, text, check=False)
            else:
                return _problem(400, "write a message or attach a file")
        except ValueError as exc:
            return _problem(400, str(exc))
        except SandboxUnavailable as exc:
            return _problem(502, str(exc))
        except requests.RequestException as exc:
            return _problem(502, f"the connector at {emulator.connector_url} did not answer ({exc}); is it running?")
        return jsonify(ok=response.ok, status=response.status_code, answer=response.text[:500])

    @bp.get("/sent-file/<int:seq>/<int:index>")
    def sent_file(seq: int, index: int) -> Response:
        """A file the connector sent that only the simulator can read (Apple: stored decrypted)."""
        record = next((r for r in providers.store.sent() if r["seq"] == seq), None)
        if record is None or index >= len(record["files"]) or record["files"][index].get("data") is None:
            abort(404)
        file = record["files"][index]
        response = Response(file["data"], mimetype=file.get("mime") or "application/octet-stream")
        response.headers.set("Content-Disposition", "inline", filename=file.get("name") or "file")
        return response

    return bp


def _problem(status: int, message: str) -> tuple[Response, int]:
    return jsonify(ok=False, status=status, error=message), status
