"""The ECE simulator serves docs/protocols/ece.md row by row, errors included: token, entry
point configuration, availability checks (JSON and XML), start / send / attach / end, and the
failure switches. Plain HTTP with `requests` against a loopback server."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import requests
from defusedxml.ElementTree import fromstring

from tests.sandbox.ece_sim import KEY, OTHER_KEY, OTHER_SECRET, SECRET, TIMEOUT, Ece, running_ece

NS2 = "{http://bindings.egain.com/chat}"


@pytest.fixture
def ece() -> Iterator[Ece]:
    with running_ece() as e:
        yield e


def egain_error(answer: requests.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert body["code"].startswith(f"{status}-")
    return body["developerMessage"]


# -- token --------------------------------------------------------------------------------------


def test_token_is_a_bearer_for_the_configured_ttl() -> None:
    with running_ece(token_ttl=3600) as ece:
        answer = ece.token_response()
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"access_token", "expires_in", "token_type"}
        assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
        assert ece.token() != body["access_token"]


def test_default_token_ttl_is_a_day(ece: Ece) -> None:
    assert ece.token_response().json()["expires_in"] == 86400


@pytest.mark.parametrize(("key", "secret"), [(KEY, "wrong"), ("nobody", SECRET), (KEY, "")])
def test_token_with_bad_credentials_is_401(ece: Ece, key: str, secret: str) -> None:
    assert "client key and secret" in egain_error(ece.token_response(key, secret), 401)


def test_token_without_basic_auth_is_401(ece: Ece) -> None:
    answer = requests.post(
        f"{ece.apps}/authentication/oauth2/token", data={"grant_type": "client_credentials"}, timeout=TIMEOUT
    )
    egain_error(answer, 401)


def test_token_needs_grant_type_client_credentials(ece: Ece) -> None:
    assert "grant_type" in egain_error(ece.token_response(grant_type="password"), 400)


def test_other_app_gets_its_own_token(ece: Ece) -> None:
    assert ece.token_response(OTHER_KEY, OTHER_SECRET).status_code == 200


# -- Bearer checks ------------------------------------------------------------------------------


def test_bearer_missing_or_unknown_is_401(ece: Ece) -> None:
    egain_error(ece.configuration("1001", {}), 401)
    egain_error(ece.configuration("1001", {"Authorization": "Bearer not-a-token"}), 401)
    egain_error(ece.configuration("1001", {"Authorization": f"Basic {base64.b64encode(b'a:b').decode()}"}), 401)


def test_token_expires_after_ttl(ece: Ece) -> None:
    now = [1_000_000.0]
    ece.sim.model.clock = lambda: now[0]
    headers = ece.bearer()
    assert ece.configuration("1001", headers).status_code == 200
    now[0] += 86399
    assert ece.configuration("1001", headers).status_code == 200
    now[0] += 1
    assert "expired" in egain_error(ece.configuration("1001", headers), 401)
    assert ece.configuration("1001", ece.bearer()).status_code == 200


def test_token_expire_all_invalidates_every_token(ece: Ece) -> None:
    mine, other = ece.bearer(), ece.bearer(OTHER_KEY, OTHER_SECRET)
    ece.sim.model.token_expire_all()
    egain_error(ece.configuration("1001", mine), 401)
    egain_error(ece.configuration("1001", other), 401)


# -- entry point configuration ------------------------------------------------------------------


def test_configuration_shape(ece: Ece) -> None:
    answer = ece.configuration("1001", ece.bearer())
    assert answer.status_code == 200
    [config] = answer.json()["entryPointConfiguration"]
    # The confirmed sample carries the id as a number.
    assert config["entryPoint"] == {"id": 1001}
    assert config["lastModified"] == ece.sim.model.entry_points["1001"].last_modified
    assert config["attachmentPolicies"] == "allow_all"


def test_configuration_of_unbound_entry_point_is_403(ece: Ece) -> None:
    ece.sim.model.set_entry_point("1002", bound=False)
    assert "1002" in egain_error(ece.configuration("1002", ece.bearer()), 403)


def test_configuration_of_unknown_entry_point_is_404(ece: Ece) -> None:
    assert "9999" in egain_error(ece.configuration("9999", ece.bearer()), 404)


def test_configuration_without_entrypoint_is_400(ece: Ece) -> None:
    answer = requests.get(f"{ece.apps}/messaging/configuration", headers=ece.bearer(), timeout=TIMEOUT)
    egain_error(answer, 400)


# -- availability checks ------------------------------------------------------------------------


def test_availability_json_follows_the_switches(ece: Ece) -> None:
    model = ece.sim.model
    model.set_entry_point("1001", capacity=4, queue_depth=2, wait_seconds=35)
    assert ece.check("agentAvailability", "1001").json() == {"available": True}
    assert ece.check("capacity", "1001").json() == {"count": 4}
    assert ece.check("checkEligibility", "1001").json() == {"responseType": 0}
    assert ece.check("chatAllowed", "1001").json() == {"allowed": True}
    assert ece.check("liveSessionStatus", "1001").json() == {"queueDepth": 2, "waitTime": 35}

    model.set_entry_point("1001", capacity=0)
    assert ece.check("checkEligibility", "1001").json() == {"responseType": 2}
    assert ece.check("chatAllowed", "1001").json() == {"allowed": False}

    model.set_entry_point("1001", capacity=4, agents_available=False)
    assert ece.check("agentAvailability", "1001").json() == {"available": False}
    assert ece.check("capacity", "1001").json() == {"count": 0}
    assert ece.check("checkEligibility", "1001").json() == {"responseType": 1}

    model.set_entry_point("1001", agents_available=True, active=False)
    assert ece.check("chatAllowed", "1001").json() == {"allowed": False}
    assert ece.check("checkEligibility", "1001").json() == {"responseType": 0}


def test_availability_needs_no_auth_and_ignores_a_bad_one(ece: Ece) -> None:
    answer = requests.get(
        f"{ece.base}/system/egain/chat/entrypoint/agentAvailability/1001",
        headers={"Accept": "application/json", "Authorization": "Bearer junk"},
        timeout=TIMEOUT,
    )
    assert answer.json() == {"available": True}


def test_availability_xml_shapes(ece: Ece) -> None:
    ece.sim.model.set_entry_point("1001", capacity=3, queue_depth=2, wait_seconds=8)
    answers = {
        name: ece.check(name, "1001", as_json=False)
        for name in ("agentAvailability", "capacity", "checkEligibility", "chatAllowed", "liveSessionStatus")
    }
    for answer in answers.values():
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("application/xml")
    roots = {name: fromstring(answer.content) for name, answer in answers.items()}
    assert roots["agentAvailability"].tag == "agentAvailability"
    assert roots["agentAvailability"].get("available") == "true"
    assert roots["capacity"].tag == "availableSlots"
    assert roots["capacity"].findtext(f"{NS2}count") == "3"
    assert roots["checkEligibility"].get("responseType") == "0"
    assert roots["chatAllowed"].get("allowed") == "true"
    assert roots["liveSessionStatus"].findtext(f"{NS2}queueDepth") == "2"
    assert roots["liveSessionStatus"].findtext(f"{NS2}waitTime") == "8"


def test_unknown_availability_check_is_404(ece: Ece) -> None:
    assert "queueLength" in egain_error(ece.check("queueLength", "1001"), 404)


def test_availability_inactive_entry_point_xml(ece: Ece) -> None:
    ece.sim.model.set_entry_point("1002", active=False)
    assert fromstring(ece.check("chatAllowed", "1002", as_json=False).content).get("allowed") == "false"


@pytest.mark.parametrize(
    "name", ["agentAvailability", "capacity", "checkEligibility", "chatAllowed", "liveSessionStatus"]
)
def test_availability_of_unknown_entry_point_is_404(ece: Ece, name: str) -> None:
    egain_error(ece.check(name, "4242"), 404)
    answer = ece.check(name, "4242", as_json=False)
    assert answer.status_code == 404
    assert fromstring(answer.content).findtext("{http://bindings.egain.com/ws/model/v12/gen/common}code") == "404-101"


# -- start conversation -------------------------------------------------------------------------


def test_start_conversation_stores_what_was_sent(ece: Ece) -> None:
    headers = ece.bearer()
    body = {
        "entryPoint": {"id": 1001, "lastModified": ece.last_modified("1001", headers)},
        "customer": {"attributes": [{"name": "email", "value": "ada@example.com"}, {"name": "phone", "value": "+1"}]},
        "subject": "Order 42",
        "customAttributes": [{"name": "channel", "value": "sms"}],
        "locale": "en-US",
    }
    answer = ece.start_response(headers, body)
    assert answer.status_code == 201
    data = answer.json()
    conv = ece.sim.model.conversations[data["conversation"]["id"]]
    assert data["activity"]["id"] == conv.activity_id and conv.activity_id.isdigit()
    assert len(data["conversation"]["id"]) == 36  # a UUID
    assert conv.customer_attributes == body["customer"]["attributes"]
    assert conv.custom_attributes == [{"name": "channel", "value": "sms"}]
    assert (conv.subject, conv.locale, conv.entry_point_id, conv.app, conv.state) == (
        "Order 42",
        "en-US",
        "1001",
        KEY,
        "queued",
    )


def test_stale_last_modified_is_409_then_the_fresh_one_works(ece: Ece) -> None:
    headers = ece.bearer()
    stale = ece.last_modified("1001", headers)
    ece.sim.model.bump_last_modified("1001")
    answer = ece.start_response(headers, {"entryPoint": {"id": "1001", "lastModified": stale}})
    assert "stale" in egain_error(answer, 409)
    fresh = ece.last_modified("1001", headers)
    assert fresh != stale
    assert ece.start_response(headers, {"entryPoint": {"id": "1001", "lastModified": fresh}}).status_code == 201


def test_start_on_inactive_entry_point_is_400_saying_so(ece: Ece) -> None:
    headers = ece.bearer()
    last_modified = ece.last_modified("1001", headers)
    ece.sim.model.set_entry_point("1001", active=False)
    answer = ece.start_response(headers, {"entryPoint": {"id": "1001", "lastModified": last_modified}})
    assert "not active" in egain_error(answer, 400)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"entryPoint": {"id": "7777", "lastModified": "x"}}, "does not exist"),
        ({"entryPoint": {"id": "1001"}}, "lastModified"),
        ({"customer": {}}, "entryPoint.id"),
        ({"entryPoint": {"id": "1001", "lastModified": "x"}, "customer": {"attributes": "ada"}}, "customer.attributes"),
        ({"entryPoint": {"id": "1001", "lastModified": "x"}, "customAttributes": [{"value": 1}]}, "customAttributes"),
        ({"entryPoint": {"id": "1001", "lastModified": "x"}, "subject": 5}, "subject"),
    ],
)
def test_start_with_a_bad_body_is_400(ece: Ece, body: dict, words: str) -> None:
    assert words in egain_error(ece.start_response(ece.bearer(), body), 400)


def test_start_with_invalid_json_is_400(ece: Ece) -> None:
    headers = {**ece.bearer(), "Content-Type": "application/json"}
    answer = requests.post(ece.conversations, data='{"subject": "a\u0001', headers=headers, timeout=TIMEOUT)
    assert "JSON" in egain_error(answer, 400)


def test_start_on_unbound_entry_point_is_403(ece: Ece) -> None:
    headers = ece.bearer()
    last_modified = ece.last_modified("1001", headers)
    ece.sim.model.set_entry_point("1001", bound=False)
    egain_error(ece.start_response(headers, {"entryPoint": {"id": "1001", "lastModified": last_modified}}), 403)


def test_start_without_token_is_401(ece: Ece) -> None:
    egain_error(ece.start_response({}, {"entryPoint": {"id": "1001", "lastModified": "x"}}), 401)


# -- send message -------------------------------------------------------------------------------


def test_send_message_is_201_with_an_id_and_kept_in_order(ece: Ece) -> None:
    headers = ece.bearer()
    conv = ece.start(headers)
    first = ece.send(headers, conv, "hello")
    second = ece.send(headers, conv, "<b>bold</b>", kind="text/html")
    assert first.status_code == second.status_code == 201
    assert int(second.json()["id"]) > int(first.json()["id"])
    received = ece.sim.model.conversations[conv].received
    assert [(r.id, r.type, r.content) for r in received] == [
        (first.json()["id"], "text/plain", "hello"),
        (second.json()["id"], "text/html", "<b>bold</b>"),
    ]
    assert received[0].received_at <= received[1].received_at


def test_send_to_unknown_conversation_is_404(ece: Ece) -> None:
    egain_error(ece.send(ece.bearer(), "00000000-0000-0000-0000-000000000000", "hi"), 404)


def test_send_to_a_conversation_of_another_app_is_403(ece: Ece) -> None:
    theirs = ece.start(ece.bearer(OTHER_KEY, OTHER_SECRET))
    assert "not started by this client application" in egain_error(ece.send(ece.bearer(), theirs, "hi"), 403)
    assert ece.sim.model.conversations[theirs].received == []


def test_send_to_an_ended_conversation_is_404(ece: Ece) -> None:
    headers = ece.bearer()
    conv = ece.start(headers)
    assert ece.end(headers, conv).status_code == 204
    assert "ended" in egain_error(ece.send(headers, conv, "still there?"), 404)


def test_send_with_expired_token_is_401(ece: Ece) -> None:
    now = [2_000_000.0]
    ece.sim.model.clock = lambda: now[0]
    headers = ece.bearer()
    conv = ece.start(headers)
    now[0] += 86400
    egain_error(ece.send(headers, conv, "hi"), 401)
    assert ece.sim.model.conversations[conv].received == []


@pytest.mark.parametrize(
    "body", [{"type": {"value": "text/markdown"}, "content": "x"}, {"type": {"value": "text/plain"}}, {"content": "x"}]
)
def test_send_with_a_bad_body_is_400(ece: Ece, body: dict) -> None:
    headers = ece.bearer()
    conv = ece.start(headers)
    answer = requests.post(f"{ece.conversations}/{conv}/messages", json=body, headers=headers, timeout=TIMEOUT)
    egain_error(answer, 400)


# -- send attachment ----------------------------------------------------------------------------


def test_send_attachment_is_stored_and_downloadable(ece: Ece) -> None:
    headers = ece.bearer()
    conv = ece.start(headers)
    answer = requests.post(
        f"{ece.conversations}/{conv}/attachments",
        files={"file": ("scan.pdf", b"%PDF-1.4 fake", "application/octet-stream")},
        data={"name": "invoice.pdf", "mimeType": "application/pdf"},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 201
    file_id = answer.json()["id"]
    stored = ece.sim.model.files[file_id]
    assert (stored.name, stored.mime_type, stored.data, stored.direction) == (
        "invoice.pdf",
        "application/pdf",
        b"%PDF-1.4 fake",
        "customer",
    )
    [item] = ece.sim.model.conversations[conv].received
    assert (item.kind, item.attachment_id) == ("attachment", file_id)
    download = requests.get(f"{ece.base}/files/{file_id}", timeout=TIMEOUT)
    assert download.status_code == 200
    assert download.content == b"%PDF-1.4 fake"
    assert download.headers["Content-Type"] == "application/pdf"
    assert "invoice.pdf" in download.headers["Content-Disposition"]


def test_send_attachment_without_file_is_400(ece: Ece) -> None:
    headers = ece.bearer()
    conv = ece.start(headers)
    answer = requests.post(
        f"{ece.conversations}/{conv}/attachments", data={"name": "x"}, headers=headers, timeout=TIMEOUT
    )
    assert "file" in egain_error(answer, 400)


def test_send_attachment_to_another_apps_conversation_is_403(ece: Ece) -> None:
    theirs = ece.start(ece.bearer(OTHER_KEY, OTHER_SECRET))
    answer = requests.post(
        f"{ece.conversations}/{theirs}/attachments",
        files={"file": ("a.txt", b"a")},
        headers=ece.bearer(),
        timeout=TIMEOUT,
    )
    egain_error(answer, 403)


def test_unknown_file_is_404(ece: Ece) -> None:
    egain_error(requests.get(f"{ece.base}/files/123", timeout=TIMEOUT), 404)


# -- end conversation ---------------------------------------------------------------------------


def test_end_is_204_then_complete_once_and_ended(ece: Ece) -> None:
    headers = ece.bearer()
    conv = ece.start(headers)
    answer = ece.end(headers, conv)
    assert answer.status_code == 204 and answer.content == b""
    record = ece.sim.model.conversations[conv]
    assert record.state == "ended"
    assert [e["type"]["value"] for e in record.events] == ["complete"]
    assert record.events[0]["sender"] == {"type": "system"}
    egain_error(ece.end(headers, conv), 404)
    assert len(record.events) == 1


def test_end_of_another_apps_conversation_is_403(ece: Ece) -> None:
    theirs = ece.start(ece.bearer(OTHER_KEY, OTHER_SECRET))
    egain_error(ece.end(ece.bearer(), theirs), 403)
    assert ece.sim.model.conversations[theirs].state == "queued"


# -- failure switches ---------------------------------------------------------------------------


def test_down_answers_503_to_every_api_call(ece: Ece) -> None:
    headers = ece.bearer()
    conv = ece.start(headers)
    ece.sim.model.set_down("503")
    egain_error(ece.token_response(), 503)
    egain_error(ece.configuration("1001", headers), 503)
    egain_error(ece.check("agentAvailability", "1001"), 503)
    egain_error(ece.check("capacity", "1001", as_json=False), 503)
    egain_error(ece.send(headers, conv, "hi"), 503)
    egain_error(ece.end(headers, conv), 503)
    # The control API stays up, so a test can bring ECE back.
    assert ece.control("failures", {"down": None}).status_code == 200
    assert ece.send(headers, conv, "hi").status_code == 201


def test_fail_next_hits_the_messaging_api_only(ece: Ece) -> None:
    headers = ece.bearer()
    conv = ece.start(headers)
    ece.sim.model.fail_next(2, 500)
    assert ece.token_response().status_code == 200
    assert ece.check("capacity", "1001").status_code == 200
    assert "fail_next" in egain_error(ece.send(headers, conv, "one"), 500)
    egain_error(ece.configuration("1001", headers), 500)
    assert ece.send(headers, conv, "two").status_code == 201
    assert [r.content for r in ece.sim.model.conversations[conv].received] == ["two"]


def test_api_version_is_configurable() -> None:
    with running_ece(api_version="v20") as ece:
        answer = requests.post(
            f"{ece.base}/system/ws/v20/clientapplications/authentication/oauth2/token",
            auth=(KEY, SECRET),
            data={"grant_type": "client_credentials"},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200
        assert ece.token_response().status_code == 404  # the v19 path is not served
