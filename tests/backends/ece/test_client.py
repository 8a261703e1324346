"""The ECE client against the API profile (docs/protocols/ece.md), with `responses` for ECE and
a real Redis for the shared token and configuration caches."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs

import pytest
import redis as redis_lib
import requests
import responses
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from connector.backends.ece.client import (
    Availability,
    EceClient,
    EntryPointConfiguration,
    StartedConversation,
    client_for,
)
from connector.config.model import EntryPoint, Integration
from connector.errors import ConversationGone, PermanentError, RetryableError
from connector.store import keys
from tests.helpers import logged_text

BASE = "https://ece.example.com"
WS = f"{BASE}/system/ws/v19/clientapplications"
TOKEN_URL = f"{WS}/authentication/oauth2/token"
CONFIG_URL = f"{WS}/messaging/configuration?entrypoint=1001"
CONVERSATIONS = f"{WS}/messaging/conversations"
CONV = "ca2c588e-5b2f-4c1e-9d3a-0f6c1c2d3e4f"
CHAT = f"{BASE}/system/egain/chat/entrypoint"
KEY = "client-key-1"
SECRET = "client-s3cret-value"
TOKEN = "tok-1"


def integration(**overrides: object) -> Integration:
    fields: dict[str, object] = {
        "name": "ece-test",
        "type": "ece",
        "base_url": BASE,
        "client_key": KEY,
        "client_secret": SECRET,
        "entry_points": (EntryPoint(name="Support", id="1001"),),
    }
    fields.update(overrides)
    return Integration(**fields)  # type: ignore[arg-type]


def token_answer(token: str = TOKEN, expires_in: int = 86400) -> dict[str, object]:
    return {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}


def config_answer(last_modified: str = "2026-03-01T10:00:00.000Z") -> dict[str, object]:
    return {
        "entryPointConfiguration": [
            {"entryPoint": {"id": 1001}, "lastModified": last_modified, "attachmentPolicies": "allow_all"}
        ]
    }


def bearer(call: responses.Call) -> str | None:
    return call.request.headers.get("Authorization")


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def ece(redis: redis_lib.Redis) -> EceClient:
    return EceClient(integration(), redis)


def with_token(mocked: responses.RequestsMock, token: str = TOKEN) -> None:
    mocked.post(TOKEN_URL, json=token_answer(token))


def with_config(mocked: responses.RequestsMock, last_modified: str = "2026-03-01T10:00:00.000Z") -> None:
    mocked.get(CONFIG_URL, json=config_answer(last_modified))


# -- token ---------------------------------------------------------------------------------------


def test_token_request_is_basic_auth_with_a_client_credentials_form(
    mocked: responses.RequestsMock, ece: EceClient, redis: redis_lib.Redis
) -> None:
    with_token(mocked)
    assert ece.token() == "tok-1"
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Accept"] == "application/json"
    assert parse_qs(request.body) == {"grant_type": ["client_credentials"]}
    # cached shortly before ECE's expiry
    [token_key] = redis.keys(keys.ece_token("ece-test", "*"))
    assert 86400 - 60 - 5 <= redis.ttl(token_key) <= 86400 - 60


def test_token_is_shared_by_clients_through_redis(mocked: responses.RequestsMock, redis: redis_lib.Redis) -> None:
    with_token(mocked)
    assert EceClient(integration(), redis).token() == "tok-1"
    assert EceClient(integration(), redis).token() == "tok-1"  # another worker: no second login
    assert len(mocked.calls) == 1


def test_changed_client_key_does_not_reuse_the_old_token(
    mocked: responses.RequestsMock, redis: redis_lib.Redis
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("tok-old"))
    mocked.post(TOKEN_URL, json=token_answer("tok-new"))
    assert EceClient(integration(), redis).token() == "tok-old"
    assert EceClient(integration(client_key="client-key-2"), redis).token() == "tok-new"


def test_short_token_lifetime_is_cached_at_least_30_seconds(
    mocked: responses.RequestsMock, ece: EceClient, redis: redis_lib.Redis
) -> None:
    mocked.post(TOKEN_URL, json=token_answer(expires_in=45))
    ece.token()
    [token_key] = redis.keys(keys.ece_token("ece-test", "*"))
    assert 25 <= redis.ttl(token_key) <= 30


def test_fresh_token_logs_in_again(mocked: responses.RequestsMock, ece: EceClient) -> None:
    mocked.post(TOKEN_URL, json=token_answer("tok-1"))
    mocked.post(TOKEN_URL, json=token_answer("tok-2"))
    assert ece.token() == "tok-1"
    assert ece.token(fresh=True) == "tok-2"
    assert ece.token() == "tok-2"


def test_wrong_key_or_secret_is_permanent_and_says_where_to_look(
    mocked: responses.RequestsMock, ece: EceClient
) -> None:
    mocked.post(TOKEN_URL, status=401, json={"error": "invalid_client"})
    with pytest.raises(PermanentError) as raised:
        ece.token()
    assert raised.value.reason == (
        "ECE rejected the client key/secret of integration ece-test: check them in ECE's client application"
    )


def test_missing_credentials_are_permanent_without_a_request(
    mocked: responses.RequestsMock, redis: redis_lib.Redis
) -> None:
    with pytest.raises(PermanentError, match="has no client_key/client_secret"):
        EceClient(integration(client_secret=None), redis).token()
    assert len(mocked.calls) == 0


def test_a_401_renews_the_token_once_and_repeats_the_call(mocked: responses.RequestsMock, ece: EceClient) -> None:
    mocked.post(TOKEN_URL, json=token_answer("tok-1"))
    mocked.post(TOKEN_URL, json=token_answer("tok-2"))
    mocked.get(CONFIG_URL, status=401)
    with_config(mocked)
    assert ece.entry_point_configuration("1001").last_modified == "2026-03-01T10:00:00.000Z"
    assert [c.request.url for c in mocked.calls] == [TOKEN_URL, CONFIG_URL, TOKEN_URL, CONFIG_URL]
    assert bearer(mocked.calls[1]) == "Bearer tok-1"
    assert bearer(mocked.calls[3]) == "Bearer tok-2"
    assert ece.token() == "tok-2"  # the renewed token replaced the rejected one in Redis


def test_a_401_uses_the_token_another_worker_already_renewed(
    mocked: responses.RequestsMock, ece: EceClient, redis: redis_lib.Redis
) -> None:
    with_token(mocked, "tok-1")
    ece.token()
    [token_key] = redis.keys(keys.ece_token("ece-test", "*"))

    def renewed_elsewhere(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        redis.set(token_key, "tok-other")  # another worker logged in meanwhile
        return (401, {}, "")

    mocked.add_callback("GET", CONFIG_URL, callback=renewed_elsewhere)
    with_config(mocked)
    ece.entry_point_configuration("1001")
    assert bearer(mocked.calls[-1]) == "Bearer tok-other"
    assert [c.request.url for c in mocked.calls].count(TOKEN_URL) == 1


def test_a_second_401_is_permanent(mocked: responses.RequestsMock, ece: EceClient) -> None:
    mocked.post(TOKEN_URL, json=token_answer("tok-1"))
    mocked.post(TOKEN_URL, json=token_answer("tok-2"))
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=401)
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=401)
    with pytest.raises(PermanentError, match="ECE rejected the client key/secret of integration ece-test"):
        ece.send_message(CONV, "hello")
    assert len([c for c in mocked.calls if c.request.url.endswith("/messages")]) == 2


# -- entry point configuration --------------------------------------------------------------------


def test_configuration_is_read_and_cached_in_redis(
    mocked: responses.RequestsMock, ece: EceClient, redis: redis_lib.Redis
) -> None:
    with_token(mocked)
    with_config(mocked)
    config = ece.entry_point_configuration("1001")
    assert config == EntryPointConfiguration("1001", "2026-03-01T10:00:00.000Z", "allow_all")
    assert bearer(mocked.calls[1]) == "Bearer tok-1"
    cache_key = keys.ece_entry_point_config("ece-test", "1001")
    assert 295 <= redis.ttl(cache_key) <= 300
    # another client (worker) reads the cache: no request
    assert EceClient(integration(), redis).entry_point_configuration("1001") == config
    assert len(mocked.calls) == 2


def test_fresh_configuration_asks_ece_again(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    with_config(mocked, "v1")
    with_config(mocked, "v2")
    assert ece.entry_point_configuration("1001").last_modified == "v1"
    assert ece.entry_point_configuration("1001", fresh=True).last_modified == "v2"
    assert ece.entry_point_configuration("1001").last_modified == "v2"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "no entry point 1001 in ECE"),
        (403, "entry point 1001 is not bound to the client app in ECE: add it to the messaging adapter"),
    ],
)
def test_configuration_refusals_name_the_fix(
    mocked: responses.RequestsMock, ece: EceClient, status: int, message: str
) -> None:
    with_token(mocked)
    mocked.get(CONFIG_URL, status=status)
    with pytest.raises(PermanentError) as raised:
        ece.entry_point_configuration("1001")
    assert raised.value.reason == message


def test_empty_configuration_list_means_no_such_entry_point(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    mocked.get(CONFIG_URL, json={"entryPointConfiguration": []})
    with pytest.raises(PermanentError, match="no entry point 1001 in ECE"):
        ece.entry_point_configuration("1001")


# -- start ----------------------------------------------------------------------------------------


def start(ece: EceClient, **overrides: object) -> StartedConversation:
    kwargs: dict[str, object] = {
        "customer": {"phone_number": "+15550001234", "full_name": "Ada Customer"},
        "custom_attributes": {"fb.username": "ada"},
        "subject": "Order 42",
        "locale": "en-US",
    }
    kwargs.update(overrides)
    return ece.start_conversation("1001", **kwargs)  # type: ignore[arg-type]


def test_start_sends_the_profile_body_and_reads_the_ids(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    with_config(mocked)
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": CONV}, "activity": {"id": 3118908}})
    started = start(ece)
    assert started == StartedConversation(CONV, "3118908")
    request = mocked.calls[-1].request
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "entryPoint": {"id": "1001", "lastModified": "2026-03-01T10:00:00.000Z"},
        "customer": {
            "attributes": [
                {"name": "phone_number", "value": "+15550001234"},
                {"name": "full_name", "value": "Ada Customer"},
            ]
        },
        "subject": "Order 42",
        "customAttributes": [{"name": "fb.username", "value": "ada"}],
        "locale": "en-US",
    }


def test_start_without_subject_or_locale_leaves_them_out(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    with_config(mocked)
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": CONV}})
    assert start(ece, subject=None, locale=None) == StartedConversation(CONV, None)
    body = json.loads(mocked.calls[-1].request.body)
    assert "subject" not in body and "locale" not in body


def test_stale_last_modified_refetches_the_configuration_and_retries_once(
    mocked: responses.RequestsMock, ece: EceClient
) -> None:
    with_token(mocked)
    with_config(mocked, "old")
    with_config(mocked, "new")
    mocked.post(CONVERSATIONS, status=409)
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": CONV}, "activity": {"id": "7"}})
    assert start(ece).conversation_id == CONV
    starts = [json.loads(c.request.body) for c in mocked.calls if c.request.url == CONVERSATIONS]
    assert [s["entryPoint"]["lastModified"] for s in starts] == ["old", "new"]
    assert ece.entry_point_configuration("1001").last_modified == "new"  # the cache holds the new one


def test_a_second_409_is_retryable(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    with_config(mocked, "old")
    with_config(mocked, "new")
    mocked.post(CONVERSATIONS, status=409)
    mocked.post(CONVERSATIONS, status=409)
    with pytest.raises(RetryableError, match="twice as stale"):
        start(ece)
    assert len([c for c in mocked.calls if c.request.url == CONVERSATIONS]) == 2


def test_start_on_an_entry_point_not_bound_to_the_app(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    with_config(mocked)
    mocked.post(CONVERSATIONS, status=403)
    with pytest.raises(PermanentError, match="entry point 1001 is not bound to the client app in ECE"):
        start(ece)


def test_start_answer_without_conversation_id_is_permanent(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    with_config(mocked)
    mocked.post(CONVERSATIONS, status=201, json={"activity": {"id": "7"}})
    with pytest.raises(PermanentError, match=r"without conversation.id: check api_paths.start"):
        start(ece)


def test_bad_request_carries_eces_own_message(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    with_config(mocked)
    mocked.post(
        CONVERSATIONS,
        status=400,
        json={"code": "400-107", "developerMessage": "Customer attribute 'phone_number' is invalid."},
    )
    with pytest.raises(PermanentError) as raised:
        start(ece)
    assert raised.value.reason == "ECE refused start (400): Customer attribute 'phone_number' is invalid. (400-107)"


# -- send, attach, end ----------------------------------------------------------------------------


@pytest.mark.parametrize(("html", "media_type"), [(False, "text/plain"), (True, "text/html")])
def test_send_message(mocked: responses.RequestsMock, ece: EceClient, html: bool, media_type: str) -> None:
    with_token(mocked)
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=201, json={"id": 3118908847})
    assert ece.send_message(CONV, "Where is <b>my</b> order?", html=html) == "3118908847"
    request = mocked.calls[-1].request
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert json.loads(request.body) == {"type": {"value": media_type}, "content": "Where is <b>my</b> order?"}


def test_send_attachment_is_multipart_with_name_and_mime_type(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    mocked.post(f"{CONVERSATIONS}/{CONV}/attachments", status=201, json={"id": "att-9"})
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    assert ece.send_attachment(CONV, "receipt.png", "image/png", data) == "att-9"
    request = mocked.calls[-1].request
    assert request.headers["Authorization"] == "Bearer tok-1"
    environ = EnvironBuilder(
        method="POST", data=request.body, content_type=request.headers["Content-Type"]
    ).get_environ()
    form = Request(environ)
    assert form.form.to_dict() == {"name": "receipt.png", "mimeType": "image/png"}
    upload = form.files["file"]
    assert upload.filename == "receipt.png"
    assert upload.mimetype == "image/png"
    assert upload.read() == data


def test_end_conversation(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    mocked.post(f"{CONVERSATIONS}/{CONV}/end", status=204)
    assert ece.end_conversation(CONV) is None
    assert mocked.calls[-1].request.headers["Authorization"] == "Bearer tok-1"


CONVERSATION_CALLS = [
    pytest.param("messages", lambda ece: ece.send_message(CONV, "hi"), id="send_message"),
    pytest.param("attachments", lambda ece: ece.send_attachment(CONV, "a.txt", "text/plain", b"a"), id="attachment"),
    pytest.param("end", lambda ece: ece.end_conversation(CONV), id="end"),
]


@pytest.mark.parametrize(("suffix", "call"), CONVERSATION_CALLS)
def test_unknown_or_ended_conversation_is_gone(
    mocked: responses.RequestsMock, ece: EceClient, suffix: str, call: object
) -> None:
    with_token(mocked)
    mocked.post(f"{CONVERSATIONS}/{CONV}/{suffix}", status=404)
    with pytest.raises(ConversationGone, match=f"conversation {CONV} is unknown to ECE or already ended"):
        call(ece)  # type: ignore[operator]


@pytest.mark.parametrize(("suffix", "call"), CONVERSATION_CALLS)
def test_conversation_of_another_app_is_permanent(
    mocked: responses.RequestsMock, ece: EceClient, suffix: str, call: object
) -> None:
    with_token(mocked)
    mocked.post(f"{CONVERSATIONS}/{CONV}/{suffix}", status=403)
    with pytest.raises(PermanentError) as raised:
        call(ece)  # type: ignore[operator]
    assert raised.value.reason == f"conversation {CONV} was not started by this client app"
    assert not isinstance(raised.value, ConversationGone)


def test_server_error_is_retryable(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=500, json={"developerMessage": "internal"})
    with pytest.raises(RetryableError, match="ECE answered 500 to send_message") as raised:
        ece.send_message(CONV, "hi")
    assert raised.value.wait is None


def test_rate_limit_waits_as_told(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=429, headers={"Retry-After": "7"})
    with pytest.raises(RetryableError) as raised:
        ece.send_message(CONV, "hi")
    assert raised.value.wait == 7


def test_rate_limit_with_an_http_date(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=429, headers={"Retry-After": later})
    with pytest.raises(RetryableError) as raised:
        ece.send_message(CONV, "hi")
    assert raised.value.wait is not None and 110 <= raised.value.wait <= 120


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (requests.ConnectionError("Connection refused"), "cannot reach ECE at ece.example.com:443"),
        (requests.ReadTimeout("read timed out"), "did not answer within 10 s"),
        (requests.ConnectTimeout("connect timed out"), "did not accept a connection within 3.05 s"),
    ],
)
def test_transport_failures_are_retryable(
    mocked: responses.RequestsMock, ece: EceClient, failure: Exception, words: str
) -> None:
    with_token(mocked)
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", body=failure)
    with pytest.raises(RetryableError, match=words):
        ece.send_message(CONV, "hi")


def test_redirect_is_not_followed_and_names_the_fix(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=301, headers={"Location": "https://ece2.example.com/"})
    with pytest.raises(PermanentError, match=r"redirected send_message to https://ece2\.example\.com/: set base_url"):
        ece.send_message(CONV, "hi")
    assert len(mocked.calls) == 2


# -- api_paths ------------------------------------------------------------------------------------


def test_api_paths_override_single_paths_and_the_version(
    mocked: responses.RequestsMock, redis: redis_lib.Redis
) -> None:
    custom = integration(
        api_paths={
            "api_version": "v20",
            "start": "/custom/{v}/ep/{ep}/start",
            "send_message": "/custom/{v}/chats/{id}/say",
            "live_session_status": "/system/egain/chat/entrypoint/queueStatus/{ep}",
        }
    )
    ece = EceClient(custom, redis)
    mocked.post(f"{BASE}/system/ws/v20/clientapplications/authentication/oauth2/token", json=token_answer())
    mocked.get(f"{BASE}/system/ws/v20/clientapplications/messaging/configuration?entrypoint=1001", json=config_answer())
    mocked.post(f"{BASE}/custom/v20/ep/1001/start", status=201, json={"conversation": {"id": "c/1"}})
    mocked.post(f"{BASE}/custom/v20/chats/c%2F1/say", status=201, json={"id": "m1"})
    started = ece.start_conversation("1001", customer={}, custom_attributes={})
    assert ece.send_message(started.conversation_id, "hi") == "m1"  # the id is escaped, not a path
    for name in ("chatAllowed", "agentAvailability", "capacity", "checkEligibility"):
        mocked.get(f"{CHAT}/{name}/1001", json={"allowed": True, "available": True, "count": 1, "responseType": 0})
    mocked.get(f"{CHAT}/queueStatus/1001", json={"queueDepth": 4, "waitTime": 60})
    assert ece.availability("1001").queue_depth == 4


def test_unknown_api_path_names_are_warned(redis: redis_lib.Redis, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="connector.backends.ece.client"):
        EceClient(integration(name="ece-typo", api_paths={"send_mesage": "/x"}), redis)
    assert "unknown paths send_mesage" in caplog.text


# -- availability ---------------------------------------------------------------------------------


def with_availability(
    mocked: responses.RequestsMock,
    *,
    allowed: bool = True,
    available: bool = True,
    count: int = 3,
    response_type: int = 0,
    live: dict[str, object] | None = None,
    live_status: int = 200,
) -> None:
    mocked.get(f"{CHAT}/chatAllowed/1001", json={"allowed": allowed})
    mocked.get(f"{CHAT}/agentAvailability/1001", json={"available": available})
    mocked.get(f"{CHAT}/capacity/1001", json={"count": count})
    mocked.get(f"{CHAT}/checkEligibility/1001", json={"responseType": response_type})
    mocked.get(f"{CHAT}/liveSessionStatus/1001", status=live_status, json=live or {"queueDepth": 2, "waitTime": 35})


def test_availability_reads_every_indicator_without_auth(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_availability(mocked)
    assert ece.availability("1001") == Availability(
        chat_allowed=True, agents_available=True, capacity=3, eligibility=0, queue_depth=2, wait_seconds=35
    )
    assert len(mocked.calls) == 5
    for call in mocked.calls:
        assert call.request.headers["Accept"] == "application/json"
        assert "Authorization" not in call.request.headers


@pytest.mark.parametrize("live_status", [404, 500])
def test_live_session_status_failure_leaves_depth_and_wait_unknown(
    mocked: responses.RequestsMock, ece: EceClient, live_status: int
) -> None:
    with_availability(mocked, live_status=live_status)
    availability = ece.availability("1001")
    assert (availability.queue_depth, availability.wait_seconds) == (None, None)
    assert availability.can_take_chats


def test_live_session_status_unreachable_is_soft_too(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_availability(mocked)
    mocked.replace(responses.GET, f"{CHAT}/liveSessionStatus/1001", body=requests.ConnectionError("reset"))
    assert ece.availability("1001").queue_depth is None


@pytest.mark.parametrize(
    ("indicators", "can_take"),
    [
        ({}, True),
        ({"allowed": False}, False),
        ({"available": False}, False),
        ({"count": 0}, False),
        ({"response_type": 1}, False),
        ({"response_type": 2}, False),
    ],
)
def test_can_take_chats(
    mocked: responses.RequestsMock, ece: EceClient, indicators: dict[str, object], can_take: bool
) -> None:
    with_availability(mocked, **indicators)  # type: ignore[arg-type]
    assert ece.availability("1001").can_take_chats is can_take


def test_unknown_capacity_and_eligibility_do_not_close_the_gate(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_availability(mocked)
    mocked.replace(responses.GET, f"{CHAT}/capacity/1001", status=404)
    mocked.replace(responses.GET, f"{CHAT}/checkEligibility/1001", body="not json")
    availability = ece.availability("1001")
    assert (availability.capacity, availability.eligibility) == (None, None)
    assert availability.can_take_chats


def test_availability_reads_eces_default_xml_too(mocked: responses.RequestsMock, ece: EceClient) -> None:
    ns = 'xmlns:ns2="http://bindings.egain.com/chat"'
    mocked.get(f"{CHAT}/chatAllowed/1001", body='<chatAllowed allowed="true"/>', content_type="application/xml")
    mocked.get(f"{CHAT}/agentAvailability/1001", body='<agentAvailability available="false"/>')
    mocked.get(f"{CHAT}/capacity/1001", body=f"<availableSlots {ns}><ns2:count>0</ns2:count></availableSlots>")
    mocked.get(f"{CHAT}/checkEligibility/1001", body='<checkEligibility responseType="1"/>')
    mocked.get(
        f"{CHAT}/liveSessionStatus/1001",
        body=f"<sessionStatus {ns}><ns2:waitTime>8.0</ns2:waitTime><ns2:queueDepth>2</ns2:queueDepth></sessionStatus>",
    )
    assert ece.availability("1001") == Availability(
        chat_allowed=True, agents_available=False, capacity=0, eligibility=1, queue_depth=2, wait_seconds=8
    )


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503},
        {"body": requests.ConnectionError("refused")},
        {"body": requests.ReadTimeout("slow")},
    ],
)
@pytest.mark.parametrize("check", ["chatAllowed", "agentAvailability", "capacity", "checkEligibility"])
def test_confirmed_check_failures_are_retryable(
    mocked: responses.RequestsMock, ece: EceClient, check: str, failure: dict[str, object]
) -> None:
    mocked.assert_all_requests_are_fired = False  # the checks after the failing one are not asked
    with_availability(mocked)
    mocked.replace(responses.GET, f"{CHAT}/{check}/1001", **failure)  # type: ignore[arg-type]
    with pytest.raises(RetryableError):
        ece.availability("1001")


# -- TLS and logs ---------------------------------------------------------------------------------


def test_verify_tls_false_warns_once_and_is_passed(
    mocked: responses.RequestsMock, redis: redis_lib.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with_token(mocked)
    insecure = integration(name="ece-insecure", verify_tls=False)
    with caplog.at_level(logging.WARNING, logger="connector.backends.ece.client"):
        EceClient(insecure, redis).token()
        EceClient(insecure, redis).token()
    assert mocked.calls[0].request.req_kwargs["verify"] is False
    warnings = [r for r in caplog.records if "NOT verified" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "ece-insecure" in warnings[0].getMessage()


def test_ca_bundle_is_passed_on_every_request(
    mocked: responses.RequestsMock, redis: redis_lib.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # even with REQUESTS_CA_BUNDLE set (a Session's own verify would lose to it)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with_token(mocked)
    with_config(mocked)
    EceClient(integration(ca_bundle="/etc/ssl/ece-ca.pem"), redis).entry_point_configuration("1001")
    assert [c.request.req_kwargs["verify"] for c in mocked.calls] == ["/etc/ssl/ece-ca.pem"] * 2


def test_verification_is_on_by_default(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    ece.token()
    verify = mocked.calls[0].request.req_kwargs["verify"]
    assert verify is True or verify == os.environ.get("REQUESTS_CA_BUNDLE")  # requests merges the env's bundle


def test_plain_http_base_url_is_warned_once(redis: redis_lib.Redis, caplog: pytest.LogCaptureFixture) -> None:
    lab = integration(name="ece-lab", base_url="http://ece-lab:8080")
    with caplog.at_level(logging.WARNING, logger="connector.backends.ece.client"):
        EceClient(lab, redis)
        EceClient(lab, redis)
    assert len([r for r in caplog.records if "plain http" in r.getMessage()]) == 1


def test_secret_token_and_bodies_never_reach_the_logs(
    mocked: responses.RequestsMock, ece: EceClient, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(TOKEN_URL, json=token_answer("tok-secret-1"))
    mocked.post(TOKEN_URL, json=token_answer("tok-secret-2"))
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=401)
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=201, json={"id": "m-77"})
    with caplog.at_level(logging.DEBUG):
        ece.send_message(CONV, "my card is 4111 1111 1111 1111")
    logged = caplog.text + logged_text(caplog.records)
    assert "m-77" in logged and CONV in logged  # the trace is there ...
    basic = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    for secret in (SECRET, basic, "tok-secret-1", "tok-secret-2", "4111"):
        assert secret not in logged  # ... without secrets or the customer's words


# -- one client per integration and process -------------------------------------------------------


def test_client_for_reuses_the_client_until_the_integration_changes(redis: redis_lib.Redis) -> None:
    first = client_for(integration(name="ece-shared"), redis)
    assert client_for(integration(name="ece-shared"), redis) is first  # equal config: same client
    changed = client_for(integration(name="ece-shared", client_secret="rotated"), redis)
    assert changed is not first
    assert changed.integration.client_secret == "rotated"
    assert client_for(integration(name="ece-other"), redis) is not changed


def test_a_burst_of_new_chats_asks_ece_for_availability_once(mocked: responses.RequestsMock, ece: EceClient) -> None:
    """Eight drain threads meet a cold cache at once: one asks ECE, the others wait for its answer."""
    import threading

    from connector.backends.ece.backend import AvailabilityCache

    with_availability(mocked)
    cache = AvailabilityCache()
    start = threading.Barrier(8)
    answers: list[Availability] = []

    def drain_thread() -> None:
        start.wait()
        answers.append(cache.get(ece, "1001", ttl=2.0))

    threads = [threading.Thread(target=drain_thread) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(answers) == 8 and all(a.can_take_chats for a in answers)
    assert len(mocked.calls) == 5, "the five availability calls, once"


def test_a_no_is_asked_again_every_time(mocked: responses.RequestsMock, ece: EceClient) -> None:
    from connector.backends.ece.backend import AvailabilityCache

    with_availability(mocked, available=False)
    cache = AvailabilityCache()
    assert not cache.get(ece, "1001", ttl=2.0).can_take_chats
    assert not cache.get(ece, "1001", ttl=2.0).can_take_chats
    assert len(mocked.calls) == 10, "a customer is never turned away on a stale no"
