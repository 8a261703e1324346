"""The Finesse simulator follows the protocol (docs/protocols/finesse.md, "The Finesse simulator"): answers,
ApiErrors, authorization, transition rules, node status, scripted calls and their notifications,
and the control API, and the XMPP service's STARTTLS. Talks plain HTTP with `requests` and raw
sockets, not through the connector's client."""

from __future__ import annotations

import base64
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from xml.etree.ElementTree import Element

import pytest
import requests
from cryptography import x509
from defusedxml.ElementTree import fromstring

from connector.sandbox.finesse import FinesseSandbox
from tests.blending.finesse_helpers import (
    ADMIN,
    AGENT,
    AGENT_PASSWORD,
    BREAK_REASON,
    CHAT_MRD,
    CHAT_REASON,
    LOGOUT_REASON,
    OTHER,
    SUPERVISOR,
    SUPERVISOR_PASSWORD,
    provision,
    running_sandbox,
)

XML = {"Content-Type": "application/xml"}
ME = (AGENT, AGENT_PASSWORD)
TIMEOUT = 5


@pytest.fixture
def sandbox() -> Iterator[FinesseSandbox]:
    with running_sandbox() as sb:
        provision(sb)
        yield sb


def get(sb: FinesseSandbox, path: str, auth: tuple[str, str] | None = ME, node: str = "publisher") -> requests.Response:
    return requests.get(f"{sb.nodes[node].url}/finesse/api{path}", auth=auth, timeout=TIMEOUT)


def put(
    sb: FinesseSandbox,
    path: str,
    body: str,
    auth: tuple[str, str] = ME,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    return requests.put(
        f"{sb.publisher_url}/finesse/api{path}", data=body, auth=auth, headers=headers or XML, timeout=TIMEOUT
    )


def api_error(response: requests.Response) -> tuple[int, str]:
    root = fromstring(response.content)
    assert root.tag == "ApiErrors"
    assert response.headers["Content-Type"].startswith("application/xml")
    return response.status_code, root.findtext("ApiError/ErrorType") or ""


def user_state(sb: FinesseSandbox, agent: str = AGENT) -> tuple[str, str | None]:
    a = sb.model.agents[agent]
    return a.state, a.reason_code_id


def updates(sb: FinesseSandbox, node: str) -> list[Element]:
    return [fromstring(xml) for n, xml in sb.model.notifications if n == node]


def state_body(state: str, reason: str | None = None, extension: str | None = None) -> str:
    extra = (f"<reasonCodeId>{reason}</reasonCodeId>" if reason else "") + (
        f"<extension>{extension}</extension>" if extension else ""
    )
    return f"<User><state>{state}</state>{extra}</User>"


# -- SystemInfo and node status -------------------------------------------------------------------


def test_system_info_describes_the_cluster(sandbox: FinesseSandbox) -> None:
    response = get(sandbox, "/SystemInfo", auth=None)
    assert response.status_code == 200
    info = fromstring(response.content)
    assert info.findtext("status") == "IN_SERVICE"
    assert info.findtext("deploymentType") == "UCCE"
    assert info.findtext("xmppDomain") == sandbox.xmpp_domain
    assert info.findtext("xmppPubSubDomain") == f"pubsub.{sandbox.xmpp_domain}"
    assert info.findtext("primaryNode/httpsPort") == str(sandbox.nodes["publisher"].port)
    assert info.findtext("secondaryNode/httpsPort") == str(sandbox.nodes["subscriber"].port)
    assert info.findtext("primaryNode/xmppPort") == str(sandbox.xmpp_port)


def test_out_of_service_node_answers_503_except_system_info(sandbox: FinesseSandbox) -> None:
    sandbox.node_down("publisher", "out_of_service")
    assert fromstring(get(sandbox, "/SystemInfo").content).findtext("status") == "OUT_OF_SERVICE"
    assert api_error(get(sandbox, f"/User/{AGENT}")) == (503, "Service Unavailable")
    assert api_error(put(sandbox, f"/User/{AGENT}", state_body("NOT_READY", CHAT_REASON))) == (
        503,
        "Service Unavailable",
    )
    assert user_state(sandbox) == ("READY", None)
    assert get(sandbox, f"/User/{AGENT}", node="subscriber").status_code == 200  # the other node serves
    sandbox.node_up("publisher")
    assert get(sandbox, f"/User/{AGENT}").status_code == 200


def test_refused_node_closes_its_port_and_comes_back_on_it(sandbox: FinesseSandbox) -> None:
    port = sandbox.nodes["publisher"].port
    sandbox.node_down("publisher", "refused")
    with pytest.raises(requests.ConnectionError):
        get(sandbox, "/SystemInfo")
    sandbox.node_up("publisher")
    assert sandbox.nodes["publisher"].port == port
    assert get(sandbox, "/SystemInfo").status_code == 200


def test_both_nodes_share_one_model(sandbox: FinesseSandbox) -> None:
    assert put(sandbox, f"/User/{AGENT}", state_body("NOT_READY", CHAT_REASON)).status_code == 202
    seen = fromstring(get(sandbox, f"/User/{AGENT}", node="subscriber").content)
    assert seen.findtext("state") == "NOT_READY"


# -- authorization ------------------------------------------------------------------------------


def test_wrong_password_is_401(sandbox: FinesseSandbox) -> None:
    assert api_error(get(sandbox, f"/User/{AGENT}", auth=(AGENT, "wrong"))) == (401, "Authorization Failure")
    assert api_error(get(sandbox, f"/User/{AGENT}", auth=None)) == (401, "Authorization Failure")


def test_users_is_admin_only(sandbox: FinesseSandbox) -> None:
    assert api_error(get(sandbox, "/Users")) == (401, "Authorization Failure")
    response = get(sandbox, "/Users", auth=ADMIN)
    assert response.status_code == 200
    assert sorted(u.findtext("loginId") for u in fromstring(response.content)) == [AGENT, OTHER, SUPERVISOR]


def test_agent_may_not_read_another_agent(sandbox: FinesseSandbox) -> None:
    assert api_error(get(sandbox, f"/User/{OTHER}")) == (401, "Invalid Authorization User Specified")
    assert api_error(get(sandbox, f"/User/{OTHER}/Dialogs")) == (401, "Invalid Authorization User Specified")


def test_login_name_works_as_basic_user(sandbox: FinesseSandbox) -> None:
    sandbox.model.agents[AGENT].login_name = "aagent"
    assert get(sandbox, f"/User/{AGENT}", auth=("aagent", AGENT_PASSWORD)).status_code == 200


def test_supervisor_reads_own_team_and_sets_only_ready_or_logout(sandbox: FinesseSandbox) -> None:
    boss = (SUPERVISOR, SUPERVISOR_PASSWORD)
    assert get(sandbox, f"/User/{AGENT}", auth=boss).status_code == 200
    assert api_error(get(sandbox, f"/User/{OTHER}", auth=boss))[0] == 401  # other team
    assert api_error(put(sandbox, f"/User/{AGENT}", state_body("NOT_READY", CHAT_REASON), auth=boss)) == (
        401,
        "Invalid State",
    )


def test_unknown_user_is_404(sandbox: FinesseSandbox) -> None:
    assert api_error(get(sandbox, "/User/9999", auth=ADMIN)) == (404, "Not Found")
    assert api_error(put(sandbox, "/User/9999", state_body("READY"), auth=ADMIN)) == (404, "Not Found")
    assert api_error(get(sandbox, "/Nothing/here", auth=ADMIN)) == (404, "Not Found")


# -- PUT User: body and transition rules ----------------------------------------------------------


def test_put_needs_application_xml(sandbox: FinesseSandbox) -> None:
    response = put(
        sandbox, f"/User/{AGENT}", state_body("NOT_READY", CHAT_REASON), headers={"Content-Type": "text/plain"}
    )
    assert api_error(response) == (415, "Unsupported Media Type")
    assert user_state(sandbox) == ("READY", None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<User><state>NOT_READY</state>", (400, "Bad Request")),
        ("<Dialog><state>READY</state></Dialog>", (400, "Invalid Input")),
        ("<user><state>READY</state></user>", (400, "Invalid Input")),  # REST bodies are exact
        ("<User><reasonCodeId>12</reasonCodeId></User>", (400, "Parameter Missing")),
        ("<User><state>SLEEPING</state></User>", (400, "Invalid Input")),
        ("<User><state>NOT_READY</state></User>", (400, "Parameter Missing")),
        ("<User><state>NOT_READY</state><reasonCodeId>999</reasonCodeId></User>", (400, "Invalid Input")),
        (f"<User><state>NOT_READY</state><reasonCodeId>{LOGOUT_REASON}</reasonCodeId></User>", (400, "Invalid Input")),
        ("<User><state>NOT_READY</state><reasonCodeId>32767</reasonCodeId></User>", (400, "Invalid Input")),
        ("<User><state>LOGOUT</state></User>", (400, "Invalid State")),  # only from NOT_READY
        ("<User><state>TALKING</state></User>", (400, "Invalid State")),  # system-driven
        ("<User><state>LOGIN</state><extension>1001</extension></User>", (400, "Invalid State")),
        ('<!DOCTYPE u [<!ENTITY a "READY">]><User><state>&a;</state></User>', (400, "Bad Request")),
    ],
)
def test_put_user_refusals(sandbox: FinesseSandbox, body: str, expected: tuple[int, str]) -> None:
    assert api_error(put(sandbox, f"/User/{AGENT}", body)) == expected
    assert user_state(sandbox) == ("READY", None)


def test_put_user_202_then_notification_with_request_id(sandbox: FinesseSandbox) -> None:
    response = put(
        sandbox, f"/User/{AGENT}", state_body("NOT_READY", CHAT_REASON), headers={**XML, "requestId": "req-1"}
    )
    assert response.status_code == 202 and response.content == b""
    [update] = updates(sandbox, f"/finesse/api/User/{AGENT}")
    assert (update.findtext("event"), update.findtext("requestId")) == ("PUT", "req-1")
    assert update.findtext("source") == f"/finesse/api/User/{AGENT}"
    assert update.find("data/user/state") is not None  # notification payloads are lower-case
    assert update.findtext("data/user/state") == "NOT_READY"
    assert update.findtext("data/user/ReasonCode/label") == "Handling Chat"


def test_login_logout_cycle(sandbox: FinesseSandbox) -> None:
    sandbox.model.agents[AGENT].state = "LOGOUT"
    assert api_error(put(sandbox, f"/User/{AGENT}", state_body("LOGIN"))) == (400, "Parameter Missing")
    assert api_error(put(sandbox, f"/User/{AGENT}", state_body("READY"))) == (400, "Invalid State")
    assert put(sandbox, f"/User/{AGENT}", state_body("LOGIN", extension="1001")).status_code == 202
    assert user_state(sandbox) == ("NOT_READY", None)  # LOGIN is transient
    assert sandbox.model.agents[AGENT].media[CHAT_MRD].state == "NOT_READY"  # MRDs log in too
    assert put(sandbox, f"/User/{AGENT}", state_body("NOT_READY", BREAK_REASON)).status_code == 202
    assert put(sandbox, f"/User/{AGENT}", state_body("NOT_READY", CHAT_REASON)).status_code == 202  # other reason
    assert put(sandbox, f"/User/{AGENT}", state_body("LOGOUT", LOGOUT_REASON)).status_code == 202
    assert user_state(sandbox) == ("LOGOUT", LOGOUT_REASON)


def test_request_during_a_call_becomes_the_pending_state(sandbox: FinesseSandbox) -> None:
    dialog = sandbox.switch.start_call(AGENT, "ACD_IN")
    sandbox.switch.answer(dialog.id)
    assert put(sandbox, f"/User/{AGENT}", state_body("NOT_READY", CHAT_REASON)).status_code == 202
    user = fromstring(get(sandbox, f"/User/{AGENT}").content)
    assert (user.findtext("state"), user.findtext("pendingState")) == ("TALKING", "NOT_READY")
    sandbox.switch.end(dialog.id)
    assert user_state(sandbox) == ("NOT_READY", CHAT_REASON)
    assert sandbox.model.agents[AGENT].pending_state is None


def test_injected_refusal_is_async_with_the_request_id(sandbox: FinesseSandbox) -> None:
    sandbox.model.refuse_next(AGENT, "Invalid State", "CF_INVALID_AGENT_STATE_TRANSITION", "13120")
    response = put(
        sandbox, f"/User/{AGENT}", state_body("NOT_READY", CHAT_REASON), headers={**XML, "requestId": "req-2"}
    )
    assert response.status_code == 202
    assert user_state(sandbox) == ("READY", None)
    [update] = updates(sandbox, f"/finesse/api/User/{AGENT}")
    assert update.findtext("requestId") == "req-2"
    assert update.findtext("data/apiErrors/apiError/errorType") == "Invalid State"
    assert update.findtext("data/apiErrors/apiError/errorData") == "13120"
    # only the next request was refused
    assert put(sandbox, f"/User/{AGENT}", state_body("NOT_READY", CHAT_REASON)).status_code == 202
    assert user_state(sandbox) == ("NOT_READY", CHAT_REASON)


# -- reason codes, dialogs, media -----------------------------------------------------------------


def test_reason_codes_by_category_without_system_codes(sandbox: FinesseSandbox) -> None:
    listed = fromstring(get(sandbox, f"/User/{AGENT}/ReasonCodes?category=NOT_READY").content)
    assert sorted((rc.findtext("id"), rc.findtext("label")) for rc in listed) == [
        (CHAT_REASON, "Handling Chat"),
        (BREAK_REASON, "Break"),
    ]
    logout = fromstring(get(sandbox, f"/User/{AGENT}/ReasonCodes?category=LOGOUT").content)
    assert [rc.findtext("code") for rc in logout] == ["5"]
    assert api_error(get(sandbox, f"/User/{AGENT}/ReasonCodes")) == (400, "Parameter Missing")
    assert fromstring(get(sandbox, f"/User/{AGENT}/ReasonCode/{CHAT_REASON}").content).findtext("code") == "10"
    assert api_error(get(sandbox, f"/User/{AGENT}/ReasonCode/32767"))[0] == 404
    everything = fromstring(get(sandbox, "/ReasonCodes?category=ALL", auth=ADMIN).content)
    assert len(everything) == 3


def test_dialogs_and_dialog(sandbox: FinesseSandbox) -> None:
    assert len(fromstring(get(sandbox, f"/User/{AGENT}/Dialogs").content)) == 0
    dialog = sandbox.switch.start_call(AGENT, "PREROUTE_ACD_IN", from_address="+14085550123")
    [listed] = fromstring(get(sandbox, f"/User/{AGENT}/Dialogs").content)
    assert listed.tag == "Dialog"
    assert listed.findtext("mediaProperties/callType") == "PREROUTE_ACD_IN"
    assert listed.findtext("fromAddress") == "+14085550123"
    single = fromstring(get(sandbox, f"/Dialog/{dialog.id}").content)
    assert single.findtext("id") == dialog.id
    participants = {p.findtext("mediaAddress"): p.findtext("state") for p in single.find("participants") or []}
    assert participants == {"+14085550123": "ACTIVE", AGENT: "ALERTING"}
    assert api_error(get(sandbox, f"/Dialog/{dialog.id}", auth=(OTHER, "agent-1002-pw")))[0] == 401
    assert api_error(get(sandbox, "/Dialog/424242"))[0] == 404


def test_dialog_actions_answer_hold_retrieve_drop(sandbox: FinesseSandbox) -> None:
    dialog = sandbox.switch.start_call(AGENT, "OTHER_IN")

    def act(action: str, target: str = AGENT) -> requests.Response:
        body = (
            f"<Dialog><requestedAction>{action}</requestedAction>"
            f"<targetMediaAddress>{target}</targetMediaAddress></Dialog>"
        )
        return put(sandbox, f"/Dialog/{dialog.id}", body)

    assert api_error(act("HOLD")) == (400, "Invalid State")  # ringing: only ANSWER
    assert api_error(act("ANSWER", "1999")) == (400, "Invalid Input")
    assert act("ANSWER").status_code == 202
    assert user_state(sandbox)[0] == "TALKING"
    assert act("HOLD").status_code == 202
    assert user_state(sandbox)[0] == "HOLD"
    assert act("RETRIEVE").status_code == 202
    assert act("DROP").status_code == 202
    assert user_state(sandbox) == ("READY", None)
    assert sandbox.model.dialogs == {}


def test_media_get_and_put(sandbox: FinesseSandbox) -> None:
    path = f"/User/{AGENT}/Media/{CHAT_MRD}"
    assert fromstring(get(sandbox, path).content).findtext("state") == "READY", "a READY agent's MRD starts READY"
    sandbox.model.agents[AGENT].media[CHAT_MRD].state = "LOGOUT"
    assert fromstring(get(sandbox, path).content).findtext("state") == "LOGOUT"
    assert api_error(put(sandbox, path, "<Media><state>READY</state></Media>")) == (400, "Invalid State")
    assert put(sandbox, path, "<Media><state>LOGIN</state></Media>").status_code == 202
    body = f"<Media><state>NOT_READY</state><reasonCodeId>{CHAT_REASON}</reasonCodeId></Media>"
    assert put(sandbox, path, body, headers={**XML, "requestId": "m-1"}).status_code == 202
    media = fromstring(get(sandbox, path).content)
    assert (media.findtext("state"), media.findtext("reasonCodeId")) == ("NOT_READY", CHAT_REASON)
    assert put(sandbox, path, "<Media><state>READY</state></Media>").status_code == 202
    assert fromstring(get(sandbox, path).content).findtext("routable") == "true"
    assert api_error(get(sandbox, f"/User/{AGENT}/Media/9"))[0] == 404
    # Media updates go out on the User's Media node, from the MRD's own source (Cisco's Media notification).
    found = updates(sandbox, f"/finesse/api/User/{AGENT}/Media")
    assert {u.findtext("source") for u in found} == {f"/finesse/api{path}"}
    assert [u.findtext("requestId") or None for u in found] == [None, "m-1", None]


def test_media_list_gives_the_agents_mrds_and_every_agent_has_the_chat_mrd(sandbox: FinesseSandbox) -> None:
    listed = fromstring(get(sandbox, f"/User/{AGENT}/Media").content)
    assert listed.tag == "MediaList"
    assert [(m.findtext("id"), m.findtext("name"), m.findtext("state")) for m in listed] == [
        (CHAT_MRD, "Chat", "READY")
    ]
    sandbox.model.add_agent("1500", "pw-1500", extension="1500", state="NOT_READY", reason_code_id=BREAK_REASON)
    listed = fromstring(get(sandbox, "/User/1500/Media", auth=ADMIN).content)
    assert [(m.findtext("id"), m.findtext("name"), m.findtext("state")) for m in listed] == [("2", "Chat", "NOT_READY")]
    assert api_error(get(sandbox, f"/User/{OTHER}/Media"))[0] == 401, "an agent lists only their own"


def media_states(sb: FinesseSandbox) -> list[tuple[str, str | None]]:
    """(state, requestId) of the agent's Media updates, in order."""
    return [
        (u.findtext("data/media/state") or "", u.findtext("requestId") or None)
        for u in updates(sb, f"/finesse/api/User/{AGENT}/Media")
    ]


def test_a_voice_call_interrupts_a_ready_mrd_and_its_end_restores_it(sandbox: FinesseSandbox) -> None:
    dialog = sandbox.switch.start_call(AGENT, "ACD_IN")
    assert sandbox.model.agents[AGENT].media[CHAT_MRD].state == "INTERRUPTED"
    sandbox.switch.answer(dialog.id)
    sandbox.switch.end(dialog.id)
    assert sandbox.model.agents[AGENT].media[CHAT_MRD].state == "READY"
    assert media_states(sandbox) == [("INTERRUPTED", None), ("READY", None)]


def test_a_change_during_the_call_outlasts_it_and_a_not_ready_mrd_is_not_interrupted(sandbox: FinesseSandbox) -> None:
    path = f"/User/{AGENT}/Media/{CHAT_MRD}"
    dialog = sandbox.switch.start_call(AGENT, "OTHER_IN")
    body = f"<Media><state>NOT_READY</state><reasonCodeId>{CHAT_REASON}</reasonCodeId></Media>"
    assert put(sandbox, path, body, headers={**XML, "requestId": "cc-1"}).status_code == 202
    sandbox.switch.end(dialog.id)
    media = sandbox.model.agents[AGENT].media[CHAT_MRD]
    assert (media.state, media.reason_code_id) == ("NOT_READY", CHAT_REASON), "the PUT during the call stands"
    sandbox.switch.end(sandbox.switch.start_call(AGENT, "OTHER_IN").id)
    assert media_states(sandbox) == [("INTERRUPTED", None), ("NOT_READY", "cc-1")], "NOT_READY: not interrupted"


# -- scripted calls -------------------------------------------------------------------------------


def dialog_events(sb: FinesseSandbox, agent: str = AGENT) -> list[tuple[str, str | None, str | None]]:
    """(event, callType, agent participant state) of the agent's Dialogs node, in order."""
    found = []
    for update in updates(sb, f"/finesse/api/User/{agent}/Dialogs"):
        for dialog in update.iter():
            if dialog.tag.lower() == "dialog":
                mine = [p for p in dialog.iter("Participant") if p.findtext("mediaAddress") == agent]
                found.append(
                    (
                        update.findtext("event") or "",
                        dialog.findtext("mediaProperties/callType"),
                        mine[0].findtext("state") if mine else None,
                    )
                )
    return found


def user_states(sb: FinesseSandbox, agent: str = AGENT) -> list[str]:
    return [u.findtext("data/user/state") or "" for u in updates(sb, f"/finesse/api/User/{agent}")]


@pytest.mark.parametrize("call_type", ["ACD_IN", "PREROUTE_ACD_IN"])
def test_routed_call_reserved_talking_wrapup_ready(sandbox: FinesseSandbox, call_type: str) -> None:
    switch = sandbox.switch
    dialog = switch.start_call(AGENT, call_type)
    switch.answer(dialog.id)
    switch.end(dialog.id, wrapup="WORK_READY")
    sandbox.model.end_wrapup(AGENT)
    assert user_states(sandbox) == ["RESERVED", "TALKING", "WORK_READY", "READY"]
    assert dialog_events(sandbox) == [
        ("POST", call_type, "ALERTING"),
        ("PUT", call_type, "ACTIVE"),
        ("PUT", call_type, "DROPPED"),
        ("DELETE", call_type, "DROPPED"),
    ]


def test_work_wrapup_times_out_to_not_ready(sandbox: FinesseSandbox) -> None:
    dialog = sandbox.switch.start_call(AGENT, "ACD_IN")
    sandbox.switch.answer(dialog.id)
    sandbox.switch.end(dialog.id, wrapup="WORK")
    sandbox.model.end_wrapup(AGENT)
    assert user_states(sandbox)[-2:] == ["WORK", "NOT_READY"]


def test_routed_call_needs_a_ready_agent(sandbox: FinesseSandbox) -> None:
    sandbox.model.agents[AGENT].state = "NOT_READY"
    with pytest.raises(Exception, match="needs READY"):
        sandbox.switch.start_call(AGENT, "ACD_IN")


def test_rona_drops_the_offer_and_sets_not_ready_with_system_reason(sandbox: FinesseSandbox) -> None:
    dialog = sandbox.switch.start_call(AGENT, "PREROUTE_ACD_IN")
    sandbox.switch.rona(dialog.id)
    assert user_states(sandbox) == ["RESERVED", "NOT_READY"]
    assert user_state(sandbox) == ("NOT_READY", sandbox.model.rona_reason.id)
    assert dialog_events(sandbox)[-2:] == [
        ("PUT", "PREROUTE_ACD_IN", "DROPPED"),
        ("DELETE", "PREROUTE_ACD_IN", "DROPPED"),
    ]


@pytest.mark.parametrize(
    "call_type", ["OTHER_IN", "PREROUTE_DIRECT_AGENT", "TRANSFER", "CONSULT_OFFERED", "CONFERENCE", "OFFERED"]
)
def test_non_routed_incoming_restores_the_previous_state(sandbox: FinesseSandbox, call_type: str) -> None:
    sandbox.model.agents[AGENT].state, sandbox.model.agents[AGENT].reason_code_id = "NOT_READY", BREAK_REASON
    dialog = sandbox.switch.start_call(AGENT, call_type)
    assert user_state(sandbox) == ("NOT_READY", BREAK_REASON)  # ringing leaves the state alone
    sandbox.switch.answer(dialog.id)
    sandbox.switch.end(dialog.id)
    assert user_states(sandbox) == ["TALKING", "NOT_READY"]
    assert user_state(sandbox) == ("NOT_READY", BREAK_REASON)
    assert [e[0] for e in dialog_events(sandbox)] == ["POST", "PUT", "PUT", "DELETE"]
    assert {e[1] for e in dialog_events(sandbox)} == {call_type}


@pytest.mark.parametrize("call_type", ["OUT", "AGENT_INSIDE"])
def test_agent_placed_call(sandbox: FinesseSandbox, call_type: str) -> None:
    sandbox.model.agents[AGENT].state, sandbox.model.agents[AGENT].reason_code_id = "NOT_READY", BREAK_REASON
    dialog = sandbox.switch.start_call(AGENT, call_type, to_address="1002")
    assert dialog_events(sandbox) == [("POST", call_type, "INITIATED")]
    sandbox.switch.answer(dialog.id)  # the far end answers
    sandbox.switch.end(dialog.id)
    assert user_states(sandbox) == ["TALKING", "NOT_READY"]
    assert dialog.to_address == "1002"


def test_consult_holds_the_original_call_and_links_it(sandbox: FinesseSandbox) -> None:
    switch = sandbox.switch
    original = switch.start_call(AGENT, "ACD_IN")
    switch.answer(original.id)
    consult = switch.start_call(AGENT, "CONSULT", to_address="1002")
    assert consult.associated_dialog_id == original.id
    assert original.agent_participant(AGENT).state == "HELD"
    switch.answer(consult.id)
    switch.end(consult.id)
    assert user_state(sandbox)[0] == "HOLD"  # UCCE: the remaining call is held
    switch.retrieve(original.id)
    switch.end(original.id)
    assert user_states(sandbox) == ["RESERVED", "TALKING", "HOLD", "TALKING", "READY"]
    consult_post = next(
        u
        for u in updates(sandbox, f"/finesse/api/User/{AGENT}/Dialogs")
        if u.findtext("event") == "POST" and u.findtext("data/dialogs/Dialog/mediaProperties/callType") == "CONSULT"
    )
    assert consult_post.findtext("data/dialogs/Dialog/associatedDialogUri") == f"/finesse/api/Dialog/{original.id}"


def test_consult_needs_an_active_call(sandbox: FinesseSandbox) -> None:
    with pytest.raises(Exception, match="no active call"):
        sandbox.switch.start_call(AGENT, "CONSULT")


def test_uccx_non_routed_call_shows_not_ready() -> None:
    with running_sandbox(deployment="UCCX") as sb:
        provision(sb)
        dialog = sb.switch.start_call(AGENT, "OTHER_IN")
        sb.switch.answer(dialog.id)
        assert user_state(sb)[0] == "NOT_READY"
        sb.switch.end(dialog.id)
        assert user_states(sb) == ["NOT_READY", "READY"]


def test_unknown_call_type_is_refused(sandbox: FinesseSandbox) -> None:
    with pytest.raises(Exception, match="unknown callType"):
        sandbox.switch.start_call(AGENT, "CARRIER_PIGEON")


# -- control API ----------------------------------------------------------------------------------


def test_control_api_drives_the_simulator(sandbox: FinesseSandbox) -> None:
    control = f"{sandbox.control_url}/control"
    created = requests.post(
        f"{control}/agents",
        json={
            "id": "3001",
            "password": "pw-3001",
            "extension": "3001",
            "state": "READY",
            "reason_codes": [{"id": "40", "category": "NOT_READY", "code": "40", "label": "Lunch"}],
        },
        timeout=TIMEOUT,
    )
    assert created.status_code == 201 and "password" not in created.json()
    call = requests.post(f"{control}/calls", json={"agent_id": "3001", "call_type": "ACD_IN"}, timeout=TIMEOUT)
    assert call.status_code == 201
    dialog_id = call.json()["id"]
    assert requests.post(f"{control}/calls/{dialog_id}/answer", timeout=TIMEOUT).status_code == 200
    assert requests.post(f"{control}/calls/{dialog_id}/end", json={"wrapup": "WORK"}, timeout=TIMEOUT).ok
    assert requests.post(f"{control}/agents/3001/wrapup_end", timeout=TIMEOUT).json()["state"] == "NOT_READY"
    assert requests.post(f"{control}/calls/{dialog_id}/answer", timeout=TIMEOUT).status_code == 404
    bad = requests.post(f"{control}/calls", json={"agent_id": "3001", "call_type": "ACD_IN"}, timeout=TIMEOUT)
    assert bad.status_code == 409 and bad.json()["error"] == "Invalid State"

    get(sandbox, "/User/3001", auth=("3001", "pw-3001"))
    received = requests.get(f"{control}/requests", params={"api_only": "1"}, timeout=TIMEOUT).json()["requests"]
    assert [(r["node"], r["method"], r["path"], r["user"], r["status"]) for r in received] == [
        ("publisher", "GET", "/finesse/api/User/3001", "3001", 200)
    ]
    assert requests.delete(f"{control}/requests", timeout=TIMEOUT).ok
    assert sandbox.model.requests == []

    assert requests.post(f"{control}/nodes/publisher/down", json={"mode": "out_of_service"}, timeout=TIMEOUT).ok
    assert get(sandbox, "/User/3001", auth=("3001", "pw-3001")).status_code == 503
    assert requests.post(f"{control}/nodes/publisher/down", json={"mode": "refused"}, timeout=TIMEOUT).ok
    assert requests.get(f"{control}/state", timeout=TIMEOUT).json()["nodes"]["publisher"]["reachable"] is False
    assert requests.post(f"{control}/nodes/publisher/up", timeout=TIMEOUT).ok
    assert get(sandbox, "/User/3001", auth=("3001", "pw-3001")).status_code == 200

    assert requests.post(
        f"{control}/agents/3001/api_error", json={"error_type": "Invalid State", "request_id": "r-7"}, timeout=TIMEOUT
    ).ok
    notes = requests.get(f"{control}/notifications", params={"node": "/finesse/api/User/3001"}, timeout=TIMEOUT)
    assert "<requestId>r-7</requestId>" in notes.json()["notifications"][-1]["update"]
    assert requests.post(f"{control}/nodes/nowhere/up", timeout=TIMEOUT).status_code == 404
    assert requests.post(f"{control}/agents", json={"id": "x"}, timeout=TIMEOUT).status_code == 400


def test_the_administrator_may_not_put_an_agent_not_ready_unless_configured() -> None:
    """[I] Finesse documents agents changing themselves and supervisors setting READY / LOGOUT only."""
    from connector.sandbox.finesse import start_finesse_sandbox
    from tests.blending.finesse_helpers import ADMIN, AGENT, CHAT_REASON, provision

    for allowed in (False, True):
        sandbox = start_finesse_sandbox(admin_may_change_states=allowed)
        try:
            provision(sandbox)
            answer = requests.put(
                f"{sandbox.publisher_url}/finesse/api/User/{AGENT}",
                data=f"<User><state>NOT_READY</state><reasonCodeId>{CHAT_REASON}</reasonCodeId></User>",
                headers={"Content-Type": "application/xml"},
                auth=ADMIN,
                timeout=5,
            )
            assert answer.status_code == (202 if allowed else 401)
            if not allowed:
                assert b"<ErrorType>Invalid State</ErrorType>" in answer.content
        finally:
            sandbox.stop()


# -- the XMPP notification service: STARTTLS (RFC 6120 §5) ------------------------------------------

STREAM_OPEN = (
    "<?xml version='1.0'?><stream:stream to='finesse.sandbox' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
)


def read_until(sock: socket.socket | ssl.SSLSocket, marker: str) -> str:
    received = b""
    sock.settimeout(TIMEOUT)
    while marker.encode() not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received.decode()


def plain_auth() -> str:
    payload = base64.b64encode(f"\x00{AGENT}\x00{AGENT_PASSWORD}".encode()).decode()
    return f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{payload}</auth>"


def test_xmpp_requires_starttls_before_sasl_and_refuses_auth_in_clear(sandbox: FinesseSandbox) -> None:
    with socket.create_connection((sandbox.xmpp_host, sandbox.xmpp_port), timeout=TIMEOUT) as sock:
        sock.sendall(STREAM_OPEN.encode())
        features = read_until(sock, "</stream:features>")
        assert "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" in features
        assert "mechanisms" not in features, "SASL is offered only once the stream is encrypted"
        sock.sendall(plain_auth().encode())  # a client that ignores the requirement
        answer = read_until(sock, "</stream:stream>")
        assert "<encryption-required/>" in answer and "<success" not in answer
    assert sandbox.xmpp.connected() == []


def test_xmpp_starttls_upgrades_the_stream_with_the_generated_certificate(sandbox: FinesseSandbox) -> None:
    assert sandbox.xmpp_ca_file is not None and sandbox.xmpp_ca_file.exists()
    context = ssl.create_default_context(cafile=str(sandbox.xmpp_ca_file))  # verified, hostname checked
    with socket.create_connection((sandbox.xmpp_host, sandbox.xmpp_port), timeout=TIMEOUT) as raw:
        raw.sendall(STREAM_OPEN.encode())
        read_until(raw, "</stream:features>")
        raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        assert "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" in read_until(raw, "/>")
        with context.wrap_socket(raw, server_hostname=sandbox.xmpp_domain) as tls:
            tls.sendall(STREAM_OPEN.encode())  # RFC 6120 §5.4.3.3: a new stream over TLS
            features = read_until(tls, "</stream:features>")
            assert "<mechanism>PLAIN</mechanism>" in features and "starttls" not in features
            tls.sendall(plain_auth().encode())
            assert "<success" in read_until(tls, "/>")
    assert [list(c.steps) for c in sandbox.xmpp.connections] == [["tcp", "starttls", "tls", "auth", "authenticated"]]


def test_xmpp_certificate_names_the_domain_localhost_and_loopback(sandbox: FinesseSandbox) -> None:
    assert sandbox.xmpp_ca_file is not None
    certificate = x509.load_pem_x509_certificate(sandbox.xmpp_ca_file.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {sandbox.xmpp_domain, "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert b"PRIVATE KEY" not in sandbox.xmpp_ca_file.read_bytes(), "only the certificate is written"
