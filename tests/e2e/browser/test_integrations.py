"""Integrations and assets in a real browser, against the ECE simulator of the whole stack."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.browser.conftest import add_lab_integration, screenshot
from tests.e2e.stack import CLIENT


def test_test_and_save_fails_with_a_wrong_secret_and_passes_with_the_right_one(page, log_in, stack):
    log_in("admin")
    page.goto("/admin/integrations/")
    page.get_by_role("link", name="New integration: ECE").click()
    page.get_by_label("Name", exact=True).fill("Lab")
    page.get_by_label("Type").select_option("ece")
    page.get_by_label("Base URL").fill(f"{stack.ece_server.url}/ece")
    page.get_by_label("Client key").fill(CLIENT[0])
    page.get_by_label("Client secret").fill("not-the-secret")
    page.get_by_role("button", name="Test and save").click()

    expect(page.get_by_text("Nothing was saved: the ECE test failed.")).to_be_visible()
    expect(page.get_by_text("ECE rejected the client key/secret of integration Lab")).to_be_visible()
    assert stack.runtime.overrides.raw_items("integrations") == {}
    screenshot(page, "integration-test-failed")

    page.get_by_label("Client secret").fill(CLIENT[1])
    expect(page.get_by_label("Callback authentication")).to_have_value("bearer")  # the default: ECE's calls signed
    page.get_by_role("button", name="Test and save").click()
    expect(page.get_by_role("heading", name="Integration Lab")).to_be_visible()
    expect(page.get_by_text("Integration Lab tested and saved.")).to_be_visible()
    stored = stack.runtime.overrides.raw("integrations", "Lab")
    assert stored["client_secret"] == CLIENT[1]
    token = page.locator("#new-callback-token")
    expect(token).to_have_text(stored["callback_auth"]["token"])  # made at saving, shown this once
    screenshot(page, "integration-callback-token")
    page.goto("/admin/integrations/Lab")
    expect(page.locator("dd", has_text="********")).to_be_visible()
    expect(token).to_have_count(0)

    page.get_by_role("link", name="Integrations", exact=True).click()
    expect(page.get_by_role("link", name="Lab", exact=True)).to_be_visible()
    provisioned = page.get_by_role("row").filter(has=page.get_by_role("link", name="E2E", exact=True))
    expect(provisioned.locator(".badge.readonly")).to_contain_text("defined in")
    expect(provisioned.get_by_role("button", name="Delete")).to_have_count(0)
    screenshot(page, "integrations")


def test_indicators_turn_red_without_agents_and_green_after_refresh(page, log_in, stack):
    add_lab_integration(stack)
    log_in("admin")
    page.goto("/admin/integrations/Lab")
    agent = page.locator('tr[data-entry-point="Support"] [data-indicator="agent"]')
    expect(agent).to_have_attribute("data-state", "green")  # the page refreshed its unread readings itself

    stack.ece.model.set_entry_point("1001", agents_available=False)
    page.get_by_role("button", name="Refresh Support").click()
    expect(agent).to_have_attribute("data-state", "red")
    expect(agent).to_have_attribute("title", re.compile(r"^no agent available: 0 slots free · checked \d+ s ago$"))
    expect(page.get_by_role("status")).to_have_text("Indicators refreshed.")
    screenshot(page, "integration")

    stack.ece.model.set_entry_point("1001", agents_available=True)
    page.get_by_role("button", name="Refresh all").click()
    expect(agent).to_have_attribute("data-state", "green")
    expect(agent).to_have_attribute("title", re.compile(r"^an agent can take chats: 3 slots free · checked \d+ s ago$"))


def test_assets_show_webhook_urls_and_the_verify_token(page, log_in, stack):
    log_in("admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Assets").click()
    expect(page.get_by_text(f"{stack.connector_url}/webhooks/sms/e2e-sms", exact=True)).to_be_visible()
    screenshot(page, "assets")
    page.get_by_role("link", name="e2e-messenger").click()
    expect(page.get_by_label("Webhook URL")).to_have_value(f"{stack.connector_url}/webhooks/messenger/e2e-messenger")
    expect(page.get_by_label("Verify token")).to_have_value("e2e-verify")
    expect(page.get_by_text("e2e-page-token")).to_have_count(0)

    page.goto("/admin/assets/new")
    page.get_by_label("WhatsApp Cloud API").check()
    page.get_by_role("button", name="Continue").press("Enter")  # the chooser works by keyboard
    expect(page.get_by_label("Phone number ID")).to_be_visible()
    expect(page.get_by_label("Page ID")).to_have_count(0)
