"""The Finesse REST client against recorded-shape answers (`responses`): each call, each error type,
the requestId header, the XML content type, credentials and TLS options."""

from __future__ import annotations

import base64
import logging
import os

import pytest
import requests
import responses
from defusedxml.ElementTree import fromstring

from connector.blending.finesse.client import (
    AuthorizationError,
    FinesseClient,
    FinesseError,
    FinesseUnavailable,
    InvalidInput,
    InvalidState,
    NotFound,
)
from connector.config.model import FinesseConfig
from tests.helpers import logged_text

PUB = "https://finesse-a.example.com:8445"
SUB = "https://finesse-b.example.com:8445"
API = f"{PUB}/finesse/api"
ADMIN_PASSWORD = "admin-s3cret"
AGENT_PASSWORD = "agent-pa55"

USER_XML = b"""<User><uri>/finesse/api/User/1001001</uri><roles><role>Agent</role><role>Supervisor</role></roles>
<loginId>1001001</loginId><loginName>aagent</loginName><state>NOT_READY</state>
<stateChangeTime>2026-03-01T17:58:21.234Z</stateChangeTime><pendingState/><reasonCodeId>16</reasonCodeId>
<ReasonCode><category>NOT_READY</category><uri>/finesse/api/ReasonCode/16</uri><code>10</code>
<label>Team Meeting</label><forAll>true</forAll><systemCode>false</systemCode><id>16</id></ReasonCode>
<settings><wrapUpOnIncoming>OPTIONAL</wrapUpOnIncoming></settings><extension>1001001</extension>
<firstName>Ada</firstName><lastName>Agent</lastName><teamId>5000</teamId><teamName>Support</teamName>
<dialogs>/finesse/api/User/1001001/Dialogs</dialogs></User>"""

DIALOGS_XML = b"""<Dialogs><Dialog><associatedDialogUri>/finesse/api/Dialog/321654</associatedDialogUri>
<fromAddress>1001001</fromAddress><id>12345678</id><mediaProperties><callType>CONSULT</callType>
<dialedNumber>1001002</dialedNumber><queueName/></mediaProperties><mediaType>Voice</mediaType>
<participants><Participant><actions><action>HOLD</action><action>DROP</action></actions>
<mediaAddress>1001001</mediaAddress><mediaAddressType>AGENT_DEVICE</mediaAddressType><state>ACTIVE</state>
<stateChangeTime>2026-03-01T18:00:00.000Z</stateChangeTime></Participant>
<Participant><mediaAddress>1001002</mediaAddress><state>ACTIVE</state></Participant></participants>
<state>ACTIVE</state><toAddress>1001002</toAddress><uri>/finesse/api/Dialog/12345678</uri></Dialog></Dialogs>"""

SYSTEM_INFO_XML = b"""<SystemInfo><currentTimestamp>2026-03-01T18:00:00.000Z</currentTimestamp>
<deploymentType>UCCE</deploymentType><primaryNode><host>finesse-a.example.com</host><httpsPort>8445</httpsPort>
<xmppPort>5222</xmppPort><xmppSecurePort>5223</xmppSecurePort></primaryNode><secondaryNode><host>finesse-b.example.com</host>
</secondaryNode><status>IN_SERVICE</status><systemAuthMode>NON_SSO</systemAuthMode>
<xmppDomain>finesse-a.example.com</xmppDomain><xmppPubSubDomain>pubsub.finesse-a.example.com</xmppPubSubDomain></SystemInfo>"""


def api_errors(error_type: str, message: str = "refused") -> bytes:
    return (
        f"<ApiErrors><ApiError><ErrorData>x</ErrorData><ErrorMessage>{message}</ErrorMessage>"
        f"<ErrorType>{error_type}</ErrorType></ApiError></ApiErrors>"
    ).encode()


def config(**overrides: object) -> FinesseConfig:
    base: dict[str, object] = {
        "publisher": PUB,
        "subscriber": SUB,
        "admin_user": "fadmin",
        "admin_password": ADMIN_PASSWORD,
    }
    base.update(overrides)
    return FinesseConfig(**base)  # type: ignore[arg-type]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def mocked() -> responses.RequestsMock:
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def client() -> FinesseClient:
    return FinesseClient(config(), credentials={"1001001": ("1001001", AGENT_PASSWORD)}.get)


# -- each call -----------------------------------------------------------------------------------


def test_get_user_reads_every_field_as_the_agent(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(f"{API}/User/1001001", body=USER_XML, content_type="application/xml")
    user = client.get_user("1001001")
    assert (user.id, user.login_name, user.first_name, user.last_name) == ("1001001", "aagent", "Ada", "Agent")
    assert (user.extension, user.team_id, user.team_name) == ("1001001", "5000", "Support")
    assert (user.state, user.reason_code_id, user.pending_state) == ("NOT_READY", "16", None)
    assert user.roles == ("Agent", "Supervisor")
    assert user.reason_label == "Team Meeting"
    request = mocked.calls[0].request
    assert request.headers["Authorization"] == basic("1001001", AGENT_PASSWORD)
    assert request.headers["Accept"] == "application/xml"
    assert "Content-Type" not in request.headers
    assert "requestId" not in request.headers


def test_agent_without_credentials_falls_back_to_admin(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(f"{API}/User/1001002", body=USER_XML.replace(b"1001001", b"1001002"))
    assert client.get_user("1001002").id == "1001002"
    assert mocked.calls[0].request.headers["Authorization"] == basic("fadmin", ADMIN_PASSWORD)


def test_users_lists_with_admin_credentials_any_case(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    second = USER_XML.replace(b"1001001", b"1001002").replace(b"<User>", b"<user>").replace(b"</User>", b"</user>")
    mocked.get(f"{API}/Users", body=b"<Users>" + USER_XML + second + b"</Users>")
    assert [u.id for u in client.users()] == ["1001001", "1001002"]
    assert mocked.calls[0].request.headers["Authorization"] == basic("fadmin", ADMIN_PASSWORD)


def test_set_state_puts_xml_with_request_id(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.put(f"{API}/User/1001001", status=202)
    client.set_state("1001001", "NOT_READY", reason_code_id="16", request_id="cc-1001001-3")
    request = mocked.calls[0].request
    assert request.headers["Content-Type"] == "application/xml"
    assert request.headers["requestId"] == "cc-1001001-3"
    assert request.headers["Authorization"] == basic("1001001", AGENT_PASSWORD)
    body = fromstring(request.body)
    assert body.tag == "User"
    assert {c.tag: c.text for c in body} == {"state": "NOT_READY", "reasonCodeId": "16"}


def test_set_state_without_request_id_or_reason(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.put(f"{API}/User/1001001", status=202)
    client.set_state("1001001", "READY")
    request = mocked.calls[0].request
    assert "requestId" not in request.headers
    assert {c.tag: c.text for c in fromstring(request.body)} == {"state": "READY"}


def test_login_carries_the_extension(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.put(f"{API}/User/1001001", status=202)
    client.set_state("1001001", "LOGIN", extension="1001001")
    assert {c.tag: c.text for c in fromstring(mocked.calls[0].request.body)} == {
        "state": "LOGIN",
        "extension": "1001001",
    }


def test_set_state_escapes_values(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.put(f"{API}/User/1001001", status=202)
    client.set_state("1001001", "NOT_READY", reason_code_id="<16>&")
    assert fromstring(mocked.calls[0].request.body).findtext("reasonCodeId") == "<16>&"


def test_agent_ids_are_path_escaped(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(f"{API}/User/a%2Fb", body=USER_XML)
    client.get_user("a/b")
    assert mocked.calls[0].request.path_url == "/finesse/api/User/a%2Fb"


def test_reason_codes_by_category(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    body = (
        b"<ReasonCodes><ReasonCode><category>LOGOUT</category><uri>/finesse/api/ReasonCode/22</uri><code>5</code>"
        b"<label>End of shift</label><forAll>false</forAll><systemCode>false</systemCode></ReasonCode></ReasonCodes>"
    )
    mocked.get(f"{API}/User/1001001/ReasonCodes?category=LOGOUT", body=body)
    [rc] = client.reason_codes("1001001", "LOGOUT")
    assert (rc.id, rc.code, rc.label, rc.category, rc.for_all) == ("22", "5", "End of shift", "LOGOUT", False)
    assert mocked.calls[0].request.params == {"category": "LOGOUT"}


def test_dialogs(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(f"{API}/User/1001001/Dialogs", body=DIALOGS_XML)
    [dialog] = client.dialogs("1001001")
    assert (dialog.id, dialog.call_type, dialog.state) == ("12345678", "CONSULT", "ACTIVE")
    assert dialog.associated_dialog_id == "321654"
    assert dialog.state_for("1001001") == "ACTIVE"
    assert dialog.participant("1001001").actions == ("HOLD", "DROP")  # type: ignore[union-attr]
    assert dialog.participant("9999") is None


def test_single_dialog(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    single = DIALOGS_XML.removeprefix(b"<Dialogs>").removesuffix(b"</Dialogs>")
    mocked.get(f"{API}/Dialog/12345678", body=single)
    dialog = client.dialog("12345678", agent_id="1001001")
    assert (dialog.id, dialog.call_type, len(dialog.participants)) == ("12345678", "CONSULT", 2)
    assert mocked.calls[0].request.headers["Authorization"] == basic("1001001", AGENT_PASSWORD)


def test_no_dialogs(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(f"{API}/User/1001001/Dialogs", body=b"<Dialogs/>")
    assert client.dialogs("1001001") == []


def test_system_info_of_a_given_node(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(f"{SUB}/finesse/api/SystemInfo", body=SYSTEM_INFO_XML)
    info = client.system_info(SUB)
    assert info.in_service and info.deployment_type == "UCCE"
    assert (info.xmpp_domain, info.xmpp_pubsub_domain) == ("finesse-a.example.com", "pubsub.finesse-a.example.com")
    assert info.primary_node is not None and info.primary_node.xmpp_port == 5222
    assert info.secondary_node is not None and info.secondary_node.host == "finesse-b.example.com"
    assert mocked.calls[0].request.req_kwargs["timeout"] == client.probe_timeout


def test_media_get_and_put(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(
        f"{API}/User/1001001/Media/5000",
        body=b"<Media><id>5000</id><name>Chat</name><state>READY</state><maxDialogLimit>5</maxDialogLimit>"
        b"<interruptible>true</interruptible><routable>true</routable></Media>",
    )
    mocked.put(f"{API}/User/1001001/Media/5000", status=202)
    media = client.media("1001001", "5000")
    assert (media.mrd_id, media.state, media.max_dialog_limit, media.interruptible) == ("5000", "READY", 5, True)
    client.set_media_state("1001001", "5000", "NOT_READY", reason_code_id="16", request_id="m-1")
    request = mocked.calls[1].request
    assert request.headers["Content-Type"] == "application/xml"
    assert request.headers["requestId"] == "m-1"
    body = fromstring(request.body)
    assert body.tag == "Media"
    assert {c.tag: c.text for c in body} == {"state": "NOT_READY", "reasonCodeId": "16"}


# -- each error ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (400, "Invalid State", InvalidState),
        (400, "Invalid Input", InvalidInput),
        (400, "Parameter Missing", InvalidInput),
        (400, "Bad Request", InvalidInput),
        (401, "Authorization Failure", AuthorizationError),
        (401, "Invalid State", AuthorizationError),  # 401 wins: a supervisor asking for NOT_READY
        (404, "Not Found", NotFound),
        (503, "Service Unavailable", FinesseUnavailable),
    ],
)
def test_api_errors_become_typed_errors(
    mocked: responses.RequestsMock, client: FinesseClient, status: int, error_type: str, expected: type
) -> None:
    mocked.put(f"{API}/User/1001001", status=status, body=api_errors(error_type, "CTI says no"))
    with pytest.raises(expected) as caught:
        client.set_state("1001001", "LOGOUT")
    assert type(caught.value) is expected
    assert (caught.value.status, caught.value.error_type, caught.value.message) == (status, error_type, "CTI says no")
    assert caught.value.data == "x"


def test_server_error_is_the_base_error(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(f"{API}/User/1001001", status=500, body=api_errors("Internal Server Error", "DB_RUNTIME_EXCEPTION"))
    with pytest.raises(FinesseError) as caught:
        client.get_user("1001001")
    assert type(caught.value) is FinesseError
    assert caught.value.status == 500 and caught.value.message == "DB_RUNTIME_EXCEPTION"


def test_error_without_api_errors_body_is_typed_by_status(
    mocked: responses.RequestsMock, client: FinesseClient
) -> None:
    mocked.get(f"{API}/User/1001001", status=503, body=b"<html>Service Temporarily Unavailable</html")
    with pytest.raises(FinesseUnavailable) as caught:
        client.get_user("1001001")
    assert caught.value.status == 503


def test_connection_refused_and_timeout_are_unavailable(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(f"{API}/User/1001001", body=requests.ConnectionError("refused"))
    mocked.get(f"{API}/User/1001002", body=requests.ReadTimeout("slow"))
    with pytest.raises(FinesseUnavailable) as refused:
        client.get_user("1001001")
    with pytest.raises(FinesseUnavailable) as slow:
        client.get_user("1001002")
    assert (refused.value.status, refused.value.error_type) == (None, "Connection")
    assert (slow.value.status, slow.value.error_type) == (None, "Timeout")


def test_success_body_that_is_not_xml(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(f"{API}/User/1001001", body=b"<User><state>READY</state>")
    with pytest.raises(FinesseError, match="not XML"):
        client.get_user("1001001")


def test_entity_expansion_in_an_answer_is_refused(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    bomb = b'<!DOCTYPE u [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><User><state>&b;</state></User>'
    mocked.get(f"{API}/User/1001001", body=bomb)
    with pytest.raises(FinesseError) as caught:
        client.get_user("1001001")
    assert caught.value.error_type == "Malformed Response"


def test_halted_cluster_makes_no_request(mocked: responses.RequestsMock) -> None:
    class Halted:
        def active_node(self) -> str:
            raise FinesseUnavailable("both nodes down", error_type="Halted")

    client = FinesseClient(config(), nodes=Halted())
    with pytest.raises(FinesseUnavailable):
        client.set_state("1001001", "READY")
    assert len(mocked.calls) == 0


def test_calls_go_to_the_active_node(mocked: responses.RequestsMock) -> None:
    class Subscriber:
        def active_node(self) -> str:
            return SUB

    mocked.get(f"{SUB}/finesse/api/User/1001001", body=USER_XML)
    FinesseClient(config(), nodes=Subscriber()).get_user("1001001")
    assert mocked.calls[0].request.url.startswith(SUB)


# -- TLS, timeouts, logging ----------------------------------------------------------------------


def test_tls_is_verified_by_default_with_timeouts(mocked: responses.RequestsMock, client: FinesseClient) -> None:
    mocked.get(f"{API}/User/1001001", body=USER_XML)
    client.get_user("1001001")
    kwargs = mocked.calls[0].request.req_kwargs
    # True, or the system bundle requests takes from REQUESTS_CA_BUNDLE: verified either way
    assert kwargs["verify"] is True or kwargs["verify"] == os.environ.get("REQUESTS_CA_BUNDLE")
    assert kwargs["timeout"] == client.timeout


def test_ca_bundle_is_used_for_verification(mocked: responses.RequestsMock) -> None:
    mocked.get(f"{API}/User/1001001", body=USER_XML)
    # even with REQUESTS_CA_BUNDLE set in the environment (a Session's verify would lose to it)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
        FinesseClient(config(ca_bundle="/etc/ssl/finesse-ca.pem")).get_user("1001001")
    assert mocked.calls[0].request.req_kwargs["verify"] == "/etc/ssl/finesse-ca.pem"


def test_verify_tls_false_is_explicit_and_warned_once(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.get(f"{API}/User/1001001", body=USER_XML)
    with (
        caplog.at_level(logging.WARNING, logger="connector.blending.finesse.client"),
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
        client = FinesseClient(config(verify_tls=False))
        for _ in range(3):
            client.get_user("1001001")
    assert mocked.calls[0].request.req_kwargs["verify"] is False
    warnings = [r for r in caplog.records if "NOT verified" in r.getMessage()]
    assert len(warnings) == 1


def test_plain_http_node_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="connector.blending.finesse.client"):
        FinesseClient(config(publisher="http://finesse-lab:8082", subscriber=None))
    assert "plain http" in caplog.text


def test_passwords_never_reach_the_logs(
    mocked: responses.RequestsMock, client: FinesseClient, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.get(f"{API}/User/1001001", body=USER_XML)
    mocked.put(f"{API}/User/1001001", status=400, body=api_errors("Invalid State"))
    with caplog.at_level(logging.DEBUG):
        client.get_user("1001001")
        with pytest.raises(InvalidState):
            client.set_state("1001001", "LOGOUT", request_id="r-9")
    logged = caplog.text + logged_text(caplog.records)
    assert "r-9" in logged  # the trace is there ...
    for secret in (ADMIN_PASSWORD, AGENT_PASSWORD, base64.b64encode(f"1001001:{AGENT_PASSWORD}".encode()).decode()):
        assert secret not in logged  # ... without the secrets
