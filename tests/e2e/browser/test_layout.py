"""Every main page at a phone's width has no page-wide sideways scroll, and the UI works by keyboard."""

from __future__ import annotations

import pytest

from tests.conftest import OPERATOR_PASSWORD, add_operator
from tests.e2e.browser.conftest import screenshot

PHONE_WIDTH = 390
MAIN_PAGES = {
    "overview": "/admin/",
    "integrations": "/admin/integrations/",
    "assets": "/admin/assets/",
    "rules": "/admin/rules/",
    "messages": "/admin/templates/",
    "conversations": "/admin/conversations/",
    "dead-letters": "/admin/dead-letters/",
    "import-export": "/admin/transfer/",
    "accounts": "/admin/accounts/",
}


@pytest.fixture
def phone(browser, stack, operator_password_hash):
    """A logged-in admin on a 390 x 844 screen with touch, like a current phone."""
    add_operator(stack.runtime.redis, "admin", "admin", operator_password_hash)
    context = browser.new_context(
        base_url=stack.connector_url,
        viewport={"width": PHONE_WIDTH, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    page.goto("/admin/login")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    yield page
    context.close()


def test_every_main_page_fits_a_phone(phone):
    too_wide = []
    for name, path in MAIN_PAGES.items():
        phone.goto(path)
        # Against the screen, not window.innerWidth: a mobile browser widens its layout viewport to
        # fit content that overflows, which would hide the very overflow this looks for.
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        if width > PHONE_WIDTH + 1:  # wide tables scroll inside their own box, the page does not
            too_wide.append(f"{path}: {width} px of content on a {PHONE_WIDTH} px screen")
        screenshot(phone, f"phone-{name}")
    assert not too_wide, "\n".join(too_wide)


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
