"""An editor edits a system message with its live preview, and reorders rules and asks the tester,
in real Chromium against the whole stack (tests/e2e/stack.py: sms-sales, then sms-support, ...)."""

from __future__ import annotations

import re

from tests.e2e.browser.conftest import playwright_api, screenshot

expect = playwright_api.expect


def test_edit_a_template_and_see_the_preview_then_send_it_as_a_test(page, log_in, stack):
    log_in("editor")
    page.goto("/admin/templates/")
    page.get_by_role("link", name="Edit agent_assigned in en").click()
    page.wait_for_url("**/admin/templates/en/agent_assigned")
    template = page.get_by_label("Template")
    preview = page.locator("#preview")

    template.fill("Hello, {{ agent.name }} will help you now.")
    expect(preview).to_have_text("Hello, CiscoAgent1 will help you now.")
    screenshot(page, "template-editor")

    template.fill("Hello,\n{{ agent.name }\nthanks")
    error = page.get_by_role("alert")
    expect(error).to_contain_text("Line 2:")
    expect(error.locator(".error-line")).to_contain_text("{{ agent.name }")
    expect(template).to_have_attribute("aria-invalid", "true")
    screenshot(page, "template-editor-error")

    template.fill("Hello, {{ agent.name }} will help you now.")
    expect(preview).to_have_text("Hello, CiscoAgent1 will help you now.")
    expect(error).to_be_hidden()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/admin/templates/en/agent_assigned$"))  # saving stays on the template
    expect(page.get_by_text("agent_assigned (en, deployment-wide) saved")).to_be_visible()
    expect(page.get_by_label("Text in effect")).to_contain_text("In effect: deployment override (en)")

    # The sandbox is on in the stack: the saved text goes to the sandbox customer through Twilio's simulator.
    page.get_by_label("Asset").select_option("sms/e2e-sms")
    page.get_by_role("button", name="Send as test").click()
    expect(page.get_by_role("heading", name="Test sent")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"127\.0\.0\.1:\d+\/customer\/$"))).to_be_visible()
    screenshot(page, "template-send-test")
    sent = stack.wait_text("sms", "CiscoAgent1 will help you now")
    assert sent["customer"] == "+15551230001"

    # A change, saved, is one click from the same customer: the asset is the one last used.
    page.get_by_label("Template").fill("Hello again, {{ agent.name }} is here.")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/admin/templates/en/agent_assigned$"))
    expect(page.get_by_label("Asset")).to_have_value("sms/e2e-sms")
    page.get_by_role("button", name="Send as test").click()
    expect(page.get_by_role("heading", name="Test sent")).to_be_visible()
    stack.wait_text("sms", "Hello again, CiscoAgent1 is here.")

    page.goto("/admin/templates/")
    expect(page.locator("#cell-agent_assigned-en")).to_contain_text("deployment override (en)")
    screenshot(page, "template-matrix")


def test_reorder_rules_and_check_the_testers_answer(page, log_in):
    log_in("editor")
    page.goto("/admin/rules/")
    rows = page.locator("#rules tbody tr")
    expect(rows.first).to_have_attribute("data-rule", "sms-sales")
    expect(rows.nth(1)).to_have_attribute("data-rule", "sms-support")
    screenshot(page, "rules")

    def ask(text: str) -> None:
        page.get_by_label("Channel").select_option("sms")
        page.get_by_label("Asset").select_option("e2e-sms")
        page.get_by_label("Message text").fill(text)
        page.get_by_role("button", name="Test", exact=True).click()
        expect(page.get_by_role("heading", name="Tester answer")).to_be_visible()

    ask("sales please")
    answer = page.locator("#tester-answer")
    expect(answer).to_contain_text("Rule 'sms-sales' matches: the message is forwarded to E2E / Sales.")
    screenshot(page, "rules-tester")

    page.get_by_role("button", name="Move sms-support up").click()
    expect(page.get_by_text("Rule sms-support is now number 1.")).to_be_visible()
    expect(rows.first).to_have_attribute("data-rule", "sms-support")

    ask("sales please")
    expect(answer).to_contain_text("Rule 'sms-support' matches: the message is forwarded to E2E / Support.")
    not_reached = answer.locator("tr.verdict", has_text="sms-sales")
    expect(not_reached).to_contain_text("not reached")
    expect(not_reached).to_contain_text("rule 'sms-support' matched first")
    screenshot(page, "rules-tester-reordered")

    # Drag sms-sales back to the top: rules.js saves the order through the API.
    with page.expect_navigation():  # the page reloads once the order is saved
        page.locator("#rule-sms-sales").drag_to(page.locator("#rule-sms-support"), target_position={"x": 20, "y": 2})
    expect(rows.first).to_have_attribute("data-rule", "sms-sales")
    ask("sales please")
    expect(answer).to_contain_text("Rule 'sms-sales' matches")
