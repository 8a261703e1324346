"""Twilio Programmable Messaging, the provider side (docs/protocols/channels.md, "Twilio: sending",
"Twilio: errors").

`POST /2010-04-01/Accounts/{sid}/Messages.json` with HTTP Basic sid:token and form fields answers
201 with the Message resource; refusals are Twilio's JSON `{code, message, more_info, status}`.
MMS media the customer emulator put are served at the Media sub-resource URL, Basic auth required.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime

from flask import Blueprint, Response, jsonify, request

from connector.config.model import Asset
from connector.sandbox.providers import hold
from connector.sandbox.providers.files import file_response
from connector.sandbox.providers.hooks import install_hooks
from connector.sandbox.providers.store import ProviderState, Refusal

CHANNEL = "sms"
API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{4,14}$")
MAX_BODY = 1600  # Twilio: concatenated body up to 1600 characters (error 21617 beyond)
MAX_MEDIA = 10  # Twilio: at most 10 MediaUrl per message (error 21623 beyond)

# Twilio's own wording of the errors the simulator gives (twilio.com/docs/api/errors/<code>).
MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number for this account.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21623: "Number of media files exceeds allowed limit",
    21701: "The Messaging Service does not exist",
}
# Injected failures without an explicit code get Twilio's code for the status.
DEFAULTS: dict[int, tuple[int | str | None, str]] = {
    400: (21211, MESSAGES[21211]),
    401: (20003, MESSAGES[20003]),
    404: (20404, MESSAGES[20404]),
    429: (20429, MESSAGES[20429]),
    500: (20500, MESSAGES[20500]),
    503: (20503, MESSAGES[20503]),
}


def error_body(status: int, code: int | str | None, message: str) -> dict[str, object]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def new_message_sid(media: bool = False) -> str:
    # Message sids are 34 characters: SM (MM for MMS) and 32 hex digits.
    return ("MM" if media else "SM") + secrets.token_hex(16)


def create_blueprint(state: ProviderState) -> Blueprint:
    bp = Blueprint("sandbox_twilio", __name__)

    install_hooks(
        bp,
        state,
        error_body=lambda exc: error_body(exc.status, exc.code, exc.message),
        send_channel=lambda endpoint: CHANNEL if endpoint == f"{bp.name}.send" else None,
    )

    def account(sid: str) -> list[Asset]:
        """The SMS assets of the account the Basic credentials open; 401 code 20003 otherwise."""
        auth = request.authorization
        challenge = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
        if auth is None or auth.type != "basic" or not auth.username:
            raise Refusal(401, MESSAGES[20003], code=20003, headers=challenge)
        assets = [a for a in state.assets_of(CHANNEL) if str(a["account_sid"]) == auth.username]
        if not any(hmac.compare_digest(str(a["auth_token"]).encode(), (auth.password or "").encode()) for a in assets):
            raise Refusal(401, MESSAGES[20003], code=20003, headers=challenge)
        if sid != auth.username:
            raise Refusal(404, f"The requested resource {request.path} was not found", code=20404)
        return assets

    @bp.post(f"/{API_VERSION}/Accounts/<sid>/Messages.json")
    def send(sid: str) -> tuple[Response, int]:
        state.refuse_if_down(CHANNEL, DEFAULTS)
        assets = account(sid)
        state.injected(CHANNEL, DEFAULTS)
        hold.checkpoint(state, CHANNEL)  # test-only: a held send goes on once released
        return _send(state, assets)

    @bp.get(f"/{API_VERSION}/Accounts/<sid>/Messages/<message_sid>/Media/<file_id>")
    def media(sid: str, message_sid: str, file_id: str) -> Response:
        # Twilio enforces HTTP Basic auth on media URLs (docs/protocols/channels.md, "Inbound media").
        account(sid)
        stored = state.files.get(file_id)
        if stored is None:
            raise Refusal(404, f"The requested resource {request.path} was not found", code=20404)
        return file_response(stored)

    @bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
    def unknown(rest: str) -> Response:
        raise Refusal(404, f"The requested resource /{rest} was not found", code=20404)

    return bp


def _send(state: ProviderState, assets: list[Asset]) -> tuple[Response, int]:
    # Twilio reads form fields only: a JSON body leaves To empty (error 21604 names this cause).
    form = request.form
    to = form.get("To", "").strip()
    if not to:
        raise Refusal(400, MESSAGES[21604], code=21604)
    service = form.get("MessagingServiceSid", "").strip()
    sender = form.get("From", "").strip()
    if service:
        asset = next((a for a in assets if a.get("messaging_service_sid") == service), None)
        if asset is None:
            raise Refusal(400, MESSAGES[21701], code=21701)
    elif sender:
        asset = next((a for a in assets if str(a["number"]) == sender), None)
        if asset is None:
            raise Refusal(400, MESSAGES[21606], code=21606)
    else:
        raise Refusal(400, MESSAGES[21603], code=21603)
    if not E164.match(to):
        raise Refusal(400, f"The 'To' number {to} is not a valid phone number.", code=21211)
    body = form.get("Body", "")
    media_urls = form.getlist("MediaUrl")
    if not body and not media_urls:
        raise Refusal(400, MESSAGES[21602], code=21602)
    if len(body) > MAX_BODY:
        raise Refusal(400, MESSAGES[21617], code=21617)
    if len(media_urls) > MAX_MEDIA:
        raise Refusal(400, MESSAGES[21623], code=21623)

    sid = new_message_sid(media=bool(media_urls))
    state.store.record(
        channel=CHANNEL,
        asset=asset.name,
        customer=to,
        kind="file" if media_urls else "text",
        text=body or None,
        files=[{"url": url, "name": None, "mime": None, "size": None, "data": None} for url in media_urls],
        provider_id=sid,
        request=form.to_dict(flat=False),
    )
    now = format_datetime(datetime.now(UTC), usegmt=True)
    account_sid = str(asset["account_sid"])
    resource = {
        "sid": sid,
        "account_sid": account_sid,
        "messaging_service_sid": service or None,
        "to": to,
        "from": None if service else sender,
        "body": body,
        "status": "accepted" if service else "queued",
        "num_segments": "1",
        "num_media": str(len(media_urls)),
        "direction": "outbound-api",
        "api_version": API_VERSION,
        "price": None,
        "price_unit": "USD",
        "error_code": None,
        "error_message": None,
        "date_created": now,
        "date_updated": now,
        "date_sent": None,
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json",
        "subresource_uris": {"media": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}/Media.json"},
    }
    return jsonify(resource), 201
