"""The flow editor of the operator UI in real Chromium: an editor writes a flow with an ask step in
the YAML editor (the step kinds listed beside it), sees every error of a bad one beside its field,
fixes and saves it, sees the steps as a numbered list, then picks the flow in a rule's form.
Screenshots: test-output/screenshots/flow-editor-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from connector import create_app
from connector.runtime import Runtime
from connector.sandbox.http import serving
from tests.conftest import OPERATOR_PASSWORD, add_operator
from tests.e2e.browser.conftest import playwright_api, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
expect = playwright_api.expect

BAD_STEPS = """- name: order
  type: ask
  question: ask_order_numbr
  answer: regex
  pattern: "([A-Z]{2"
  attribute: order_number
"""
GOOD_STEPS = """- name: order
  type: ask
  question: ask_order_number
  retry: ask_order_number_retry
  answer: regex
  pattern: "[A-Z]{2}[0-9]{6}"
  attribute: order_number
"""


@pytest.fixture
def editor_page(browser, settings, redis, operator_password_hash) -> Iterator[object]:
    """The web app alone on loopback with tests/config/channels.yaml, and a logged-in editor."""
    runtime = Runtime(replace(settings, public_base_url="http://127.0.0.1"))
    add_operator(redis, "editor", "editor", operator_password_hash)
    with serving(create_app(runtime=runtime)) as server:
        context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        context.route("**/admin/live/**", lambda route: route.abort())
        page = context.new_page()
        page.goto("/admin/login")
        page.get_by_label("User name").fill("editor")
        page.get_by_label("Password").fill(OPERATOR_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/admin/")
        yield page
        context.close()


def test_write_a_flow_see_its_errors_save_it_and_pick_it_in_a_rule(editor_page):
    page = editor_page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Flows").click()
    page.wait_for_url("**/admin/flows/")
    page.get_by_role("link", name="New flow").click()
    expect(page.locator("#kind-ask")).to_contain_text("attribute")
    steps = page.get_by_label("Steps")
    assert steps.evaluate("el => getComputedStyle(el).fontFamily").lower().find("mono") >= 0, "a monospace editor"

    page.get_by_label("Name", exact=True).fill("intake")
    steps.fill(BAD_STEPS)
    page.get_by_role("button", name="Create flow").click()
    errors = page.locator(".field-error")
    expect(errors.filter(has_text="step 1: pattern: not a valid regular expression")).to_be_visible()
    expect(errors.filter(has_text="step 1: question: no template 'ask_order_numbr'")).to_be_visible()
    expect(steps).to_have_attribute("aria-invalid", "true")
    expect(steps).to_have_value(BAD_STEPS)
    screenshot(page, "flow-editor-errors")

    steps.fill(GOOD_STEPS)
    page.get_by_role("button", name="Create flow").click()
    page.wait_for_url("**/admin/flows/intake")
    expect(page.get_by_text("Flow intake created.")).to_be_visible()
    numbered = page.locator("#flow-steps > li")
    expect(numbered).to_have_count(1)
    expect(numbered.first).to_contain_text("order")
    expect(numbered.first).to_contain_text("pattern: [A-Z]{2}[0-9]{6}")
    screenshot(page, "flow-editor-saved")

    page.goto("/admin/rules/new")
    page.get_by_label("Name", exact=True).fill("sms-vip")
    page.get_by_label("Asset").select_option("test-sms")
    page.get_by_label("Keyword").fill("VIP")
    page.get_by_label("Forward to integration").select_option("TestRouter")
    page.get_by_label("Entry point").select_option("Sales")
    page.locator("#flow").select_option("intake")
    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url("**/admin/rules/#rule-sms-vip")
    expect(page.locator("#rule-sms-vip")).to_contain_text("flow intake")

    page.goto("/admin/flows/")
    expect(page.locator("#flow-intake")).to_contain_text("rule sms-vip")
    screenshot(page, "flow-editor-list")
