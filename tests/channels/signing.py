"""Sign test requests the way each provider does, independently of the code under test.

The signatures come from connector/sandbox/signing.py (written from the providers' specs, sharing no
code with the channels' checks, and its Twilio signature held against twilio's own validator);
secrets come from the test configuration (`tests/config/channels.yaml`), the one place they are
written. Each `signed_*` function returns the keyword arguments of a Flask test-client `post`.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from werkzeug.datastructures import MultiDict

from connector.sandbox import signing

TESTS = Path(__file__).resolve().parent.parent
FIXTURES = TESTS / "fixtures"
PUBLIC_BASE_URL = "https://connector.example.com"
FORM = "application/x-www-form-urlencoded"


@cache
def asset(name: str) -> dict[str, Any]:
    """The test asset `name` as written in tests/config/channels.yaml."""
    config = yaml.safe_load((TESTS / "config" / "channels.yaml").read_text())
    return next(a for a in config["assets"] if a["name"] == name)


def fixture_bytes(channel: str, name: str) -> bytes:
    return (FIXTURES / channel / name).read_bytes()


def fixture_json(channel: str, name: str) -> Any:
    return json.loads(fixture_bytes(channel, name))


# -- Twilio ----------------------------------------------------------------------------------------


def twilio_signature(url: str, params: Mapping[str, Any] | MultiDict, token: str | None = None) -> str:
    pairs = params.items(multi=True) if isinstance(params, MultiDict) else params.items()
    return signing.twilio_signature(token or asset("test-sms")["auth_token"], url, [(k, str(v)) for k, v in pairs])


def signed_sms(
    path: str, params: Mapping[str, str] | list[tuple[str, str]], *, url: str | None = None, token: str | None = None
) -> dict[str, Any]:
    """A Twilio form POST to `path`, signed for `url` (default: the public URL of `path`)."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    signature = twilio_signature(url or PUBLIC_BASE_URL + path, MultiDict(pairs), token)
    return {"data": urlencode(pairs), "content_type": FORM, "headers": {"X-Twilio-Signature": signature}}


# -- Meta (Messenger, WhatsApp) -------------------------------------------------------------------


def meta_signature(body: bytes, secret: str) -> str:
    return signing.meta_signature(secret, body)


def signed_meta(asset_name: str, body: bytes, *, content_type: str = "application/json") -> dict[str, Any]:
    signature = meta_signature(body, asset(asset_name)["app_secret"])
    return {"data": body, "content_type": content_type, "headers": {"X-Hub-Signature-256": signature}}


# -- Apple Messages for Business ------------------------------------------------------------------


def apple_token(
    *, secret: str | None = None, audience: str | None = None, expires_in: float | None = 300, **claims: Any
) -> str:
    """An HS256 JWT as Apple signs it: key = base64-decoded API secret, aud = the MSP id."""
    test = asset("test-apple")
    return signing.apple_jwt(secret or test["secret"], audience or test["msp_id"], expires_in=expires_in, **claims)


def signed_apple(
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    compress: bool = True,
    token: str | None = None,
) -> dict[str, Any]:
    """An Apple POST: gzip body (as Apple usually sends), bearer JWT, and the message headers given."""
    all_headers = {"Authorization": f"Bearer {token or apple_token()}", **(headers or {})}
    if compress:
        body = gzip.compress(body)
        all_headers["Content-Encoding"] = "gzip"
    return {"data": body, "content_type": "application/json", "headers": all_headers}


def apple_fixture(name: str, **options: Any) -> dict[str, Any]:
    """An Apple fixture file holds the request headers and the JSON body Apple sends."""
    case = fixture_json("apple", name)
    body = json.dumps(case["body"], ensure_ascii=False).encode()
    return signed_apple(body, case["headers"], **options)


# -- In-app ---------------------------------------------------------------------------------------


def inapp_signature(body: bytes, timestamp: str, secret: str | None = None) -> str:
    return signing.inapp_signature(secret or asset("test-inapp")["secret"], timestamp, body)


def signed_inapp(
    body: bytes, *, timestamp: float | None = None, secret: str | None = None, content_type: str = "application/json"
) -> dict[str, Any]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    headers = {"X-Timestamp": stamp, "X-Signature": inapp_signature(body, stamp, secret)}
    return {"data": body, "content_type": content_type, "headers": headers}
