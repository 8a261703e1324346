"""Logging in and out in a real browser."""

from __future__ import annotations

from tests.e2e.browser.conftest import screenshot


def test_log_in_see_the_overview_and_log_out(page, log_in):
    page.goto("/admin/rules/")
    assert "/admin/login" in page.url, "a page needs a login"
    screenshot(page, "login")
    log_in("admin")
    assert page.get_by_role("heading", name="Overview").is_visible()
    assert page.get_by_text("admin (admin)").is_visible()
    screenshot(page, "overview")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/admin/login")
    assert page.get_by_text("You are logged out.").is_visible()


def test_a_wrong_password_says_so(page, stack):
    page.goto("/admin/login")
    page.get_by_label("User name").fill("nobody")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_text("Wrong user name or password.").is_visible()
