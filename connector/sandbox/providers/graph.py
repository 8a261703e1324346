"""Meta's Graph API, the provider side of Messenger and WhatsApp Cloud (docs/protocols/channels.md,
"Messenger: sending and typing", "WhatsApp: sending", "Meta: Graph API errors").

`POST /{v}/{page_id | phone_number_id}/messages` with `Authorization: Bearer <token>` (or
`?access_token=`); the id in the path picks the asset and its token must match. Refusals are Graph's
`{"error": {message, type, code, error_subcode?, error_data?, fbtrace_id}}`. The messaging windows
are enforced from the customer's last inbound time in the store (unknown customer: open, so a
connector fed without the emulator still works): WhatsApp 131047 after 24 h for anything but a
template; Messenger code 10 / subcode 2018278 after 24 h unless MESSAGE_TAG HUMAN_AGENT (7 days).
Media: Messenger CDN URLs (no auth), WhatsApp media id → URL → bytes (Bearer both times).
WhatsApp interactive sends (reply buttons, list messages) are checked against WhatsApp's limits and
refused with code 100 as Graph does; an accepted one is recorded with its `interactive` type and its
`choices` ({id, title} of each button or row).

Messenger's User Profile API: `GET /{v}/{PSID}?fields=…` with a Page token (a WhatsApp token on the
same path is the media lookup). The Page's customers are those the store knows: a profile set with
`store.set_profile`, the demo customers of DEMO_PROFILES, and anyone who wrote to the Page (named
"Customer <last 4 digits>"); another PSID is 100 / subcode 33. `first_name`, `last_name`,
`profile_pic`, `name` and `id` are every Page's; `locale`, `timezone` and `gender` need Meta's
approval, which the simulated app has where the asset says so (`profile_locale: true`); asked without
it, the whole call is refused with 100 / subcode 2018247, as Graph does. An unknown field is code 100.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.config.model import Asset
from connector.sandbox.providers.files import file_response, whatsapp_download_url
from connector.sandbox.providers.hooks import install_hooks
from connector.sandbox.providers.store import ProviderState, Refusal

INVALID_TOKEN = "Invalid OAuth access token - Cannot parse access token"  # noqa: S105 (an error text)
VERSION = re.compile(r"^v\d+\.\d+$")
DAY = 24 * 3600
MESSENGER_WINDOW = DAY
HUMAN_AGENT_WINDOW = 7 * DAY  # MESSAGE_TAG HUMAN_AGENT: up to 7 days after the customer's message
WHATSAPP_WINDOW = DAY
MESSENGER_MAX_TEXT = 2000
WHATSAPP_MAX_TEXT = 4096
# Interactive messages (docs/protocols/channels.md, "WhatsApp: sending"): the simulator's own copy of
# WhatsApp's limits, so a connector that reads them wrong is refused here.
INTERACTIVE_TYPES = ("button", "list")
INTERACTIVE_MAX_BODY = 1024
MAX_REPLY_BUTTONS = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
MAX_LIST_SECTIONS = 10
MAX_LIST_ROWS = 10
LIST_ROW_TITLE_MAX = 24
LIST_ROW_ID_MAX = 200
LIST_ROW_DESCRIPTION_MAX = 72
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
TAGS = ("CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "HUMAN_AGENT")
SENDER_ACTIONS = {"typing_on": "typing_on", "typing_off": "typing_off", "mark_seen": "read"}
MESSENGER_ATTACHMENTS = ("image", "audio", "video", "file", "template")
WHATSAPP_MEDIA = ("image", "audio", "video", "document", "sticker")
WINDOW_CLOSED_SUBCODE = 2018278
PROFILE_FIELDS = ("id", "name", "first_name", "last_name", "profile_pic")
"""User Profile API fields every Page may read once the person has messaged it."""
APPROVED_PROFILE_FIELDS = ("locale", "timezone", "gender")
"""Fields that need Meta's approval ("Business Asset User Profile Access")."""
DEFAULT_PROFILE_FIELDS = ("name", "id")
"""What Graph answers for a node read without `fields`."""
DEMO_PROFILES: dict[str, dict[str, Any]] = {
    "7000000000000001": {"first_name": "Maria", "last_name": "Garcia", "locale": "es_ES", "timezone": 1},
    "7000000000000002": {"first_name": "Sam", "last_name": "Taylor", "locale": "en_US", "timezone": -5},
}
"""The sandbox's demo Messenger customers (the customer page suggests the first) and their profiles."""
# A 1x1 PNG: what a profile picture URL serves.
PROFILE_PIC = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

# Injected failures without an explicit code: Graph's usual code for the status.
MESSENGER_DEFAULTS: dict[int, tuple[int | str | None, str]] = {
    400: (100, "(#100) Invalid parameter"),
    401: (190, INVALID_TOKEN),
    403: (200, "(#200) Permissions error"),
    429: (613, "(#613) Calls to this api have exceeded the rate limit."),
    500: (2, "An unexpected error has occurred. Please retry your request later."),
}
WHATSAPP_DEFAULTS: dict[int, tuple[int | str | None, str]] = {
    400: (100, "(#100) Invalid parameter"),
    401: (190, INVALID_TOKEN),
    403: (200, "(#200) Permissions error"),
    429: (130429, "(#130429) Rate limit hit"),
    500: (131000, "(#131000) Something went wrong"),
}


def error_body(exc: Refusal, *, whatsapp: bool) -> dict[str, Any]:
    error: dict[str, Any] = {"message": exc.message, "type": "OAuthException", "code": exc.code}
    if exc.subcode is not None:
        error["error_subcode"] = exc.subcode
    if whatsapp:
        error["error_data"] = {"messaging_product": "whatsapp", "details": exc.details or exc.message}
    error["fbtrace_id"] = base64.urlsafe_b64encode(secrets.token_bytes(9)).decode()
    return {"error": error}


def _invalid(message: str, *, details: str | None = None) -> Refusal:
    return Refusal(400, f"(#100) {message}", code=100, details=details)


def create_blueprint(state: ProviderState) -> Blueprint:
    bp = Blueprint("sandbox_graph", __name__)
    messenger = {str(a["page_id"]): a for a in state.assets_of("messenger")}
    whatsapp = {str(a["phone_number_id"]): a for a in state.assets_of("whatsapp")}

    def page_of_token() -> Asset | None:
        """The Messenger asset whose Page token the request carries (a Page token names its Page)."""
        token = _token()
        if not token:
            return None
        return next(
            (
                a
                for a in messenger.values()
                if hmac.compare_digest(token.encode(), str(a["page_access_token"]).encode())
            ),
            None,
        )

    def is_whatsapp() -> bool:
        """WhatsApp's error shape adds `error_data`: its sends and its media endpoints."""
        if request.endpoint == f"{bp.name}.graph_object":
            return page_of_token() is None  # a Page token reads a profile; any other, WhatsApp media
        if request.endpoint == f"{bp.name}.media_download":
            return True
        return bool(request.view_args) and request.view_args.get("object_id") in whatsapp

    install_hooks(
        bp,
        state,
        error_body=lambda exc: error_body(exc, whatsapp=is_whatsapp()),
        send_channel=lambda endpoint: (
            ("whatsapp" if is_whatsapp() else "messenger") if endpoint == f"{bp.name}.send" else None
        ),
    )

    def authorize(asset: Asset, token_field: str) -> None:
        """The token must be this asset's: none → 401 (104), unknown → 401 (190), another's → 403 (200)."""
        token = _token()
        if not token:
            raise Refusal(401, "An access token is required to request this resource.", code=104)
        if hmac.compare_digest(token.encode(), str(asset[token_field]).encode()):
            return
        known = [str(a["page_access_token"]) for a in messenger.values()]
        known += [str(a["access_token"]) for a in whatsapp.values()]
        if any(hmac.compare_digest(token.encode(), k.encode()) for k in known):
            raise Refusal(403, "(#200) Permissions error", code=200)
        raise Refusal(401, INVALID_TOKEN, code=190)

    def whatsapp_token() -> None:
        """Media of WhatsApp: any WhatsApp asset's token (the media store does not know the asset)."""
        token = _token()
        if not token or not any(
            hmac.compare_digest(token.encode(), str(a["access_token"]).encode()) for a in whatsapp.values()
        ):
            raise Refusal(401, INVALID_TOKEN, code=190)

    @bp.post("/<version>/<object_id>/messages")
    def send(version: str, object_id: str) -> Response:
        if not VERSION.match(version):
            raise Refusal(404, f"Unknown path components: /{version}/{object_id}/messages", code=2500)
        if object_id in messenger:
            asset = messenger[object_id]
            state.refuse_if_down("messenger", MESSENGER_DEFAULTS)
            authorize(asset, "page_access_token")
            state.injected("messenger", MESSENGER_DEFAULTS)
            return _messenger_send(state, asset, _json_body())
        if object_id in whatsapp:
            asset = whatsapp[object_id]
            state.refuse_if_down("whatsapp", WHATSAPP_DEFAULTS)
            authorize(asset, "access_token")
            state.injected("whatsapp", WHATSAPP_DEFAULTS)
            return _whatsapp_send(state, asset, _json_body())
        raise _unknown_object(object_id)

    @bp.get("/<version>/<object_id>")
    def graph_object(version: str, object_id: str) -> Response:
        """A Page token: Messenger's User Profile API for a PSID; any other token: WhatsApp media."""
        if not VERSION.match(version):
            raise _unknown_object(f"{version}/{object_id}")
        if not _token():
            raise Refusal(401, "An access token is required to request this resource.", code=104)
        page = page_of_token()
        if page is None:
            return media_info(object_id)
        state.refuse_if_down("messenger", MESSENGER_DEFAULTS)
        return _messenger_profile(state, page, object_id, request.args.get("fields"))

    @bp.get("/profile-pic/<psid>")
    def profile_pic(psid: str) -> Response:
        # Profile pictures are public CDN URLs, like attachments: no auth.
        return Response(PROFILE_PIC, status=200, mimetype="image/png")

    def media_info(media_id: str) -> Response:
        """WhatsApp: a media id → its download URL, for a token of a WhatsApp asset."""
        whatsapp_token()
        stored = state.files.get(media_id)
        if stored is None:
            raise _unknown_object(media_id)
        return jsonify(
            messaging_product="whatsapp",
            url=whatsapp_download_url(state.base_url, stored.id),
            mime_type=stored.mime_type,
            sha256=stored.sha256_hex,
            file_size=len(stored.data),
            id=stored.id,
        )

    @bp.get("/media-download/<file_id>")
    def media_download(file_id: str) -> Response:
        # The download URL needs the same Bearer token as the media id lookup
        # (docs/protocols/channels.md, "Inbound media").
        whatsapp_token()
        stored = state.files.get(file_id)
        if stored is None:
            raise _unknown_object(file_id)
        return file_response(stored)

    @bp.get("/cdn/<file_id>")
    def cdn(file_id: str) -> Response:
        # Messenger attachment URLs are public CDN URLs: no auth.
        stored = state.files.get(file_id)
        if stored is None:
            return Response(b"Not Found", status=404, mimetype="text/plain")
        return file_response(stored)

    @bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
    def unknown(rest: str) -> Response:
        raise Refusal(404, f"Unknown path components: /{rest}", code=2500)

    return bp


def _token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return request.args.get("access_token") or None


def _unknown_object(object_id: str) -> Refusal:
    # Graph answers an id it does not know with code 100 subcode 33; 404 here, as the sandbox's
    # contract for an unknown asset or path.
    return Refusal(
        404,
        f"Unsupported post request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation.",
        code=100,
        subcode=33,
    )


def _json_body() -> dict[str, Any]:
    try:
        body = json.loads(request.get_data() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise _invalid("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object")
    return body


# -- Messenger ---------------------------------------------------------------------------------------


def _messenger_send(state: ProviderState, asset: Asset, body: dict[str, Any]) -> Response:
    recipient = body.get("recipient")
    psid = recipient.get("id") if isinstance(recipient, dict) else None
    if not isinstance(psid, str | int) or isinstance(psid, bool) or psid == "":
        raise _invalid("The parameter recipient is required")
    psid = str(psid)
    action, message = body.get("sender_action"), body.get("message")
    if action is not None and message is not None:
        raise _invalid("Cannot send a message and a sender_action in one request")
    if action is None and message is None:
        raise _invalid("Must send either message or sender_action")

    if action is not None:
        if action not in SENDER_ACTIONS:
            raise _invalid(f"Param sender_action must be one of {{{', '.join(SENDER_ACTIONS)}}}")
        state.store.record(
            channel="messenger", asset=asset.name, customer=psid, kind=SENDER_ACTIONS[action], request=body
        )
        return jsonify(recipient_id=psid)

    messaging_type = body.get("messaging_type")
    if messaging_type not in MESSAGING_TYPES:
        raise _invalid(f"Param messaging_type must be one of {{{', '.join(MESSAGING_TYPES)}}}")
    tag = body.get("tag")
    if messaging_type == "MESSAGE_TAG" and tag not in TAGS:
        raise _invalid(f"Param tag must be one of {{{', '.join(TAGS)}}}")
    kind, text, files = _messenger_message(message)
    _messenger_window(state, asset, psid, messaging_type, tag)

    mid = "m_" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("=")
    state.store.record(
        channel="messenger",
        asset=asset.name,
        customer=psid,
        kind=kind,
        text=text,
        files=files,
        provider_id=mid,
        request=body,
        messaging_type=messaging_type,
        tag=tag,
    )
    return jsonify(recipient_id=psid, message_id=mid)


def _messenger_message(message: Any) -> tuple[str, str | None, list[dict[str, Any]]]:
    if not isinstance(message, dict):
        raise _invalid("Param message must be a JSON object")
    text, attachment = message.get("text"), message.get("attachment")
    if text is not None and attachment is not None:
        raise _invalid("Param message must contain text or attachment, not both")
    if text is not None:
        if not isinstance(text, str) or not text:
            raise _invalid("Param message[text] must be a non-empty UTF-8 encoded string")
        if len(text) > MESSENGER_MAX_TEXT:
            raise _invalid(f"Length of param message[text] must be less than or equal to {MESSENGER_MAX_TEXT}")
        return "text", text, []
    if not isinstance(attachment, dict):
        raise _invalid("Param message must contain text or attachment")
    kind = attachment.get("type")
    if kind not in MESSENGER_ATTACHMENTS:
        raise _invalid(f"Param message[attachment][type] must be one of {{{', '.join(MESSENGER_ATTACHMENTS)}}}")
    payload = attachment.get("payload")
    if not isinstance(payload, dict):
        raise _invalid("Param message[attachment][payload] must be a JSON object")
    if kind == "template":
        return "text", json.dumps(payload), []
    url = payload.get("url")
    if not payload.get("attachment_id") and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise _invalid("Param message[attachment][payload][url] must be a valid URL")
    return "file", None, [{"url": url, "name": None, "mime": None, "type": kind, "size": None, "data": None}]


def _messenger_window(state: ProviderState, asset: Asset, psid: str, messaging_type: str, tag: Any) -> None:
    last = state.store.last_inbound("messenger", asset.name, psid)
    if last is None:
        return
    age = time.time() - last.at
    if age <= MESSENGER_WINDOW:
        return
    if messaging_type == "MESSAGE_TAG":
        if tag != "HUMAN_AGENT":
            return  # the other tags are for their own use cases, not time-limited
        if age <= HUMAN_AGENT_WINDOW:
            return
    raise Refusal(
        400,
        "(#10) This message is sent outside of allowed window. Learn more about the new policy here: "
        "https://developers.facebook.com/docs/messenger-platform/policy-overview",
        code=10,
        subcode=WINDOW_CLOSED_SUBCODE,
    )


def _messenger_profile(state: ProviderState, page: Asset, psid: str, fields_param: str | None) -> Response:
    """The User Profile API: the fields asked (Graph's default without `fields`) and `id`."""
    asked = [f.strip() for f in fields_param.split(",")] if fields_param is not None else list(DEFAULT_PROFILE_FIELDS)
    asked = [f for f in asked if f]
    for name in asked:
        if name not in PROFILE_FIELDS and name not in APPROVED_PROFILE_FIELDS:
            raise _invalid(f"Tried accessing nonexisting field ({name}) on node type (User)")
    profile = _known_profile(state, page, psid)
    if profile is None:
        raise Refusal(
            400,
            f"Unsupported get request. Object with ID '{psid}' does not exist, cannot be loaded due to missing "
            "permissions, or does not support this operation. Please read the Graph API documentation at "
            "https://developers.facebook.com/docs/graph-api",
            code=100,
            subcode=33,
        )
    if not page.get("profile_locale") and any(name in APPROVED_PROFILE_FIELDS for name in asked):
        raise Refusal(400, "(#100) Insufficient permission to access user profile.", code=100, subcode=2018247)
    values = {
        **profile,
        "name": " ".join(str(profile[n]) for n in ("first_name", "last_name") if profile.get(n)),
        "profile_pic": f"{state.base_url}/graph/profile-pic/{psid}",
    }
    answer = {name: values[name] for name in asked if values.get(name) not in (None, "")}
    answer["id"] = psid
    return jsonify(answer)


def _known_profile(state: ProviderState, page: Asset, psid: str) -> dict[str, Any] | None:
    """The profile of a customer of this Page: set in the store, a demo customer, or one who wrote."""
    found = state.store.profile("messenger", page.name, psid)
    if found is not None:
        return found
    if psid in DEMO_PROFILES:
        return dict(DEMO_PROFILES[psid])
    if state.store.last_inbound("messenger", page.name, psid) is not None:
        return {"first_name": "Customer", "last_name": psid[-4:], "locale": "en_US", "timezone": 0}
    return None


# -- WhatsApp ----------------------------------------------------------------------------------------


def _whatsapp_send(state: ProviderState, asset: Asset, body: dict[str, Any]) -> Response:
    if body.get("messaging_product") != "whatsapp":
        raise _invalid("The parameter messaging_product is required.")
    if "status" in body:
        return _whatsapp_read(state, asset, body)
    to = body.get("to")
    if not isinstance(to, str) or not to:
        raise _invalid("The parameter to is required.")
    wa_id = to.lstrip("+")
    if not wa_id.isdigit():
        raise _invalid("Invalid parameter", details="to must be a phone number (digits)")
    if body.get("recipient_type", "individual") != "individual":
        raise _invalid("Param recipient_type must be individual")
    kind_name = body.get("type", "text")
    kind, text, files = _whatsapp_message(kind_name, body)
    if kind != "template":
        last = state.store.last_inbound("whatsapp", asset.name, wa_id)
        if last is not None and time.time() - last.at > WHATSAPP_WINDOW:
            # Outside the 24 h customer-service window only an approved template may be sent.
            raise Refusal(
                400,
                "(#131047) Re-engagement message",
                code=131047,
                details="Message failed to send because more than 24 hours have passed since the customer "
                "last replied to this number.",
            )
    wamid = "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18" + secrets.token_bytes(24)).decode()
    extra: dict[str, Any] = {}
    if kind == "interactive":  # what the customer may tap: the buttons or the list's rows
        extra = {"interactive": body["interactive"]["type"], "choices": interactive_choices(body)}
    state.store.record(
        channel="whatsapp",
        asset=asset.name,
        customer=wa_id,
        kind=kind,
        text=text,
        files=files,
        provider_id=wamid,
        request=body,
        **extra,
    )
    return jsonify(messaging_product="whatsapp", contacts=[{"input": to, "wa_id": wa_id}], messages=[{"id": wamid}])


def _whatsapp_read(state: ProviderState, asset: Asset, body: dict[str, Any]) -> Response:
    """Mark read, optionally with the typing indicator (shown until the reply, at most 25 s)."""
    if body.get("status") != "read":
        raise _invalid("Param status must be read")
    message_id = body.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise _invalid("The parameter message_id is required.")
    typing = body.get("typing_indicator")
    if typing is not None and typing != {"type": "text"}:
        raise _invalid('Param typing_indicator must be {"type": "text"}')
    customer = state.store.customer_of_message("whatsapp", asset.name, message_id)
    state.store.record(
        channel="whatsapp",
        asset=asset.name,
        customer=customer,
        kind="typing_on" if typing else "read",
        request=body,
        message_id=message_id,
    )
    return jsonify(success=True)


def _whatsapp_message(kind_name: Any, body: dict[str, Any]) -> tuple[str, str | None, list[dict[str, Any]]]:
    if kind_name == "text":
        text = body.get("text")
        content = text.get("body") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content:
            raise _invalid("The parameter text['body'] is required.")
        if len(content) > WHATSAPP_MAX_TEXT:
            raise _invalid(f"Param text['body'] must be at most {WHATSAPP_MAX_TEXT} characters long.")
        return "text", content, []
    if kind_name in WHATSAPP_MEDIA:
        media = body.get(kind_name)
        if not isinstance(media, dict):
            raise _invalid(f"The parameter {kind_name} is required.")
        link = media.get("link")
        if not media.get("id") and not (isinstance(link, str) and link.startswith(("http://", "https://"))):
            raise _invalid(f"Param {kind_name}['link'] must be a valid URL")
        caption = media.get("caption")
        file = {"url": link, "name": media.get("filename"), "mime": None, "type": kind_name, "size": None}
        return "file", caption if isinstance(caption, str) else None, [{**file, "data": None}]
    if kind_name == "template":
        template = body.get("template")
        if not isinstance(template, dict) or not template.get("name"):
            raise _invalid("The parameter template['name'] is required.")
        return "template", str(template["name"]), []
    if kind_name == "interactive":
        return "interactive", _interactive_body(body.get("interactive")), []
    raise _invalid("Param type is not a supported message type", details=f"type {kind_name!r}")


def _interactive_body(interactive: Any) -> str:
    """Check a reply-buttons or list message against WhatsApp's limits; its body text."""
    if not isinstance(interactive, dict):
        raise _invalid("The parameter interactive is required.")
    kind = interactive.get("type")
    if kind not in INTERACTIVE_TYPES:
        raise _invalid(f"Param interactive['type'] must be one of {{{', '.join(INTERACTIVE_TYPES)}}}")
    body = interactive.get("body")
    text = body.get("text") if isinstance(body, dict) else None
    _text_param(text, "interactive['body']['text']", INTERACTIVE_MAX_BODY)
    action = interactive.get("action")
    if not isinstance(action, dict):
        raise _invalid("The parameter interactive['action'] is required.")
    if kind == "button":
        _reply_buttons(action.get("buttons"))
    else:
        _list_sections(action)
    return str(text)


def interactive_choices(request_body: Any) -> list[dict[str, Any]]:
    """The buttons or rows of a recorded interactive send, as {id, title} (what a test or page reads)."""
    interactive = (request_body or {}).get("interactive") or {}
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        return [dict(b["reply"]) for b in action.get("buttons") or []]
    return [{"id": r["id"], "title": r["title"]} for s in action.get("sections") or [] for r in s.get("rows") or []]


def _text_param(value: Any, name: str, most: int) -> None:
    if not isinstance(value, str) or not value:
        raise _invalid(f"The parameter {name} is required.")
    if len(value) > most:
        raise _invalid(f"Param {name} must be at most {most} characters long.")


def _unique(values: list[str], name: str) -> None:
    if len(set(values)) < len(values):
        raise _invalid(f"Param {name} must be unique within the message.")


def _reply_buttons(buttons: Any) -> None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_REPLY_BUTTONS:
        raise _invalid(f"Param interactive['action']['buttons'] must have 1 to {MAX_REPLY_BUTTONS} buttons.")
    ids, titles = [], []
    for index, button in enumerate(buttons):
        where = f"interactive['action']['buttons'][{index}]"
        reply = button.get("reply") if isinstance(button, dict) else None
        if not isinstance(button, dict) or button.get("type") != "reply" or not isinstance(reply, dict):
            raise _invalid(f"Param {where} must be {{type: reply, reply: {{id, title}}}}.")
        _text_param(reply.get("id"), f"{where}['reply']['id']", BUTTON_ID_MAX)
        _text_param(reply.get("title"), f"{where}['reply']['title']", BUTTON_TITLE_MAX)
        ids.append(reply["id"])
        titles.append(reply["title"])
    _unique(ids, "interactive['action']['buttons'] id")
    _unique(titles, "interactive['action']['buttons'] title")


def _list_sections(action: dict[str, Any]) -> None:
    _text_param(action.get("button"), "interactive['action']['button']", LIST_BUTTON_MAX)
    sections = action.get("sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= MAX_LIST_SECTIONS:
        raise _invalid(f"Param interactive['action']['sections'] must have 1 to {MAX_LIST_SECTIONS} sections.")
    ids: list[str] = []
    for s, section in enumerate(sections):
        where = f"interactive['action']['sections'][{s}]"
        rows = section.get("rows") if isinstance(section, dict) else None
        if not isinstance(rows, list) or not rows:
            raise _invalid(f"Param {where}['rows'] must have at least one row.")
        if len(sections) > 1 or section.get("title") is not None:
            _text_param(section.get("title"), f"{where}['title']", LIST_ROW_TITLE_MAX)
        for r, row in enumerate(rows):
            at = f"{where}['rows'][{r}]"
            if not isinstance(row, dict):
                raise _invalid(f"Param {at} must be {{id, title, description?}}.")
            _text_param(row.get("id"), f"{at}['id']", LIST_ROW_ID_MAX)
            _text_param(row.get("title"), f"{at}['title']", LIST_ROW_TITLE_MAX)
            if row.get("description") is not None:
                _text_param(row["description"], f"{at}['description']", LIST_ROW_DESCRIPTION_MAX)
            ids.append(row["id"])
    if len(ids) > MAX_LIST_ROWS:
        raise _invalid(f"Param interactive['action']['sections'] must have at most {MAX_LIST_ROWS} rows in all.")
    _unique(ids, "interactive['action']['sections'] row id")
