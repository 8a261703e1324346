"""The Agents and Finesse pages in real Chromium: readable on a 375 px phone with no page-wide sideways
scroll, "Sync now", and "Test and save" of the Finesse form against the Finesse simulator."""

from __future__ import annotations

from dataclasses import replace

import pytest
from playwright.sync_api import expect

from connector import create_app
from connector.runtime import Runtime
from connector.sandbox.http import serving
from connector.store import keys
from tests.blending.finesse_helpers import running_sandbox
from tests.conftest import OPERATOR_PASSWORD, add_operator
from tests.e2e.browser.conftest import screenshot
from tests.operations.blending_data import make_section, seed_agents

PHONE_WIDTH = 375


@pytest.fixture
def site(settings, redis):
    """The web app alone on loopback (plain http, so its cookies are not Secure): (runtime, url)."""
    runtime = Runtime(replace(settings, public_base_url="http://127.0.0.1"))
    with serving(create_app(runtime=runtime)) as server:
        yield runtime, server.url


@pytest.fixture
def finesse_sim():
    with running_sandbox() as sandbox:
        yield sandbox


def logged_in(browser, url: str, redis, password_hash: str, role: str, **context) -> object:
    add_operator(redis, role, role, password_hash)
    opened = browser.new_context(base_url=url, **context)
    opened.set_default_timeout(10_000)
    page = opened.new_page()
    page.goto("/admin/login")
    page.get_by_label("User name").fill(role)
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    return page


def test_agents_and_finesse_pages_fit_a_phone(browser, site, redis, operator_password_hash):
    runtime, url = site
    make_section(runtime, publisher="https://finesse-publisher.a-rather-long-domain-name.example.com:8445")
    seed_agents(runtime)
    page = logged_in(
        browser,
        url,
        redis,
        operator_password_hash,
        "admin",
        viewport={"width": PHONE_WIDTH, "height": 812},
        is_mobile=True,
        has_touch=True,
    )
    too_wide = []
    for name, path in (
        ("agents", "/admin/agents/"),
        ("finesse", "/admin/finesse/"),
        ("finesse-form", "/admin/finesse/edit"),
    ):
        page.goto(path)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        if width > PHONE_WIDTH + 1:  # the agents table scrolls inside its own box, the page does not
            too_wide.append(f"{path}: {width} px of content on a {PHONE_WIDTH} px screen")
        screenshot(page, f"phone-{name}")
    assert not too_wide, "\n".join(too_wide)
    page.context.close()


def test_sync_now_and_test_and_save_in_the_browser(browser, site, redis, operator_password_hash, finesse_sim):
    runtime, url = site
    page = logged_in(browser, url, redis, operator_password_hash, "admin", viewport={"width": 1280, "height": 800})
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Finesse").click()
    page.get_by_role("link", name="Configure Finesse").click()
    page.get_by_label("Publisher node").fill(finesse_sim.publisher_url)
    page.get_by_label("Subscriber node").fill(finesse_sim.subscriber_url)
    page.get_by_label("Admin user").fill("admin")
    page.get_by_label("Admin password").fill("admin-password")
    page.get_by_label("Most chats per agent").fill("3")
    finesse_sim.node_down("subscriber", "out_of_service")
    page.get_by_role("button", name="Test and save").click()
    expect(page.get_by_text("Nothing was saved: a Finesse node is not in service.")).to_be_visible()
    expect(page.locator("#node-subscriber")).to_contain_text("OUT_OF_SERVICE")
    assert runtime.overrides.singleton("finesse") is None
    screenshot(page, "finesse-test-failed")

    finesse_sim.node_up("subscriber")
    page.get_by_label("Admin password").fill("admin-password")  # never sent back to the browser
    page.get_by_role("button", name="Test and save").click()
    page.wait_for_url("**/admin/finesse/")
    expect(page.get_by_text("Finesse section tested and saved.")).to_be_visible()
    expect(page.locator("#setting-max_chats")).to_have_text("3")
    screenshot(page, "finesse")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Agents").click()
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_text("Agent sync requested")).to_be_visible()
    assert redis.get(keys.agent_sync_requested()) is not None
    screenshot(page, "agents")
    page.context.close()
