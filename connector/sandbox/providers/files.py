"""Media the simulated providers hold: files customers send (put by the customer emulator) and files
the connector uploads (Apple), each served back at the URL shape the real provider uses.

The URL builders below are the one place those shapes are written: the blueprints route them and
the customer emulator puts them into the webhooks it sends, so the two can never disagree.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

from flask import Response


@dataclass(frozen=True)
class StoredFile:
    id: str
    data: bytes
    mime_type: str
    name: str

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class MediaFiles:
    """Thread-safe file store keyed by an id shaped like Meta's media ids (digits), which every
    provider's URL can carry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}

    @staticmethod
    def new_id() -> str:
        # WhatsApp media ids are 15-16 digit numbers; the other providers accept any path segment.
        return str(10**15 + secrets.randbelow(9 * 10**15))

    def put(self, data: bytes, mime_type: str, name: str, *, file_id: str | None = None) -> str:
        """Store `data` and return its id (`file_id` when given: Apple reserves the id at preUpload)."""
        file_id = file_id or self.new_id()
        with self._lock:
            self._files[file_id] = StoredFile(file_id, bytes(data), mime_type, name)
        return file_id

    def get(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(file_id)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()


def file_response(stored: StoredFile) -> Response:
    """The bytes with their Content-Type, as a provider's media host answers."""
    response = Response(stored.data, status=200, mimetype=stored.mime_type)
    response.headers["Content-Length"] = str(len(stored.data))
    return response


# -- the providers' media URL shapes (docs/protocols/channels.md, "Inbound media") -----------------


def twilio_media_url(base_url: str, account_sid: str, message_sid: str, file_id: str) -> str:
    """Twilio MMS media: a Media sub-resource of the message, read with HTTP Basic sid:token."""
    return f"{base_url}/twilio/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media/{file_id}"


def messenger_cdn_url(base_url: str, file_id: str) -> str:
    """Messenger attachments: a CDN URL in `payload.url`, fetched without auth."""
    return f"{base_url}/graph/cdn/{file_id}"


def whatsapp_download_url(base_url: str, file_id: str) -> str:
    """WhatsApp: what `GET /{v}/{media_id}` answers as `url`; fetched with the same Bearer token."""
    return f"{base_url}/graph/media-download/{file_id}"


def apple_mmcs_url(base_url: str, file_id: str) -> str:
    """Apple MMCS: where an encrypted attachment lives (`url` of an attachment, `mmcs-url`)."""
    return f"{base_url}/apple/mmcs/{file_id}"


def apple_file_id(base_url: str, url: str) -> str | None:
    """The file id of one of our MMCS URLs, or None for any other URL."""
    prefix = apple_mmcs_url(base_url, "")
    if not url.startswith(prefix):
        return None
    file_id = url[len(prefix) :]
    return file_id if file_id and "/" not in file_id else None


def inapp_file_url(base_url: str, file_id: str) -> str:
    """In-app: the app's own upload URL, fetched without auth."""
    return f"{base_url}/inapp/files/{file_id}"
