"""Browser tests in real Chromium (Debian's `chromium`, driven by Playwright) against the whole stack.

They skip, saying why, where Chromium or Playwright is absent (`.ci/run` installs Chromium).
Screenshots of each main page go to `test-output/screenshots/`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.settings import PROJECT_ROOT
from tests.conftest import OPERATOR_PASSWORD, add_operator
from tests.e2e.stack import CLIENT, Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "test-output" / "screenshots"

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    # Package scope, not session: Playwright's sync API keeps an asyncio loop running in the main
    # thread while it is open, which would break later tests that call asyncio.run().
    with playwright_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's own sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, stack) -> Iterator[object]:
    """A fresh browser context on the stack's connector (no cookies), 1280 x 800."""
    context = browser.new_context(base_url=stack.connector_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def log_in(page, stack, operator_password_hash):
    """log_in(role) creates user <role> and logs in through the login form like an operator."""

    def go(role: str = "admin") -> object:
        add_operator(stack.runtime.redis, role, role, operator_password_hash)
        page.goto("/admin/login")
        page.get_by_label("User name").fill(role)
        page.get_by_label("Password").fill(OPERATOR_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/admin/")
        return page

    return go


def add_lab_integration(stack: Stack) -> None:
    """UI integration `Lab` on the stack's ECE simulator, entry point `Support` (1001) with a 120 s
    wait target, as an operator makes it; the caller reloads the configuration when its test needs to."""
    runtime = stack.runtime
    entry_point = {"name": "Support", "id": "1001", "max_wait_seconds": 120}
    runtime.overrides.save(
        "integrations",
        {
            "name": "Lab",
            "type": "ece",
            "base_url": f"{stack.ece_server.url}/ece",
            "client_key": CLIENT[0],
            "client_secret": CLIENT[1],
            "entry_points": [entry_point],
        },
        runtime.provisioned,
        create=True,
    )


def screenshot(page, name: str) -> Path:
    """Save the whole page as test-output/screenshots/<name>.png (kept as the run's output)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
