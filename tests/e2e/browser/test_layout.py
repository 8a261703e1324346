"""The UI works by keyboard alone, and the accounts page issues a token. (Every list page at a phone's
width: test_phone_lists.py.)"""

from __future__ import annotations

from tests.conftest import OPERATOR_PASSWORD, add_operator
from tests.e2e.browser.conftest import screenshot


def test_log_in_and_move_around_by_keyboard_alone(page, stack, operator_password_hash):
    add_operator(stack.runtime.redis, "keys", "viewer", operator_password_hash)
    page.goto("/admin/login")
    # The user name field has the focus on arrival (autofocus); wait for it, or keys typed while
    # a busy machine is still applying it are lost.
    page.wait_for_function("() => document.activeElement && document.activeElement.name === 'name'")
    page.keyboard.type("keys")
    page.keyboard.press("Tab")
    page.keyboard.type(OPERATOR_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/")

    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content", "first stop skips the menu"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Integrations"
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/integrations/")


def test_accounts_page(page, log_in):
    log_in("admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
    page.get_by_label("Label").fill("wallboard")
    page.get_by_role("button", name="Issue a token").click()
    assert page.locator("#new-token").inner_text().startswith("cct_")
    screenshot(page, "accounts")
