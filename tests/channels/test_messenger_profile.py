"""Messenger's User Profile API call (`Messenger.profile`): what is asked, what comes back as
customer details, and every failure answered with None, never an exception."""

from __future__ import annotations

import logging

import pytest
import requests
import responses

from connector.channels.apple import Apple
from connector.channels.inapp import InApp
from connector.channels.messenger import Messenger
from connector.channels.sms import Sms
from connector.channels.whatsapp import WhatsApp
from tests.helpers import logged_text

from .senders import channel, graph_error

pytestmark = pytest.mark.usefixtures("fake_dns")  # names resolve without the network

PSID = "6789012345678901"
PROFILE_URL = f"https://graph.facebook.com/v21.0/{PSID}"
PAGE_TOKEN = "page-token"  # tests/config/channels.yaml
PIC = "https://platform-lookaside.fbsbx.com/platform/profilepic/?psid=6789012345678901&width=1024"


def messenger(**options) -> Messenger:
    return channel(Messenger, "test-messenger", **options)


def fields_asked(n: int = 0) -> str:
    return responses.calls[n].request.params["fields"]


@responses.activate
def test_the_profile_is_read_with_the_page_token_and_becomes_customer_details():
    responses.get(PROFILE_URL, json={"first_name": "Ana", "last_name": "Silva", "profile_pic": PIC, "id": PSID})

    details = messenger().profile(PSID)

    assert details == {"first_name": "Ana", "last_name": "Silva", "profile_name": "Ana Silva", "profile_pic": PIC}
    call = responses.calls[0]
    assert call.request.method == "GET"
    assert call.request.headers["Authorization"] == f"Bearer {PAGE_TOKEN}"
    assert PAGE_TOKEN not in call.request.url, "the token travels in the header, never in the URL"
    assert fields_asked() == "first_name,last_name,profile_pic", "locale is not asked without profile_locale"


@responses.activate
def test_locale_is_asked_only_with_profile_locale():
    responses.get(PROFILE_URL, json={"first_name": "Ana", "last_name": "Silva", "locale": "pt_BR", "id": PSID})

    details = messenger(profile_locale=True).profile(PSID)

    assert fields_asked() == "first_name,last_name,profile_pic,locale"
    assert details == {"first_name": "Ana", "last_name": "Silva", "profile_name": "Ana Silva", "locale": "pt_BR"}
    assert messenger().profile_fields == ("first_name", "last_name", "profile_pic")
    assert messenger(profile_locale=True).profile_fields[-1] == "locale"


@responses.activate
def test_a_locale_in_the_answer_is_ignored_when_not_asked():
    responses.get(PROFILE_URL, json={"first_name": "Ana", "locale": "pt_BR", "id": PSID})
    assert messenger().profile(PSID) == {"first_name": "Ana", "profile_name": "Ana"}


@responses.activate
def test_empty_and_odd_fields_are_left_out():
    responses.get(PROFILE_URL, json={"first_name": " ", "last_name": None, "profile_pic": 42, "id": PSID})
    assert messenger().profile(PSID) == {}, "an answer without usable fields is an empty profile, not a failure"


@pytest.mark.parametrize(
    ("status", "code", "subcode"),
    [
        (403, 230, None),  # the page lacks pages_messaging for this person
        (400, 100, 2018247),  # a field asked without Meta's approval
        (400, 100, 33),  # no such PSID for this page
        (403, 200, None),  # permissions error
    ],
)
@responses.activate
def test_no_permission_or_no_such_customer_is_no_profile_not_a_failure(caplog, status, code, subcode):
    responses.get(PROFILE_URL, status=status, json=graph_error(code, f"(#{code}) refused", subcode=subcode))
    with caplog.at_level(logging.INFO):
        assert messenger(profile_locale=True).profile(PSID) is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "not a failure"
    assert f"error {code}" in logged_text(caplog.records)


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500, "json": graph_error(2, "An unexpected error has occurred")},
        {"status": 503, "body": "<html>Service Unavailable</html>"},
        {"status": 429, "json": graph_error(613, "Calls to this api have exceeded the rate limit")},
        {"status": 401, "json": graph_error(190, "Invalid OAuth access token")},
        {"body": requests.ReadTimeout("read timed out")},
        {"body": requests.ConnectTimeout("connect timed out")},
        {"body": requests.ConnectionError("connection refused")},
        {"status": 200, "body": "<html>not json</html>", "content_type": "text/html"},
        {"status": 200, "json": ["not", "an", "object"]},
    ],
    ids=["500", "503-html", "429", "190", "read-timeout", "connect-timeout", "no-connection", "non-json", "json-list"],
)
@responses.activate
def test_a_failed_call_is_none_with_a_warning_and_no_token(caplog, answer):
    responses.get(PROFILE_URL, **answer)
    with caplog.at_level(logging.INFO):
        assert messenger().profile(PSID) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert PAGE_TOKEN not in logged_text(caplog.records)
    assert len(responses.calls) == 1, "never retried"


@pytest.mark.parametrize(
    ("cls", "asset"),
    [(Sms, "test-sms"), (Apple, "test-apple"), (WhatsApp, "test-whatsapp"), (InApp, "test-inapp")],
)
@responses.activate
def test_channels_without_a_profile_api_have_none(cls, asset):
    """Apple's opaque id and SMS numbers have no profile; WhatsApp's and in-app's webhooks carry the
    name themselves."""
    instance = channel(cls, asset)
    assert instance.profile_fields == ()
    assert instance.profile(instance.example_address) is None
    assert len(responses.calls) == 0
