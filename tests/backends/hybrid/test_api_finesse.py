"""Finesse agents at the agent API, against the Finesse simulator on loopback: `/agent/login` verified
by Finesse with the password kept encrypted for the listener, the gadget's login verified by calling
Finesse with the authorization Finesse's gadget API handed over (never trusted as sent), and the
gadget definition itself."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace

import defusedxml.ElementTree as SafeET
import pytest
import responses

from connector.blending.finesse.credentials import CredentialStore
from connector.config.model import FinesseConfig
from connector.sandbox.finesse import FinesseSandbox
from connector.store import keys
from tests.backends.hybrid.agent_api_helpers import bearer
from tests.blending.finesse_helpers import (
    ADMIN,
    AGENT,
    AGENT_PASSWORD,
    OTHER,
    OTHER_PASSWORD,
    SUPERVISOR,
    SUPERVISOR_PASSWORD,
    finesse_config,
    provision,
    running_sandbox,
)

LOGIN_NAME = "ada.lovelace"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[FinesseSandbox]:
    with running_sandbox() as sandbox:
        provision(sandbox)
        sandbox.model.agents[AGENT].login_name = LOGIN_NAME
        yield sandbox


@pytest.fixture
def finesse(runtime, sandbox):
    for node in ("publisher", "subscriber"):
        sandbox.model.set_status(node, "IN_SERVICE")
    runtime._config = replace(runtime.provisioned, finesse=finesse_config(sandbox))
    return runtime


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def stored(runtime, agent_id: str = AGENT):
    return CredentialStore(runtime.redis, runtime.settings.secret_key).get(agent_id)


# -- /agent/login -----------------------------------------------------------------------------------


def test_a_finesse_agent_is_verified_against_finesse_and_the_password_kept_encrypted(client, finesse, sandbox):
    wrong = client.post("/agent/login", json={"login": AGENT, "password": "not-it"})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_credentials"
    assert stored(finesse) is None

    answer = client.post("/agent/login", json={"login": AGENT, "password": AGENT_PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["agent_id"] == AGENT and body["token"].startswith("cca_") and body["expires_at"]
    raw = finesse.redis.hget(keys.agent_credentials(), AGENT)
    assert raw and AGENT_PASSWORD.encode() not in raw, "never stored in clear"
    assert stored(finesse) == (AGENT, AGENT_PASSWORD), "the listener opens the agent's session with it"
    assert any(r.path == f"/finesse/api/User/{AGENT}" and r.user == AGENT for r in sandbox.model.requests_to())

    me = client.get("/agent/api/me", headers=bearer(body["token"])).get_json()
    assert me["agent_id"] == AGENT and me["login"] == LOGIN_NAME and me["name"] == "Ada"


def test_a_finesse_agent_logs_in_by_login_name_through_the_registry(client, finesse):
    finesse.redis.hset(keys.agent_logins(), LOGIN_NAME, AGENT)  # as the agent sync maps it
    answer = client.post("/agent/login", json={"username": LOGIN_NAME, "password": AGENT_PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["agent_id"] == AGENT
    assert stored(finesse) == (LOGIN_NAME, AGENT_PASSWORD)


def test_five_refused_finesse_logins_lock_the_login_out(client, finesse):
    for _ in range(5):
        assert client.post("/agent/login", json={"login": AGENT, "password": "not-it"}).status_code == 401
    locked = client.post("/agent/login", json={"login": AGENT, "password": AGENT_PASSWORD})
    assert locked.status_code == 429 and locked.get_json()["error"] == "locked_out"
    assert stored(finesse) is None


def test_the_login_works_while_the_publisher_is_out_of_service(client, finesse, sandbox):
    sandbox.model.set_status("publisher", "OUT_OF_SERVICE")
    answer = client.post("/agent/login", json={"login": AGENT, "password": AGENT_PASSWORD})
    assert answer.status_code == 200, answer.get_json()
    sandbox.model.set_status("subscriber", "OUT_OF_SERVICE")
    down = client.post("/agent/login", json={"login": AGENT, "password": AGENT_PASSWORD})
    assert down.status_code == 503 and down.get_json()["error"] == "finesse_unavailable"


def test_the_last_logout_forgets_the_finesse_password(client, finesse):
    first = client.post("/agent/login", json={"login": AGENT, "password": AGENT_PASSWORD}).get_json()["token"]
    second = client.post("/agent/login", json={"login": AGENT, "password": AGENT_PASSWORD}).get_json()["token"]
    assert client.post("/agent/logout", headers=bearer(first)).status_code == 200
    assert stored(finesse) is not None, "the agent's other session still needs it"
    assert client.get("/agent/api/me", headers=bearer(second)).status_code == 200
    assert client.post("/agent/logout", headers=bearer(second)).status_code == 200
    assert stored(finesse) is None


def test_todays_logout_with_username_and_password_still_forgets_the_password(client, finesse):
    assert client.post("/agent/login", json={"username": AGENT, "password": AGENT_PASSWORD}).status_code == 200
    plain = client.application.test_client()
    wrong = plain.post("/agent/logout", json={"username": AGENT, "password": "not-it"})
    assert wrong.status_code == 200 and stored(finesse) is not None
    answer = plain.post("/agent/logout", json={"username": AGENT, "password": AGENT_PASSWORD})
    assert answer.status_code == 200 and answer.get_json()["agent_id"] == AGENT
    assert stored(finesse) is None


# -- the gadget's login -------------------------------------------------------------------------------


def gadget_login(client, agent_id: str, authorization: str, **headers: str):
    return client.post(
        "/agent/gadget/login", json={"agent_id": agent_id, "authorization": authorization}, headers=headers
    )


def test_the_gadget_login_is_verified_by_finesse_with_the_authorization_it_hands_over(client, finesse, sandbox):
    origin = sandbox.publisher_url  # the gadget runs in Finesse's page: its calls come from there
    answer = gadget_login(client, AGENT, basic(AGENT, AGENT_PASSWORD), Origin=origin)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["agent_id"] == AGENT
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    assert "cc_agent=" in answer.headers["Set-Cookie"]
    assert client.get("/agent/api/me", headers=bearer(body["token"])).get_json()["agent_id"] == AGENT
    assert stored(finesse) == (AGENT, AGENT_PASSWORD), "Basic: kept for the listener as a login is"

    by_name = gadget_login(client, AGENT, basic(LOGIN_NAME, AGENT_PASSWORD))
    assert by_name.status_code == 200, "Finesse takes loginName:password too"


@pytest.mark.parametrize(
    ("agent_id", "user", "password"),
    [
        (AGENT, AGENT, "forged-password"),
        (AGENT, SUPERVISOR, SUPERVISOR_PASSWORD),  # Finesse lets the team's supervisor read the agent
        (AGENT, ADMIN[0], ADMIN[1]),  # and the administrator
        (AGENT, OTHER, OTHER_PASSWORD),
        (OTHER, AGENT, AGENT_PASSWORD),
        ("9999", AGENT, AGENT_PASSWORD),
    ],
)
def test_a_forged_or_someone_elses_authorization_is_refused(client, finesse, agent_id, user, password):
    answer = gadget_login(client, agent_id, basic(user, password))
    assert answer.status_code == 401, answer.get_json()
    assert answer.get_json()["error"] == "invalid_credentials"
    assert "Set-Cookie" not in answer.headers
    assert stored(finesse, agent_id) is None


def test_an_authorization_that_is_not_basic_or_bearer_is_400_and_a_forged_bearer_401(client, finesse):
    for malformed in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Token abc", "Bearer "):
        answer = gadget_login(client, AGENT, malformed)
        assert answer.status_code == 400, malformed
    assert gadget_login(client, AGENT, "Bearer forged-sso-token").status_code == 401
    assert client.post("/agent/gadget/login", json={"agent_id": AGENT}).status_code == 400


def test_repeated_refused_gadget_logins_lock_the_agent_out(client, finesse):
    for _ in range(5):
        assert gadget_login(client, AGENT, basic(AGENT, "forged")).status_code == 401
    assert gadget_login(client, AGENT, basic(AGENT, AGENT_PASSWORD)).status_code == 429


def test_the_gadget_login_answers_the_finesse_origin_only(client, finesse, sandbox):
    preflight = client.options(
        "/agent/gadget/login",
        headers={"Origin": sandbox.subscriber_url, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == sandbox.subscriber_url
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    elsewhere = client.options("/agent/gadget/login", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in elsewhere.headers
    refused = gadget_login(client, AGENT, basic(AGENT, AGENT_PASSWORD), Origin="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in refused.headers


SSO_NODE = "https://finesse-sso.example.com:8445"
SSO_TOKEN = "eyJ.sso-access-token.sig"


def _user(agent_id: str, login_name: str) -> str:
    return (
        f"<User><loginId>{agent_id}</loginId><loginName>{login_name}</loginName>"
        "<firstName>Sam</firstName><lastName>Sso</lastName><state>READY</state></User>"
    )


def test_an_sso_bearer_is_verified_by_finesse_and_no_password_is_kept(client, runtime):
    runtime._config = replace(runtime.provisioned, finesse=FinesseConfig(publisher=SSO_NODE, admin_user="a"))
    with responses.RequestsMock() as finesse:
        finesse.get(
            f"{SSO_NODE}/finesse/api/User/3001",
            body=_user("3001", "sam"),
            content_type="application/xml",
            match=[responses.matchers.header_matcher({"Authorization": f"Bearer {SSO_TOKEN}"})],
        )
        answer = gadget_login(client, "3001", f"Bearer {SSO_TOKEN}")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["agent_id"] == "3001"
    assert stored(runtime, "3001") is None
    me = client.get("/agent/api/me", headers=bearer(answer.get_json()["token"])).get_json()
    assert me["login"] == "sam" and me["name"] == "Sam Sso"

    with responses.RequestsMock() as finesse:
        finesse.get(f"{SSO_NODE}/finesse/api/User/3001", status=401, body="")
        assert gadget_login(client, "3001", "Bearer expired").status_code == 401
    with responses.RequestsMock() as finesse:
        finesse.get(f"{SSO_NODE}/finesse/api/User/3001", body=_user("3002", "tom"), content_type="application/xml")
        assert gadget_login(client, "3001", f"Bearer {SSO_TOKEN}").status_code == 401, "not the named agent"


def test_the_gadget_login_needs_finesse(client, runtime):
    assert gadget_login(client, AGENT, basic(AGENT, AGENT_PASSWORD)).status_code == 404


# -- the gadget definition ----------------------------------------------------------------------------


def test_the_gadget_is_an_opensocial_module_that_signs_in_and_shows_the_desktop(client, runtime):
    answer = client.get("/agent/gadget.xml")
    assert answer.status_code == 200
    assert answer.mimetype == "application/xml"
    module = SafeET.fromstring(answer.data, forbid_dtd=True)
    assert module.tag == "Module"
    prefs = module.find("ModulePrefs")
    assert prefs is not None and prefs.get("title")
    assert {r.get("feature") for r in prefs.findall("Require")} >= {"pubsub-2", "setprefs", "dynamic-height"}
    assert {p.get("name") for p in module.findall("UserPref")} == {"scheme", "host", "hostPort"}
    content = module.find("Content")
    assert content is not None and content.get("type") == "html"
    html = content.text or ""
    base = runtime.settings.public_base_url
    assert f'"{base}/agent/?embedded=1"' in html, "the desktop at the connector's PUBLIC_BASE_URL"
    assert f'"{base}/agent/gadget/login"' in html
    assert "__UP_scheme__://__UP_host__:__UP_hostPort__/desktop/assets/js/finesse.min.js" in html
    for name in ("finesse.gadget.Config", "config.id", "config.authorization", "config.authToken"):
        assert name in html
