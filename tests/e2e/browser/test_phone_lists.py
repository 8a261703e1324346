"""Every list page of the operator UI on a 375 px phone, with rows in it: no page-wide sideways scroll
(a wide table scrolls inside its own box or turns into cards) and no badge squeezed into a column of
single characters, in real Chromium. Screenshots: test-output/screenshots/phone-list-*.png."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from connector import create_app
from connector.auth.tokens import ApiTokens
from connector.conversations import State
from connector.runtime import Runtime
from connector.sandbox.http import serving
from connector.store import dead_letters, keys, threads
from connector.store.boxes import Box
from tests.conftest import OPERATOR_PASSWORD, add_operator
from tests.e2e.browser.conftest import screenshot
from tests.operations.blending_data import make_section, seed_agents

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PHONE = {"width": 375, "height": 800}
LIST_PAGES = {
    "home": "/admin/",
    "integrations": "/admin/integrations/",
    "assets": "/admin/assets/",
    "rules": "/admin/rules/",
    "flows": "/admin/flows/",
    "flow": "/admin/flows/whatsapp-vip-intake",
    "new-flow": "/admin/flows/new",
    "entry-point": "/admin/integrations/Desk/entry-points/Customer-care-in-Spanish",
    "entry-point-form": "/admin/integrations/Desk/entry-points/Customer-care-in-Spanish/edit",
    "templates": "/admin/templates/",
    "conversations": "/admin/conversations/",
    "agents": "/admin/agents/",
    "finesse": "/admin/finesse/",
    "dead-letters": "/admin/dead-letters/",
    "transfer": "/admin/transfer/",
    "accounts": "/admin/accounts/",
}

# Lines of text in an element: its content height over its line height.
LINES = """el => {
  const s = getComputedStyle(el);
  const inner = el.getBoundingClientRect().height - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom)
    - parseFloat(s.borderTopWidth) - parseFloat(s.borderBottomWidth);
  return Math.round(inner / parseFloat(s.lineHeight));
}"""


def seed(runtime: Runtime) -> None:
    """What makes the lists long and wide: a UI-made flow and a rule that runs it (with them the rules and
    flows tables get their Edit / Delete column), a queue with long business hours (its page and form),
    conversations with long names and first messages, dead letters, a Finesse section with agents, an
    API token."""
    runtime.overrides.save(
        "flows",
        {
            "name": "whatsapp-vip-intake",
            "steps": [
                {
                    "name": "order-number-of-the-customer",
                    "type": "ask",
                    "question": "ask_order_number",
                    "retry": "ask_order_number_retry",
                    "answer": "regex",
                    "pattern": "[A-Za-z]{2}[0-9]{6}(-[0-9]{2})?",
                    "attribute": "order_number_given_by_the_customer",
                },
                {
                    "name": "topic",
                    "type": "ask",
                    "question": "ask_topic",
                    "answer": "choices",
                    "choices": ["Quote", "Order status", "Something else entirely"],
                    "attribute": "topic",
                },
            ],
        },
        runtime.provisioned,
        create=True,
    )
    runtime.overrides.save(
        "rules",
        {
            "name": "whatsapp-vip-customers-after-hours",
            "channel": "whatsapp",
            "event": "incoming_message",
            "asset": "test-whatsapp",
            "action": {"forward_to": "TestRouter", "entry_point": "Sales", "flow": "whatsapp-vip-intake"},
        },
        runtime.provisioned,
        create=True,
    )
    runtime.overrides.save(
        "integrations",
        {
            "name": "Desk",
            "type": "hybrid",
            "entry_points": [
                {
                    "name": "Customer-care-in-Spanish",
                    "hours": {
                        "time_zone": "America/Argentina/ComodRivadavia",
                        "weekly": {"mon": ["08:00-12:30", "13:30-17:45", "19:00-23:59"], "sat": ["22:00-02:00"]},
                        "holidays": [
                            {"date": "2026-12-24", "name": "Nochebuena, cierre anticipado", "hours": ["09:00-13:00"]}
                        ],
                    },
                }
            ],
        },
        runtime.provisioned,
        create=True,
    )
    make_section(runtime, publisher="https://finesse-publisher.a-rather-long-domain-name.example.com:8445")
    seed_agents(runtime)
    now = time.time()
    for i in range(12):
        thread = threads.Thread(
            id=f"phone-{i:02d}",
            channel="messenger" if i % 2 else "whatsapp",
            asset="test-messenger" if i % 2 else "test-whatsapp",
            customer=f"60244176834912{i:02d}" if i % 2 else f"155512300{i:02d}",
            state=(State.QUEUED, State.ASSIGNED, State.CLOSED)[i % 3],
            integration="TestRouter",
            entry_point="Support",
            agent_name="Alexandra Konstantinopoulou" if i % 3 == 1 else None,
            details={"profile_name": f"Maximiliana Fernández-Oyelaran {i}"},
            first_text="Hello, my order 4411-8812-3321 never arrived and the tracking page says nothing at all",
        )
        threads.save(runtime.redis, thread)
        runtime.redis.zadd(keys.threads_by_activity(), {thread.id: now - i})
        dead_letters.add(
            runtime.redis, thread.id, Box.OUT, b'{"kind": "text"}', "WhatsApp refused: re-engagement window closed"
        )
    ApiTokens(runtime.redis).issue("admin", "wallboard in the contact-center supervisors' room")
    runtime.config_changed()


@pytest.fixture
def phone(browser, settings, redis, operator_password_hash) -> Iterator[object]:
    """The web app alone on loopback (plain http: its cookies are not Secure) with `seed`'s rows, and
    a logged-in admin on a 375 x 800 touch screen."""
    runtime = Runtime(replace(settings, public_base_url="http://127.0.0.1"))
    seed(runtime)
    add_operator(redis, "admin", "admin", operator_password_hash)
    with serving(create_app(runtime=runtime)) as server:
        context = browser.new_context(base_url=server.url, viewport=PHONE, is_mobile=True, has_touch=True)
        context.set_default_timeout(10_000)
        # Layout only: no live-update streams, which would hold the server's threads past the test.
        context.route("**/admin/live/**", lambda route: route.abort())
        page = context.new_page()
        page.goto("/admin/login")
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill(OPERATOR_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/admin/")
        yield page
        context.close()


def test_every_list_page_fits_a_375_px_phone(phone):
    wrong = []
    badges = 0
    for name, path in LIST_PAGES.items():
        phone.goto(path)
        # Against the screen, not window.innerWidth: a mobile browser widens its layout viewport to
        # fit content that overflows, which would hide the very overflow this looks for.
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            wrong.append(f"{path}: {width} px of content on a {PHONE['width']} px screen")
        found = phone.eval_on_selector_all(".badge", f"els => els.map(el => [el.innerText, ({LINES})(el)])")
        badges += len(found)
        wrong += [f"{path}: badge {text!r} takes {lines} lines" for text, lines in found if lines > 2]
        screenshot(phone, f"phone-list-{name}")
    assert not wrong, "\n".join(wrong)
    assert badges >= 10, "the seeded pages show their 'defined in' badges"


def test_the_rules_source_badge_stays_on_one_or_two_lines(phone):
    phone.goto("/admin/rules/")
    badge = phone.locator("#rule-sms-sales .badge.readonly")
    assert badge.inner_text() == "defined in tests/config/channels.yaml"
    assert phone.locator("#rule-whatsapp-vip-customers-after-hours").get_by_role("link", name="Edit").count() == 1
    for width in (PHONE["width"], 1280):
        phone.set_viewport_size({"width": width, "height": PHONE["height"]})
        lines = badge.evaluate(LINES)
        assert 1 <= lines <= 2, f"at {width} px the badge takes {lines} lines"


def test_conversations_are_cards_with_labels_on_a_phone(phone):
    phone.goto("/admin/conversations/?q=maximiliana")
    rows = phone.locator("#conversations > tr")
    assert rows.count() == 12
    first = rows.first
    box = first.bounding_box()
    assert box is not None and box["width"] <= PHONE["width"], "a card, not a six-column row"
    assert first.locator("td.customer").evaluate("el => getComputedStyle(el, '::before').content") == '"Customer"'
    assert "Maximiliana Fernández-Oyelaran 0" in first.inner_text()
    screenshot(phone, "phone-list-conversations-search")
