"""Live operator pages in real Chromium, against the whole stack: a new conversation and a new dead
letter appear in the open list without a reload, an entry point's lights take a reading made
elsewhere, its age ticks every second, and the overview draws its charts over its tables."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from connector import live
from connector.backends import indicators
from connector.backends.indicators import Reading
from connector.store import dead_letters
from connector.store.boxes import Box
from tests.e2e.browser.conftest import add_lab_integration, screenshot
from tests.e2e.stack import ASSETS, CUSTOMERS, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

WA, WA_CUSTOMER = ASSETS["whatsapp"], CUSTOMERS["whatsapp"]


@pytest.fixture(autouse=True)
def short_event_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """The web app runs in this process: its SSE responses end after 2 s (a minute in the product), so
    the page reconnects with Last-Event-ID during a test and no server thread outlives it by more."""
    monkeypatch.setattr(live, "STREAM_SECONDS", 2.0)


def mark_page(page) -> None:
    """A flag that a reload or a navigation would lose: the page must still carry it at the end."""
    page.evaluate("window.__stillThisPage = true")


def still_the_same_page(page) -> bool:
    return page.evaluate("window.__stillThisPage === true")


def test_a_new_conversation_appears_in_the_open_list(page, log_in, stack: Stack) -> None:
    log_in("viewer")
    page.goto("/admin/conversations/")
    expect(page.locator("#conversations-empty")).to_be_visible()
    mark_page(page)

    stack.customer.send_text(WA, WA_CUSTOMER, "Is anyone there?")
    row = page.locator("#conversations tr").filter(has_text=WA_CUSTOMER)
    expect(row).to_be_visible(timeout=20_000)
    expect(page.locator("#conversations-empty")).to_have_count(0)
    assert still_the_same_page(page), "the row came without a reload"
    screenshot(page, "conversations-live")


def test_a_new_dead_letter_appears_in_the_open_list(page, log_in, stack: Stack) -> None:
    redis = stack.runtime.redis
    log_in("admin")
    page.goto("/admin/dead-letters/")
    expect(page.get_by_text("No dead letters")).to_be_visible()
    mark_page(page)
    page.evaluate("window.__rereads = 0; document.addEventListener('cc:regions', () => window.__rereads++)")

    first = dead_letters.add(redis, "thread-x", Box.OUT, '{"text": "hi"}', "the provider refused the number")
    expect(page.locator("#dead-letters tr").filter(has_text="the provider refused the number")).to_be_visible()
    expect(page.get_by_text("1 in all.")).to_be_visible()
    expect(page.get_by_role("button", name="Requeue selected")).to_be_visible()

    # The operator ticks the letter and points at its Requeue button: the list waits for them.
    page.get_by_label(f"Select dead letter {first.id[:8]}").check()
    requeue = page.locator("#dead-letters tr").filter(has_text=first.reason).get_by_role("button", name="Requeue")
    requeue.hover()
    seen = page.evaluate("window.__rereads")
    dead_letters.add(redis, "thread-y", Box.IN, '{"text": "yo"}', "ECE refused the entry point")
    page.wait_for_function(f"window.__rereads > {seen}")
    expect(page.get_by_text("ECE refused the entry point")).to_have_count(0)

    page.get_by_role("heading", name="Dead letters").hover()  # the pointer leaves: the new row comes
    expect(page.locator("#dead-letters tr").filter(has_text="ECE refused the entry point")).to_be_visible()
    expect(page.get_by_label(f"Select dead letter {first.id[:8]}")).to_be_checked()
    assert still_the_same_page(page)


def test_the_lights_take_new_readings_and_their_age_ticks(page, log_in, stack: Stack) -> None:
    runtime = stack.runtime
    add_lab_integration(stack)
    runtime.config_changed()
    # A viewer's page asks ECE nothing: every change below comes from the stream or the clock.
    indicators.store(runtime.redis, "Lab", Reading("1001", time.time() - 55, error="ECE did not answer"))
    log_in("viewer")
    page.goto("/admin/integrations/Lab")
    agent = page.locator('tr[data-entry-point="Support"] [data-indicator="agent"]')
    expect(agent).to_have_attribute("data-state", "unknown")
    expect(agent).to_have_attribute("title", re.compile(r"· checked 5[5-9] s ago$"))
    mark_page(page)

    expect(agent).to_have_attribute("title", re.compile(r"· checked 1 min ago$"), timeout=8_000)

    # Another operator (or the API) refreshes: this page takes the new reading from its stream.
    lab = runtime.config.integration("Lab")
    assert lab is not None
    indicators.refresh(lab, lab.entry_points[0], runtime.redis)
    expect(agent).to_have_attribute("data-state", "green")
    expect(agent).to_have_attribute("title", re.compile(r"^an agent can take chats: .* · checked [0-3] s ago$"))
    assert still_the_same_page(page)


def test_the_overview_draws_charts_over_its_tables(page, log_in, stack: Stack) -> None:
    stack.customer.send_text(WA, WA_CUSTOMER, "Counting me?")
    log_in("viewer")
    expect(page.locator("#traffic-charts canvas")).to_have_count(2)
    expect(page.locator("#traffic-minutes")).not_to_have_attribute("open", "")
    expect(page.locator('#traffic-summary tr[data-channel="whatsapp"] td').nth(2)).to_have_text("1", timeout=20_000)
    screenshot(page, "overview")
