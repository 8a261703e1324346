"""Apple Messages for Business, the MSP gateway side (docs/protocols/channels.md,
"Apple Messages for Business").

Every call carries `Authorization: Bearer <JWT>` (HS256, key = the base64-decoded API secret,
`iss` = the MSP id) and `source-id` = the business id, which picks the asset. Status codes follow
Apple's preUpload list (400 malformed, 401 no auth, 403 auth invalid, 404 unknown); Apple documents
no error body, so the simulator's is a small JSON `{"code", "message"}` for the reader of a log [I].

Attachments: `GET /v1/preUpload` reserves an MMCS slot; the connector POSTs the AES-256-CTR
encrypted bytes to `upload-url` and references `mmcs-url` in the message with the key, so the
store can hold the decrypted bytes. Customer files (put encrypted by the emulator) are fetched
with `GET /v1/preDownload` → `download-url`. The MMCS checksum (`fileChecksum`, an attachment's
`signature-base64`) is base64 of 0x01 + SHA-1 of the encrypted bytes, the 21-byte form Apple's
signatures have.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import json
import secrets
import threading
from typing import Any

import jwt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import Blueprint, Response, jsonify, request

from connector.config.model import Asset
from connector.sandbox.providers.files import apple_file_id, apple_mmcs_url, file_response
from connector.sandbox.providers.hooks import install_hooks
from connector.sandbox.providers.store import ProviderState, Refusal

CHANNEL = "apple"
MMCS_OWNER = "com.apple.message.attachments.sandbox"
ZERO_IV = bytes(16)  # Apple attachments: AES-256-CTR with a zero IV and a fresh key per file
JWT_LEEWAY_SECONDS = 60
OBJECT_REPLACEMENT = "\ufffc"  # `body` holds U+FFFC where an attachment bubble goes
TYPES = {"text": "text", "typing_start": "typing_on", "typing_end": "typing_off", "interactive": "interactive"}
DEFAULTS: dict[int, tuple[int | str | None, str]] = {
    400: (400, "bad request"),
    401: (401, "unauthorized"),
    403: (403, "forbidden"),
    404: (404, "not found"),
    429: (429, "too many requests"),
    500: (500, "internal server error"),
    503: (503, "service unavailable"),
}


# -- Apple's attachment crypto (the other side of the connector's, written independently) ----------


def encrypt(data: bytes, key: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CTR(ZERO_IV)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def decrypt(data: bytes, key: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CTR(ZERO_IV)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def mmcs_checksum(encrypted: bytes) -> str:
    return base64.b64encode(b"\x01" + hashlib.sha1(encrypted).digest()).decode()  # noqa: S324 (MMCS's hash)


def attachment_key(key: bytes) -> str:
    """How a message carries the key: hex with a leading "00"."""
    return "00" + key.hex()


def parse_attachment_key(text: str) -> bytes | None:
    if not text.startswith("00") or len(text) != 66:
        return None
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        return None


class _Slots:
    """Upload slots issued by preUpload and download tickets issued by preDownload."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.uploads: dict[str, tuple[str, int, str]] = {}  # token → (asset, encrypted size, file id)
        self.downloads: dict[str, str] = {}  # ticket → file id


def create_blueprint(state: ProviderState) -> Blueprint:
    bp = Blueprint("sandbox_apple", __name__)
    businesses = {str(a["business_id"]): a for a in state.assets_of(CHANNEL)}
    slots = _Slots()

    install_hooks(
        bp,
        state,
        error_body=lambda exc: {"code": exc.code if exc.code is not None else exc.status, "message": exc.message},
        send_channel=lambda endpoint: CHANNEL if endpoint == f"{bp.name}.message" else None,
    )

    def authenticate() -> Asset:
        """The asset of `source-id`, once the bearer JWT verifies with its secret and MSP id."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(401, "Authorization: Bearer <JWT> is required")
        source = request.headers.get("source-id", "")
        if not source:
            raise Refusal(400, "the source-id header (the business id) is required")
        asset = businesses.get(source)
        if asset is None:
            raise Refusal(403, f"source-id {source} is not a business this MSP may send for")
        try:
            jwt.decode(
                token.strip(),
                key=base64.b64decode(str(asset["secret"])),
                algorithms=["HS256"],
                issuer=str(asset["msp_id"]),
                leeway=JWT_LEEWAY_SECONDS,
                options={"require": ["iss", "iat"], "verify_aud": False},
            )
        except jwt.InvalidIssuerError:
            raise Refusal(403, "the JWT iss is not the MSP id of this business") from None
        except jwt.InvalidTokenError as exc:
            raise Refusal(403, f"the JWT does not verify with the business's API secret: {exc}") from None
        return asset

    @bp.post("/v1/message")
    def message() -> Response:
        state.refuse_if_down(CHANNEL, DEFAULTS)
        asset = authenticate()
        state.injected(CHANNEL, DEFAULTS)
        return _message(state, asset)

    @bp.get("/v1/preUpload")
    def pre_upload() -> Response:
        asset = authenticate()
        size = request.headers.get("size", "")
        if not size.isdigit() or int(size) <= 0:
            raise Refusal(400, "the size header (bytes of the encrypted file) is required")
        token = secrets.token_urlsafe(24)
        file_id = state.files.new_id()
        with slots.lock:
            slots.uploads[token] = (asset.name, int(size), file_id)
        return jsonify(
            {
                "upload-url": f"{state.base_url}/apple/upload/{token}",
                "mmcs-url": apple_mmcs_url(state.base_url, file_id),
                "mmcs-owner": MMCS_OWNER,
            }
        )

    @bp.post("/upload/<token>")
    def upload(token: str) -> Response:
        with slots.lock:
            slot = slots.uploads.get(token)
        if slot is None:
            raise Refusal(404, "no such upload slot: call preUpload first (each slot takes one upload)")
        _, size, file_id = slot
        data = request.get_data()
        if len(data) != size:
            raise Refusal(400, f"uploaded {len(data)} bytes but preUpload announced size {size}")
        with slots.lock:
            slots.uploads.pop(token, None)
        state.files.put(data, "application/octet-stream", "encrypted", file_id=file_id)
        receipt = secrets.token_hex(16)
        return jsonify(singleFile={"fileChecksum": mmcs_checksum(data), "fileSize": len(data), "receipt": receipt})

    @bp.get("/v1/preDownload")
    def pre_download() -> Response:
        authenticate()
        url, signature, owner = (request.headers.get(h, "") for h in ("url", "signature", "owner"))
        if not url or not signature or not owner:
            raise Refusal(400, "the url, signature and owner headers are required")
        file_id = apple_file_id(state.base_url, url)
        stored = state.files.get(file_id) if file_id else None
        if stored is None:
            raise Refusal(404, "no attachment at that url")
        if owner != MMCS_OWNER or not hmac.compare_digest(signature, mmcs_checksum(stored.data)):
            raise Refusal(400, "signature or owner does not match the attachment")
        ticket = secrets.token_urlsafe(24)
        with slots.lock:
            slots.downloads[ticket] = stored.id
        return jsonify({"download-url": f"{state.base_url}/apple/download/{ticket}"})

    @bp.get("/download/<ticket>")
    def download(ticket: str) -> Response:
        with slots.lock:
            file_id = slots.downloads.get(ticket)
        stored = state.files.get(file_id) if file_id else None
        if stored is None:
            raise Refusal(404, "no such download")
        return file_response(stored)

    @bp.get("/mmcs/<file_id>")
    def mmcs(file_id: str) -> Response:
        stored = state.files.get(file_id)
        if stored is None:
            raise Refusal(404, "no such MMCS object")
        return file_response(stored)

    @bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
    def unknown(rest: str) -> Response:
        raise Refusal(404, f"no endpoint /{rest}")

    return bp


def _json() -> dict[str, Any]:
    raw = request.get_data()
    if request.headers.get("Content-Encoding", "").strip().lower() == "gzip":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise Refusal(400, "body is not valid gzip although Content-Encoding says gzip") from None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Refusal(400, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refusal(400, "body must be a JSON object")
    return body


def _message(state: ProviderState, asset: Asset) -> Response:
    message_id = request.headers.get("id", "")
    destination = request.headers.get("destination-id", "")
    if not message_id or not destination:
        raise Refusal(400, "the id and destination-id headers are required")
    body = _json()
    if body.get("v") != 1:
        raise Refusal(400, "v must be 1")
    if body.get("id") != message_id:
        raise Refusal(400, "body id must equal the id header")
    if body.get("sourceId") != str(asset["business_id"]) or body.get("destinationId") != destination:
        raise Refusal(400, "sourceId / destinationId must equal the source-id / destination-id headers")
    kind_name = body.get("type")
    if kind_name not in TYPES:
        raise Refusal(400, f"type must be one of {', '.join(TYPES)}")
    auto_reply = request.headers.get("auto-reply", "false").strip().lower() == "true"

    kind, text, files = TYPES[kind_name], None, []
    if kind_name == "text":
        text = body.get("body")
        if not isinstance(text, str) or not text:
            raise Refusal(400, "a text message needs a body")
        files = [_attachment(state, item, n) for n, item in enumerate(_list(body.get("attachments")))]
        if files:
            kind = "file"
        elif auto_reply:
            kind = "system"
        text = text.replace(OBJECT_REPLACEMENT, "").strip() or None

    # Apple dedupes on `id`: a repeat is acknowledged, and the store counts it instead of recording it.
    state.store.record(
        channel=CHANNEL,
        asset=asset.name,
        customer=destination,
        kind=kind,
        text=text,
        files=files,
        provider_id=message_id,
        key=message_id,
        request=body,
        auto_reply=auto_reply,
    )
    return Response(b"", status=200)


def _list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Refusal(400, "attachments must be a list")
    return raw


def _attachment(state: ProviderState, item: Any, n: int) -> dict[str, Any]:
    """Check an attachment against what was uploaded and decrypt it with the key it carries."""
    where = f"attachments[{n}]"
    if not isinstance(item, dict):
        raise Refusal(400, f"{where} must be an object")
    for field in ("name", "mimeType", "url", "owner", "signature-base64", "key"):
        if not isinstance(item.get(field), str) or not item[field]:
            raise Refusal(400, f"{where}.{field} is required")
    size = item.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise Refusal(400, f"{where}.size must be the plain file's size in bytes")
    file_id = apple_file_id(state.base_url, item["url"])
    stored = state.files.get(file_id) if file_id else None
    if stored is None:
        raise Refusal(400, f"{where}.url is not an uploaded MMCS object (use the mmcs-url of preUpload)")
    if item["owner"] != MMCS_OWNER:
        raise Refusal(400, f"{where}.owner is not the mmcs-owner of preUpload")
    try:
        signature_ok = base64.b64decode(item["signature-base64"], validate=True) == base64.b64decode(
            mmcs_checksum(stored.data)
        )
    except binascii.Error:
        signature_ok = False
    if not signature_ok:
        raise Refusal(400, f"{where}.signature-base64 is not the fileChecksum of the upload")
    key = parse_attachment_key(item["key"])
    if key is None:
        raise Refusal(400, f'{where}.key must be "00" followed by the 32-byte key in hex')
    data = decrypt(stored.data, key)
    if len(data) != size:
        raise Refusal(400, f"{where}.size is {size} but the decrypted file has {len(data)} bytes")
    return {"url": item["url"], "name": item["name"], "mime": item["mimeType"], "size": size, "data": data}
