"""An operator finds a customer message in the dead letters, fixes the cause, requeues it and sees
it delivered: on ECE and on the conversation's timeline. Real Chromium, the whole stack."""

from __future__ import annotations

import pytest

from connector.channels.base import thread_id_for
from connector.store import dead_letters
from tests.e2e.browser.conftest import screenshot
from tests.e2e.stack import ASSETS, CUSTOMERS, Stack
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

WA, WA_CUSTOMER = ASSETS["whatsapp"], CUSTOMERS["whatsapp"]
TEXT = "Hello, my order 4411 never arrived"


def nav(page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def test_requeue_a_dead_letter_and_see_it_delivered(page, log_in, stack: Stack) -> None:
    # The cause: ECE no longer has the entry point the Support rule forwards to (id 1001).
    with stack.ece.model.lock:
        removed = stack.ece.model.entry_points.pop("1001")
    stack.customer.send_text(WA, WA_CUSTOMER, TEXT)
    [letter] = wait_for(
        lambda: dead_letters.listing(stack.runtime.redis), timeout=20, what="the message to be dead-lettered"
    )
    assert stack.conversations() == []

    log_in("admin")
    nav(page, "Dead letters")
    row = page.get_by_role("row").filter(has_text=WA_CUSTOMER)
    assert row.get_by_text(letter.reason).is_visible()
    assert "1001" in letter.reason, letter.reason
    screenshot(page, "dead_letters")

    page.get_by_role("link", name=f"Inspect dead letter {letter.id[:8]}").click()
    assert TEXT in page.get_by_label("Payload").inner_text()
    screenshot(page, "dead_letter")

    # The fix: the entry point is back in ECE. Then Requeue, confirming the dialog.
    stack.ece.model.add_entry_point(removed.id, removed.name)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Requeue", exact=True).click()
    assert page.get_by_text("Requeued").is_visible()
    assert page.get_by_text("No dead letters").is_visible()

    conversation = stack.wait_conversation(timeout=20)
    assert [r.content for r in stack.wait_received(conversation, 1)] == [TEXT]

    thread_id = thread_id_for("whatsapp", WA, WA_CUSTOMER)
    nav(page, "Conversations")
    page.get_by_role("link", name=WA_CUSTOMER).click()
    page.wait_for_url(f"**/admin/conversations/{thread_id}")

    def shows_delivery() -> bool:
        page.reload()
        return conversation.id in page.content()

    wait_for(shows_delivery, timeout=10, what="the ECE conversation id on the conversation's page")
    timeline = page.get_by_role("list").filter(has_text="moved to the dead letters")
    assert timeline.get_by_text(TEXT).is_visible(), "the requeued message is on the timeline"
    assert timeline.get_by_text(letter.reason).is_visible(), "and so is why it failed first"
    screenshot(page, "conversation")

    nav(page, "Conversations")
    screenshot(page, "conversations")
    nav(page, "Import / export")
    assert page.get_by_role("heading", name="Provisioned items, import and export").is_visible()
    screenshot(page, "import_export")
