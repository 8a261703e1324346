"""The Graph simulator's User Profile API answers as Graph does (docs/protocols/channels.md,
"Customer details"): the Page token is checked, the fields asked come back with `id`, `locale` only
when asked and granted, and Graph's error shape for an unknown PSID or a field not granted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests

from connector.config.loader import load_config
from connector.config.model import Asset, Config
from connector.sandbox.http import serving
from connector.sandbox.providers import ProviderSimulators
from connector.sandbox.providers.graph import DEMO_PROFILES
from tests.sandbox import CONFIG_DIR

DEMO = "7000000000000001"  # the customer the sandbox's customer page suggests (Messenger.example_address)
STRANGER = "7999999999999999"


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(CONFIG_DIR)


def page_of(config: Config) -> Asset:
    return next(a for a in config.assets if a.channel == "messenger")


def whatsapp_of(config: Config) -> Asset:
    return next(a for a in config.assets if a.channel == "whatsapp")


def simulators(assets: tuple[Asset, ...]) -> Iterator[ProviderSimulators]:
    with serving() as server:
        providers = ProviderSimulators(assets, server.url)
        server.app = providers.create_app()
        yield providers


@pytest.fixture
def sims(config: Config) -> Iterator[ProviderSimulators]:
    yield from simulators(config.assets)


@pytest.fixture
def approved_sims(config: Config) -> Iterator[ProviderSimulators]:
    """The simulated app has Meta's approval for locale on this Page (profile_locale: true)."""
    page = page_of(config)
    approved = replace(page, options={**page.options, "profile_locale": True})
    yield from simulators(tuple(approved if a is page else a for a in config.assets))


def profile(sims: ProviderSimulators, psid: str, fields: str | None, token: str | None) -> requests.Response:
    params = {"fields": fields} if fields is not None else {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{sims.base_url}/graph/v21.0/{psid}", params=params, headers=headers, timeout=5)


def test_a_demo_customer_has_a_name_and_a_picture(sims: ProviderSimulators, config: Config) -> None:
    token = str(page_of(config)["page_access_token"])
    answer = profile(sims, DEMO, "first_name,last_name,profile_pic", token)

    assert answer.status_code == 200
    body = answer.json()
    assert (body["first_name"], body["last_name"], body["id"]) == ("Maria", "Garcia", DEMO)
    assert set(body) == {"first_name", "last_name", "profile_pic", "id"}, "locale only when asked"
    picture = requests.get(body["profile_pic"], timeout=5)  # a CDN URL: no token
    assert (picture.status_code, picture.headers["Content-Type"]) == (200, "image/png")
    assert DEMO_PROFILES[DEMO]["first_name"] == "Maria"


def test_locale_without_approval_refuses_the_whole_call(sims: ProviderSimulators, config: Config) -> None:
    token = str(page_of(config)["page_access_token"])
    answer = profile(sims, DEMO, "first_name,last_name,profile_pic,locale", token)

    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["error_subcode"]) == (100, 2018247)
    assert error["type"] == "OAuthException" and "error_data" not in error, "Messenger's shape, not WhatsApp's"


def test_locale_with_approval(approved_sims: ProviderSimulators, config: Config) -> None:
    token = str(page_of(config)["page_access_token"])
    answer = profile(approved_sims, DEMO, "first_name,locale", token)
    assert answer.status_code == 200
    assert answer.json() == {"first_name": "Maria", "locale": "es_ES", "id": DEMO}


def test_a_customer_who_wrote_or_was_given_a_profile_is_known(sims: ProviderSimulators, config: Config) -> None:
    page = page_of(config)
    token = str(page["page_access_token"])
    sims.store.note_inbound("messenger", page.name, "7100000000004321")
    sims.store.set_profile("messenger", page.name, "7100000000009999", first_name="Dana", last_name="Customer")

    wrote = profile(sims, "7100000000004321", "first_name,last_name", token).json()
    given = profile(sims, "7100000000009999", None, token).json()

    assert (wrote["first_name"], wrote["last_name"]) == ("Customer", "4321")
    assert given == {"name": "Dana Customer", "id": "7100000000009999"}, "Graph's default fields: name and id"


def test_an_unknown_psid_is_100_subcode_33(sims: ProviderSimulators, config: Config) -> None:
    answer = profile(sims, STRANGER, "first_name", str(page_of(config)["page_access_token"]))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["error_subcode"]) == (100, 33)
    assert "fbtrace_id" in error


def test_an_unknown_field_is_100(sims: ProviderSimulators, config: Config) -> None:
    answer = profile(sims, DEMO, "first_name,email", str(page_of(config)["page_access_token"]))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100
    assert "email" in answer.json()["error"]["message"]


def test_the_page_token_is_checked(sims: ProviderSimulators, config: Config) -> None:
    missing = profile(sims, DEMO, "first_name", None)
    wrong = profile(sims, DEMO, "first_name", "not-a-token")
    whatsapp = profile(sims, DEMO, "first_name", str(whatsapp_of(config)["access_token"]))

    assert (missing.status_code, missing.json()["error"]["code"]) == (401, 104)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, 190)
    assert whatsapp.status_code == 404, "a WhatsApp token reads media, and no media has this id"
    assert "first_name" not in whatsapp.text


def test_a_page_set_down_answers_503(sims: ProviderSimulators, config: Config) -> None:
    sims.set_down("messenger")
    answer = profile(sims, DEMO, "first_name", str(page_of(config)["page_access_token"]))
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == 2
    assert sims.store.requests("messenger") == [], "a profile read is not a send: send counts stay exact"
