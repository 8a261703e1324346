"""The agent API of Hybrid Chat (`/agent/...`): the desktop, the Finesse gadget and outside tools.

It is a thin HTTP layer over `desk.py`; see docs/hybrid.md ("The agent API") for its contract.
Sessions and their cookie: `sessions.py`; who a Finesse agent is: `finesse_auth.py`; waiting for
events (long poll, Server-Sent Events): the agent's event stream (`stream.py`), waited for as every live
page of the connector waits (`connector/live.py`).

Every answer is JSON but the files, the stream and the gadget; every refusal is
`{"error": code, "message"}` with its status. An agent sees and acts on their own chats only.
"""

from __future__ import annotations

import hmac
import io
import logging
import mimetypes
import re
import time
import unicodedata
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request, send_file
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.security import check_password_hash, generate_password_hash

from connector import live
from connector.backends.hybrid import desktop, files, sessions, stream, transcript
from connector.backends.hybrid.agents import LOCAL_PREFIX, AgentSettings, local_agent_id, settings_for
from connector.backends.hybrid.desk import Desk, DeskError
from connector.backends.hybrid.finesse_auth import Mismatch, verify_agent_login, verify_authorization
from connector.blending.agents import AgentRegistry
from connector.blending.finesse.client import AuthorizationError, FinesseError, FinesseUnavailable, NotFound
from connector.blending.finesse.credentials import CredentialStore
from connector.config.model import HybridAgent
from connector.runtime import Runtime
from connector.store import keys, replies

log = logging.getLogger(__name__)

blueprint = Blueprint("hybrid_agent", __name__, template_folder="templates")
blueprint.register_blueprint(desktop.blueprint)

MAX_FAILURES = 5
"""Failed logins of one login (or gadget agent id) within LOCKOUT_SECONDS before it is locked out."""
LOCKOUT_SECONDS = 300
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UPLOAD_OVERHEAD = 64 * 1024
"""What a multipart body may hold besides its file (boundaries, headers, small fields)."""
GADGET_HEIGHT = 640
FILE_ID = re.compile(r"^[0-9a-f]{32}$")
MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "audio/mpeg", "audio/ogg", "video/mp4"})
"""Shown in the browser; anything else (HTML, SVG, scripts, documents) is only downloaded."""
FILE_POLICY = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["connector"]
    return runtime


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify(error=code, message=message), status


@blueprint.errorhandler(DeskError)
def _desk_error(exc: DeskError) -> tuple[Response, int]:
    return _error(exc.status, exc.code, exc.message)


# -- who is asking ------------------------------------------------------------------------------------


def _presented() -> tuple[str | None, bool]:
    """The request's token and whether it came in the cookie (a bearer header wins)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip(), False
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    return (cookie, True) if cookie else (None, False)


def _current() -> tuple[sessions.AgentSession | None, bool]:
    """The request's live agent session (once per request) and whether it came in the cookie."""
    if "agent_session" not in g:
        token, in_cookie = _presented()
        found = sessions.resolve(_runtime().redis, token) if token else None
        if found is not None and not _still_an_agent(found):
            found = None
        g.agent_session, g.agent_by_cookie = found, in_cookie
    session: sessions.AgentSession | None = g.agent_session
    by_cookie: bool = g.agent_by_cookie
    return session, by_cookie


def _still_an_agent(session: sessions.AgentSession) -> bool:
    """A local agent removed from `hybrid_agents` (or no longer given a password) is logged out."""
    if not session.agent_id.startswith(LOCAL_PREFIX):
        return True
    configured = _runtime().config.hybrid_agent(session.login)
    return configured is not None and configured.local


def _settings(session: sessions.AgentSession) -> AgentSettings:
    return settings_for(_runtime().config, session.agent_id, session.login, session.name)


def _desk() -> Desk:
    desk: Desk = g.agent_desk
    return desk


@blueprint.before_request
def _authenticate() -> tuple[Response, int] | None:
    """Every `/agent/api/` call: a live session, and a cookie session's writes carry its CSRF token."""
    if not request.path.startswith("/agent/api/"):
        return None
    session, by_cookie = _current()
    if session is None:
        return _error(401, "unauthenticated", "log in first: POST /agent/login, then the cookie or Bearer token")
    writes = request.method not in SAFE_METHODS
    if by_cookie and writes and not sessions.csrf_valid(session, request.headers.get(sessions.CSRF_HEADER)):
        return _error(403, "csrf_failed", f"send the session's CSRF token in {sessions.CSRF_HEADER}")
    g.agent_desk = Desk(_runtime(), _settings(session))
    return None


@blueprint.after_request
def _headers(response: Response) -> Response:
    if request.blueprint == blueprint.name and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    if request.endpoint == "hybrid_agent.gadget_login":
        _cors(response)
    return response


def _page_session() -> desktop.AgentSession | None:
    """What the desktop page needs of the request's session (a page has only the cookie)."""
    session, by_cookie = _current()
    if session is None or not by_cookie:
        return None
    return desktop.AgentSession(agent_id=session.agent_id, csrf_token=session.csrf_token)


desktop.read_sessions_with(_page_session)


# -- login ------------------------------------------------------------------------------------------


def _json_body(*, optional: bool = False) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and optional and not request.get_data(cache=True):
        return {}
    if not isinstance(body, dict):
        raise DeskError(400, "invalid_payload", "send a JSON object (Content-Type: application/json)")
    return body


def _text(body: dict[str, Any], name: str, *, limit: int = 1024, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        raise DeskError(400, "invalid_payload", f'"{name}" must be a text of at most {limit} characters')
    return value


def _locked_out(failures_key: str) -> bool:
    return int(replies.bytes_or_none(_runtime().redis.get(failures_key)) or 0) >= MAX_FAILURES


def _failed(failures_key: str) -> None:
    pipe = _runtime().redis.pipeline()
    pipe.incr(failures_key)
    pipe.expire(failures_key, LOCKOUT_SECONDS)
    replies.execute(pipe)


def _finesse_trouble(exc: FinesseError, what: str, agent_id: str, verifying: str) -> tuple[Response, int]:
    """A login Finesse could not decide (no node in service, or an error answer): 503, try again."""
    if isinstance(exc, FinesseUnavailable):
        return _error(503, "finesse_unavailable", "no Finesse node is in service; try again shortly")
    log.warning(f"{what}: Finesse answered an error", extra={"agent": agent_id, "error": str(exc)})
    return _error(503, "finesse_error", f"Finesse could not verify {verifying} now; try again shortly")


def _lockout_answer() -> tuple[Response, int]:
    return _error(429, "locked_out", f"too many failed logins; try again in {LOCKOUT_SECONDS // 60} minutes")


@cache
def _dummy_hash() -> str:
    """Checked for a login nobody has, so that it costs what a local agent's login costs."""
    return generate_password_hash("not anyone's password")


def _local_password_ok(agent: HybridAgent, password: str) -> bool:
    if agent.password:
        return hmac.compare_digest(agent.password.encode(), password.encode())
    if agent.password_hash:
        try:
            return check_password_hash(agent.password_hash, password)
        except ValueError:  # not a hash werkzeug knows
            return False
    return False


def _secure_cookie() -> bool:
    return urlsplit(_runtime().settings.public_base_url).scheme == "https"


def _logged_in(agent_id: str, login: str, name: str | None, *, via: str) -> Response:
    """A new session: the token in the answer and in the agent's cookie, with its CSRF token."""
    token, session = sessions.issue(_runtime().redis, agent_id, login, name, via=via)
    response = jsonify(
        agent_id=agent_id,
        token=token,
        expires_at=session.expires_at,
        csrf_token=session.csrf_token,
        name=_settings(session).name,
        status="logged_in",
    )
    response.set_cookie(
        sessions.COOKIE_NAME,
        token,
        max_age=sessions.MAX_SECONDS,
        path="/agent/",
        secure=_secure_cookie(),
        httponly=True,
        samesite="Strict",
    )
    log.info("agent logged in to the agent API", extra={"agent": agent_id, "via": via})
    return response


@blueprint.post("/agent/login")
def login() -> Response | tuple[Response, int]:
    """`{"login", "password"}` (or today's `{"username", "password"}`): a local agent of
    `hybrid_agents` against their password or its hash, a Finesse agent against Finesse."""
    body = _json_body()
    given = _text(body, "login" if "login" in body else "username", limit=256)
    password = _text(body, "password", limit=1024)
    assert given is not None and password is not None  # required
    runtime = _runtime()
    given = given.strip()
    failures_key = keys.agent_login_failures(given)
    if _locked_out(failures_key):
        return _lockout_answer()
    configured = runtime.config.hybrid_agent(given)
    finesse = runtime.config.finesse
    if configured is not None and configured.local:
        if not _local_password_ok(configured, password):
            _failed(failures_key)
            log.warning("local agent login refused", extra={"agent": local_agent_id(configured.login)})
            return _error(401, "invalid_credentials", "wrong login or password")
        runtime.redis.delete(failures_key)
        return _logged_in(local_agent_id(configured.login), configured.login, configured.name, via="login")
    if finesse is None:
        check_password_hash(_dummy_hash(), password)
        _failed(failures_key)
        return _error(401, "invalid_credentials", "wrong login or password")
    registry = AgentRegistry(runtime.redis)
    agent_id = registry.agent_id_for_login(given) or given
    try:
        user = verify_agent_login(finesse, agent_id, given, password)
    except (AuthorizationError, NotFound):
        _failed(failures_key)
        log.warning("agent login refused by Finesse", extra={"agent": agent_id})
        return _error(401, "invalid_credentials", "Finesse refused this login and password")
    except FinesseError as exc:
        return _finesse_trouble(exc, "agent login", agent_id, "the login")
    runtime.redis.delete(failures_key)
    CredentialStore(runtime.redis, runtime.settings.secret_key).save(agent_id, given, password)
    profile = registry.profile(agent_id)
    login_name = (profile.login_name if profile else "") or user.login_name or given
    name = (profile.name if profile else "") or " ".join(p for p in (user.first_name, user.last_name) if p) or None
    return _logged_in(agent_id, login_name, name, via="login")


@blueprint.post("/agent/logout")
def logout() -> Response | tuple[Response, int]:
    """End the session and revoke its token; the agent's last session also takes their stored Finesse
    password with it (the listener then stops acting for them, as the old /agent/logout did)."""
    runtime = _runtime()
    session, by_cookie = _current()
    agent_id: str | None = None
    if session is not None:
        if by_cookie and not sessions.csrf_valid(session, request.headers.get(sessions.CSRF_HEADER)):
            return _error(403, "csrf_failed", f"send the session's CSRF token in {sessions.CSRF_HEADER}")
        agent_id = session.agent_id
        if sessions.revoke(runtime.redis, session) and not agent_id.startswith(LOCAL_PREFIX):
            CredentialStore(runtime.redis, runtime.settings.secret_key).remove(agent_id)
    else:
        agent_id = _legacy_logout(runtime)
    response = jsonify(agent_id=agent_id, status="logged_out")
    response.delete_cookie(
        sessions.COOKIE_NAME, path="/agent/", secure=_secure_cookie(), httponly=True, samesite="Strict"
    )
    return response


def _legacy_logout(runtime: Runtime) -> str | None:
    """Today's clients log out with `{"username", "password"}` and no token: the stored Finesse
    password is forgotten when they match it."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return None
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        return None
    agent_id = AgentRegistry(runtime.redis).agent_id_for_login(username) or username
    store = CredentialStore(runtime.redis, runtime.settings.secret_key)
    stored = store.get(agent_id)
    if stored is None or not hmac.compare_digest(stored[1].encode(), password.encode()):
        return None
    store.remove(agent_id)
    return agent_id


# -- the Finesse gadget -------------------------------------------------------------------------------


def _finesse_hosts() -> set[str]:
    finesse = _runtime().config.finesse
    if finesse is None:
        return set()
    return {(urlsplit(n).hostname or "").lower() for n in (finesse.publisher, finesse.subscriber) if n}


def _cors(response: Response) -> None:
    """The gadget runs in Finesse's pages (its container renders it on the Finesse host): its login
    call comes from there, and only from there."""
    origin = request.headers.get("Origin", "")
    parts = urlsplit(origin)
    if parts.scheme in ("http", "https") and (parts.hostname or "").lower() in _finesse_hosts():
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    response.vary.add("Origin")


@blueprint.route("/agent/gadget/login", methods=["POST", "OPTIONS"])
def gadget_login() -> Response | tuple[Response, int]:
    """`{"agent_id", "authorization"}` from Finesse's gadget API, verified by asking Finesse with it."""
    if request.method == "OPTIONS":
        return Response(status=204)
    runtime = _runtime()
    finesse = runtime.config.finesse
    if finesse is None:
        return _error(404, "finesse_not_configured", "the gadget needs media blending (finesse:) configured")
    body = _json_body()
    agent_id = (_text(body, "agent_id", limit=64) or "").strip()
    authorization = _text(body, "authorization", limit=8192) or ""
    failures_key = keys.agent_login_failures(agent_id)
    if _locked_out(failures_key):
        return _lockout_answer()
    try:
        identity = verify_authorization(finesse, agent_id, authorization)
    except ValueError as exc:
        return _error(400, "invalid_authorization", str(exc))
    except (AuthorizationError, NotFound, Mismatch) as exc:
        _failed(failures_key)
        log.warning("gadget login refused", extra={"agent": agent_id, "error": str(exc)})
        return _error(401, "invalid_credentials", "Finesse did not confirm this agent's authorization")
    except FinesseError as exc:
        return _finesse_trouble(exc, "gadget login", agent_id, "the agent")
    runtime.redis.delete(failures_key)
    user = identity.user
    if identity.credentials is not None:
        login_name, password = identity.credentials
        CredentialStore(runtime.redis, runtime.settings.secret_key).save(agent_id, login_name, password)
    profile = AgentRegistry(runtime.redis).profile(agent_id)
    login_name = (profile.login_name if profile else "") or user.login_name or agent_id
    name = (profile.name if profile else "") or " ".join(p for p in (user.first_name, user.last_name) if p) or None
    return _logged_in(agent_id, login_name, name, via="gadget")


@blueprint.get("/agent/gadget.xml")
def gadget() -> Response:
    """The OpenSocial gadget a Finesse administrator adds to the desktop layout by this URL."""
    base = _runtime().settings.public_base_url
    spec = render_template(
        "agent/gadget.xml",
        title="Hybrid Chat",
        height=GADGET_HEIGHT,
        login_url=f"{base}/agent/gadget/login",
        desktop_url=f"{base}/agent/?embedded=1",
    )
    response = Response(spec, mimetype="application/xml")
    response.headers["Cache-Control"] = "no-cache"
    return response


# -- the agent --------------------------------------------------------------------------------------


@blueprint.get("/agent/api/me")
def me() -> Response:
    answer = _desk().me()
    session, by_cookie = _current()
    if session is not None and by_cookie:
        answer["csrf_token"] = session.csrf_token
    return jsonify(answer)


@blueprint.put("/agent/api/me/state")
def set_state() -> Response:
    body = _json_body()
    state = body.get("state")
    if state not in ("READY", "NOT_READY"):
        raise DeskError(400, "invalid_state", '"state" is READY or NOT_READY')
    reason = _text(body, "reason", limit=200, required=False)
    return jsonify(_desk().set_state(state == "READY", reason))


def _cursor(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if not live.valid_cursor(value or ""):
        raise DeskError(400, "invalid_cursor", "a cursor is the id of an event (as given in `cursor` or `id:`)")
    return value


@blueprint.get("/agent/api/events")
def events() -> Response:
    """Long poll: the events after `after` (none: only new ones), waiting up to `wait` seconds (≤ 30)."""
    after = _cursor(request.args.get("after"))
    try:
        wait = float(request.args.get("wait") or 0)
    except ValueError:
        raise DeskError(400, "invalid_wait", '"wait" is a number of seconds, at most 30') from None
    if not 0 <= wait <= 30:
        raise DeskError(400, "invalid_wait", '"wait" is a number of seconds, at most 30')
    read = _agent_events()
    slot = wait > 0 and live.SLOTS.take(live.stream_slots(_runtime().settings.web_threads))
    try:
        found, cursor = live.long_poll(read, after, wait if slot else 0.0)
    finally:
        if slot:
            live.SLOTS.give_back()
    return jsonify(events=[{**event, "id": event_id} for event_id, event in found], cursor=cursor)


@blueprint.get("/agent/api/stream")
def event_stream() -> Response:
    """Server-Sent Events: `id:` is the cursor; `Last-Event-ID` (or `?after=`) resumes."""
    after = _cursor(request.headers.get("Last-Event-ID") or request.args.get("after"))
    return live.event_stream(_agent_events(), after, live.stream_slots(_runtime().settings.web_threads))


def _agent_events() -> live.Reader:
    """The request's agent's event stream, read without the request (an SSE body outlives it)."""
    redis, agent = _runtime().redis, _desk().agent.agent_id

    def read(after: str | None, wait_seconds: float) -> tuple[list[live.Event], str]:
        return stream.read(redis, agent, after, wait_seconds)

    return read


# -- chats ------------------------------------------------------------------------------------------


@blueprint.post("/agent/api/chats/<chat_id>/accept")
def accept(chat_id: str) -> Response:
    return jsonify(_desk().accept(chat_id))


@blueprint.post("/agent/api/chats/<chat_id>/reject")
def reject(chat_id: str) -> Response:
    _desk().reject(chat_id)
    return jsonify(chat_id=chat_id, status="rejected")


@blueprint.post("/agent/api/chats/<chat_id>/messages")
def send_message(chat_id: str) -> Response:
    """`{"text"}`, or a multipart `file` (up to files.MAX_FILE_BYTES here; the channel's own limit
    applies when the relay sends it)."""
    if request.mimetype == "multipart/form-data":
        request.max_content_length = files.MAX_FILE_BYTES + UPLOAD_OVERHEAD
        try:
            upload = request.files.get("file")
        except RequestEntityTooLarge:
            limit = files.MAX_FILE_BYTES
            raise DeskError(413, "file_too_large", f"files of up to {limit} bytes are passed on") from None
        if upload is None:
            raise DeskError(400, "invalid_payload", 'send the file as the multipart field "file"')
        name = _file_name(upload.filename)
        mime_type = upload.mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        message_id = _desk().send_file(chat_id, name, mime_type, upload.read())
    else:
        text = _text(_json_body(), "text", limit=100_000, required=False)
        if text is None:
            raise DeskError(400, "invalid_payload", 'send {"text": ...} or a multipart "file"')
        message_id = _desk().send_text(chat_id, text)
    _runtime().durability.confirm(_runtime().redis)  # CONNECTOR_DURABILITY: what the answer waits for
    return jsonify(message_id=message_id)


@blueprint.post("/agent/api/chats/<chat_id>/typing")
def typing(chat_id: str) -> Response:
    on = _json_body().get("typing")
    if not isinstance(on, bool):
        raise DeskError(400, "invalid_payload", '"typing" is true or false')
    _desk().typing(chat_id, on)
    return jsonify(chat_id=chat_id, typing=on)


@blueprint.post("/agent/api/chats/<chat_id>/transfer")
def transfer(chat_id: str) -> Response:
    body = _json_body()
    queue = _text(body, "queue", limit=200, required=False)
    agent_id = _text(body, "agent_id", limit=200, required=False)
    return jsonify(_desk().transfer(chat_id, queue=queue, agent_id=agent_id))


@blueprint.post("/agent/api/chats/<chat_id>/close")
def close(chat_id: str) -> Response:
    wrap_up = _text(_json_body(optional=True), "wrap_up", limit=500, required=False)
    _desk().close(chat_id, wrap_up)
    return jsonify(chat_id=chat_id, status="closed")


@blueprint.get("/agent/api/chats/<chat_id>")
def chat(chat_id: str) -> Response:
    return jsonify(_desk().chat(chat_id))


# -- files ------------------------------------------------------------------------------------------


@blueprint.get("/agent/api/files/<file_id>")
def agent_file(file_id: str) -> Response:
    """A file of one of the agent's chats: one they hold now, or the one named by `?chat=` (a chat of
    theirs, closed ones too) whose transcript carries it."""
    desk = _desk()
    if not FILE_ID.match(file_id) or not _file_is_theirs(desk, file_id, request.args.get("chat")):
        raise DeskError(404, "not_found", "no such file in your chats")
    return _send(desk.file(file_id), cache="private, no-store")


def _file_is_theirs(desk: Desk, file_id: str, chat_id: str | None) -> bool:
    chat_ids = desk.state.agent_chats(desk.agent.agent_id)
    if chat_id:
        desk.chat(chat_id)  # 404 unless it is the agent's
        chat_ids = [chat_id]
    wanted = f"/files/{file_id}"
    for one in chat_ids:
        for entry in transcript.read(desk.redis, one):
            for attachment in entry.get("attachments") or []:
                if isinstance(attachment, dict) and str(attachment.get("url", "")).endswith(wanted):
                    return True
    return False


@blueprint.get("/agent/files/<file_id>")
def signed_file(file_id: str) -> Response | tuple[Response, int]:
    """An agent's file for the customer's provider: a signed link, valid until it expires."""
    runtime = _runtime()
    expires = request.args.get("expires", "")
    signature = request.args.get("signature", "")
    if not FILE_ID.match(file_id) or not files.link_valid(runtime.settings.secret_key, file_id, expires, signature):
        return _error(403, "invalid_link", "the link is not valid (changed or expired)")
    stored = files.load(runtime.redis, file_id)
    if stored is None:
        return _error(404, "not_found", "no such file (files are kept a week)")
    return _send(stored, cache=f"private, max-age={max(0, min(3600, int(expires) - int(time.time())))}")


def _file_name(raw: str | None) -> str:
    """The name as the agent's browser gave it, without folders or control characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    return name[:200] or "file"


def _send(stored: files.StoredFile, *, cache: str) -> Response:
    mime_type = stored.mime_type.lower().split(";", 1)[0].strip()
    if not MIME_TYPE.match(mime_type):
        mime_type = "application/octet-stream"
    response = send_file(
        io.BytesIO(stored.data),
        mimetype=mime_type,
        as_attachment=mime_type not in INLINE_TYPES,
        download_name=_file_name(stored.name),
        etag=False,
        conditional=False,
        max_age=None,
    )
    response.headers["Cache-Control"] = cache
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_POLICY
    return response
