"""The agent desktop (`/agent/`) in real Chromium, by keyboard alone, over the real agent API.

An agent logs in, goes READY, a customer writes (a signed in-app webhook, drained in process as
tests/backends/hybrid/test_flow.py does), the offer appears, the agent accepts it with the keyboard,
replies, sees the customer typing and their next message, and closes with a wrap-up. Then: 375 px
over the long-poll fallback (no EventSource) with a voice call, an offer that rings out and two
chats; files both ways, typing, a transfer, a customer who leaves and a rejected offer; the Finesse
gadget's embedded page. Screenshots go to test-output/screenshots/agent-desktop-*.png."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from playwright.sync_api import expect

from connector import create_app
from connector.backends.hybrid import stream
from connector.backends.hybrid.agents import local_agent_id
from connector.backends.hybrid.router import expire_offers
from connector.backends.hybrid.state import HybridState
from connector.channels.base import thread_id_for
from connector.relay.drain import drain_thread
from connector.runtime import Runtime
from connector.sandbox.http import LoopbackServer, serving
from connector.sandbox.signing import inapp_headers
from connector.store import keys, threads
from tests.e2e.browser.conftest import screenshot
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ASSET = "desk-app"
SECRET = "desk-inapp-secret-0123456789"
LOGIN, PASSWORD, NAME = "zoe", "zoe-password-1", "Zoe"
CUSTOMER_NAME = "Ann Example"
PHONE_WIDTH = 375
CUSTOMER_FILE = b"%PDF-1.4 the customer's floor plan"


class Customer:
    """The customer's app: receives what the connector delivers (in-app channel) on loopback."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["REQUEST_METHOD"] == "GET":  # the customer's own files, fetched by the connector
            start_response("200 OK", [("Content-Type", "application/pdf")])
            return [CUSTOMER_FILE]
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        with self.lock:
            self.received.append(json.loads(body or b"{}"))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok": true}']

    def texts(self) -> list[str]:
        with self.lock:
            return [r.get("text") or "" for r in self.received]

    def types(self) -> list[str]:
        with self.lock:
            return [r.get("type") or "" for r in self.received]


@dataclass
class Site:
    runtime: Runtime
    url: str
    app: Any
    customer: Customer
    customer_app_url: str
    said: list[str] = field(default_factory=list)

    def customer_says(
        self, customer: str, text: str | None, kind: str = "text", attachments: list[dict[str, Any]] | None = None
    ) -> str:
        """A signed in-app webhook, then the thread's drain in this process (queue, route, deliver)."""
        message_id = f"m-{len(self.said) + 1}-{time.time_ns()}"
        self.said.append(message_id)
        payload: dict[str, Any] = {
            "message_id": message_id,
            "customer": {"id": customer, "name": CUSTOMER_NAME, "email": "ann@example.com", "locale": "en"},
            "type": kind,
            "sent_at": time.time(),
        }
        if text is not None:
            payload["text"] = text
        if attachments:
            payload["attachments"] = attachments
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **inapp_headers(SECRET, body)}
        answer = self.app.test_client().post(f"/webhooks/inapp/{ASSET}", data=body, headers=headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        thread_id = thread_id_for("inapp", ASSET, customer)
        self.drain(thread_id)
        return thread_id

    def drain(self, thread_id: str) -> None:
        drain_thread(thread_id, self.runtime)


def write_config(folder, delivery_url: str):
    config = {
        "integrations": [
            {
                "name": "Desk",
                "type": "hybrid",
                "entry_points": [
                    {"name": "Support", "offer_timeout_seconds": 60},
                    {"name": "Billing", "priority": 2},
                ],
            }
        ],
        "hybrid_agents": [{"login": LOGIN, "name": NAME, "password": PASSWORD, "max_chats": 3}],
        "assets": [
            {"name": ASSET, "channel": "inapp", "app_id": "desk", "secret": SECRET, "delivery_url": delivery_url}
        ],
        "rules": [
            {
                "name": "desk",
                "channel": "inapp",
                "event": "incoming_message",
                "asset": ASSET,
                "action": {"forward_to": "Desk", "entry_point": "Support"},
            }
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "desk.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


@pytest.fixture
def site(settings, redis, tmp_path) -> Iterator[Site]:
    """The web app alone on loopback (plain http: its cookies are not Secure), on a configuration with
    one Hybrid Chat integration, a local agent and an in-app asset whose app is `Customer`."""
    customer = Customer()
    app_server = LoopbackServer(customer, name="customer-app").start()
    config_dir = write_config(tmp_path / "desk-config", f"{app_server.url}/deliver")
    # sandbox: the connector fetches the customer's files from loopback, as it would from the app's host.
    runtime = Runtime(replace(settings, config_dir=config_dir, public_base_url="http://127.0.0.1", sandbox=True))
    app = create_app(runtime=runtime)
    try:
        with serving(app) as server:
            yield Site(runtime, server.url, app, customer, app_server.url)
            # The page is closed, but its last long poll or event stream waits on in the server until
            # an event comes (a stream's first write after the close still succeeds; the second
            # fails): two now, so the server stops at once instead of when the waits run out.
            for _ in range(2):
                stream.publish(runtime.redis, local_agent_id(LOGIN), "note", text="the test is over")
                time.sleep(0.2)
    finally:
        app_server.stop()


@pytest.fixture
def open_desktop(browser, site) -> Iterator[Any]:
    """open_desktop(**context options) → a page on the site in a fresh browser context; every one is
    closed before the site stops, so no event stream keeps the server waiting."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(**options: Any) -> Any:
        opened = browser.new_context(base_url=site.url, **options)
        opened.set_default_timeout(10_000)
        contexts.append(opened)
        page = opened.new_page()
        page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                errors.append(message.text)
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )
        return page

    yield make
    for opened in contexts:
        opened.close()
    time.sleep(0.3)  # the browser lets go of its connections just after
    assert not errors, errors


def focused(locator) -> bool:
    return bool(locator.evaluate("el => el === document.activeElement"))


def tab_to(page, locator, limit: int = 60, backwards: bool = False) -> None:
    """Press Tab until `locator` has the focus, as a keyboard user would."""
    for _ in range(limit):
        if focused(locator):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    expect(locator).to_be_focused()


def log_in_by_keyboard(page, screenshot_as: str | None = None) -> None:
    page.goto("/agent/")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'login-name'")
    if screenshot_as:
        screenshot(page, screenshot_as)
    page.keyboard.type(LOGIN)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#desk")).to_be_visible()
    expect(page.locator("#agent-name")).to_have_text(NAME)


def go_ready(page) -> None:
    expect(page.locator("#chat-state")).to_have_text("Not ready")
    tab_to(page, page.get_by_role("button", name="Ready", exact=True))
    page.keyboard.press("Enter")
    expect(page.locator("#chat-state")).to_have_text("Ready")


def test_an_agent_takes_a_chat_from_offer_to_wrap_up_by_keyboard_alone(open_desktop, site):
    page = open_desktop(viewport={"width": 1280, "height": 900})
    log_in_by_keyboard(page, screenshot_as="agent-desktop-login")
    expect(page.locator("#connection")).to_have_text("Live")
    go_ready(page)

    thread_id = site.customer_says("cust-1", "Hello, my router is broken")
    chat_id = threads.load(site.runtime.redis, thread_id).remote_id
    offer = page.locator(f'.offer[data-chat="{chat_id}"]')
    expect(offer).to_be_visible()
    expect(offer).to_contain_text(CUSTOMER_NAME)
    expect(offer.locator(".countdown")).to_contain_text("s left to accept")
    expect(page.locator("#announce")).to_contain_text(f"New chat offer from {CUSTOMER_NAME}")
    screenshot(page, "agent-desktop-offer")

    page.keyboard.press("o")
    expect(offer).to_be_focused()
    page.keyboard.press("a")
    message = page.get_by_label(f"Message with {CUSTOMER_NAME}")
    expect(message).to_be_focused()
    expect(offer).to_have_count(0)
    chat = page.locator(f'.chat[data-chat="{chat_id}"]')
    transcript = chat.get_by_role("log")
    expect(transcript).to_contain_text("Hello, my router is broken")
    assert HybridState(site.runtime.redis).chat(chat_id).state == "active"

    page.keyboard.type("Let me check that")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("for you.")
    page.keyboard.press("Enter")
    expect(transcript).to_contain_text("Let me check that\nfor you.")
    expect(message).to_have_value("")
    site.drain(thread_id)
    assert "Let me check that\nfor you." in site.customer.texts()

    site.customer_says("cust-1", None, kind="typing_start")
    expect(chat.locator(".typing")).to_have_text(f"{CUSTOMER_NAME} is typing…")
    site.customer_says("cust-1", "Thanks! It is the blue one.")
    expect(transcript).to_contain_text("Thanks! It is the blue one.")
    expect(chat.locator(".typing")).to_have_text("")
    tab_to(page, chat.locator("summary", has_text="Customer details"), backwards=True)
    page.keyboard.press("Enter")
    expect(chat.locator(".customer-info")).to_contain_text("ann@example.com")
    screenshot(page, "agent-desktop-chat")

    tab_to(page, chat.locator("summary", has_text="Close chat"))
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(chat.get_by_label("Wrap-up")).to_be_focused()
    page.keyboard.type("Router replaced")
    page.keyboard.press("Tab")
    expect(chat.get_by_role("button", name=f"Close chat with {CUSTOMER_NAME}")).to_be_focused()
    page.keyboard.press("Enter")
    expect(chat).to_have_count(0)
    expect(page.get_by_text("No open chats.")).to_be_visible()
    closed = HybridState(site.runtime.redis).chat(chat_id)
    assert closed.state == "closed" and closed.wrap_up == "Router replaced"
    site.drain(thread_id)
    assert threads.load(site.runtime.redis, thread_id).state.value == "closed"


def test_at_375_px_over_long_polling_one_chat_at_a_time(open_desktop, site):
    redis = site.runtime.redis
    agent = local_agent_id(LOGIN)
    page = open_desktop(viewport={"width": PHONE_WIDTH, "height": 812}, is_mobile=True, has_touch=True)
    page.add_init_script("delete window.EventSource")  # the long-poll fallback
    log_in_by_keyboard(page)
    expect(page.locator("#connection")).to_have_text("Live (polling)")
    go_ready(page)

    # Media blending holds the agent on a voice call, then lets go.
    redis.sadd(keys.chat_interrupted(), agent)
    stream.publish(redis, agent, "state_changed", chat_state="INTERRUPTED", voice_state="TALKING")
    expect(page.locator("#blend-notice")).to_have_text("On a call: no chat offers until it ends")
    expect(page.locator("#chat-state")).to_have_text("Interrupted: on a call")
    screenshot(page, "agent-desktop-phone-on-a-call")
    redis.srem(keys.chat_interrupted(), agent)
    stream.publish(redis, agent, "state_changed", chat_state="READY", voice_state="READY")
    expect(page.locator("#blend-notice")).to_be_hidden()

    first = threads.load(redis, site.customer_says("cust-2", "First question")).remote_id
    expect(page.locator(f'.offer[data-chat="{first}"]')).to_be_visible()
    page.keyboard.press("o")
    page.keyboard.press("a")
    first_chat = page.locator(f'.chat[data-chat="{first}"]')
    expect(first_chat.get_by_label(f"Message with {CUSTOMER_NAME}")).to_be_focused()
    page.keyboard.press("Escape")
    expect(first_chat).to_be_focused()

    # An offer left to ring out goes away with a notice, and the agent is NOT_READY (RONA).
    second = threads.load(redis, site.customer_says("cust-3", "Second question")).remote_id
    offer = page.locator(f'.offer[data-chat="{second}"]')
    expect(offer).to_be_visible()
    screenshot(page, "agent-desktop-phone-offer")
    assert expire_offers(redis, site.runtime.config, now=time.time() + 61) == [second]
    expect(offer).to_have_count(0)
    expect(page.locator("#notices")).to_contain_text(f"Offer from {CUSTOMER_NAME} withdrawn (not answered in time)")
    expect(page.locator("#chat-reason")).to_have_text("(an offer rang out)")
    tab_to(page, page.get_by_role("button", name="Ready", exact=True), backwards=True)
    page.keyboard.press("Enter")
    expect(offer).to_be_visible()  # offered again, to the one agent there is
    page.keyboard.press("o")
    page.keyboard.press("a")
    second_chat = page.locator(f'.chat[data-chat="{second}"]')
    expect(second_chat).to_be_visible()
    expect(first_chat).to_be_hidden()  # one chat open on a phone
    expect(page.get_by_role("navigation", name="Your chats").get_by_role("button")).to_have_count(2)

    width = page.evaluate("() => document.documentElement.scrollWidth")
    screenshot(page, "agent-desktop-phone")
    assert width <= PHONE_WIDTH + 1, f"{width} px of content on a {PHONE_WIDTH} px screen"

    page.keyboard.press("Escape")
    page.keyboard.press("1")  # the first chat's message box
    expect(first_chat).to_be_visible()
    expect(second_chat).to_be_hidden()
    expect(first_chat.get_by_label(f"Message with {CUSTOMER_NAME}")).to_be_focused()

    page.set_viewport_size({"width": 1280, "height": 900})  # a wide screen: the chats side by side
    expect(first_chat).to_be_visible()
    expect(second_chat).to_be_visible()
    expect(page.get_by_role("navigation", name="Your chats")).to_be_hidden()
    screenshot(page, "agent-desktop-two-chats")


def test_files_both_ways_typing_a_transfer_a_customer_who_leaves_and_a_rejected_offer(open_desktop, site):
    page = open_desktop(viewport={"width": 1280, "height": 900})
    log_in_by_keyboard(page)
    go_ready(page)
    plan = {"url": f"{site.customer_app_url}/files/plan.pdf", "mime_type": "application/pdf", "name": "plan.pdf"}
    thread_id = site.customer_says("cust-4", "Here is the plan", kind="attachment", attachments=[plan])
    chat_id = threads.load(site.runtime.redis, thread_id).remote_id
    expect(page.locator(f'.offer[data-chat="{chat_id}"]')).to_be_visible()
    page.keyboard.press("o")
    page.keyboard.press("a")
    chat = page.locator(f'.chat[data-chat="{chat_id}"]')
    message = chat.get_by_label(f"Message with {CUSTOMER_NAME}")
    expect(message).to_be_focused()

    # The customer's file is a link the agent's session may open.
    link = chat.get_by_role("log").get_by_role("link", name="plan.pdf")
    expect(link).to_be_visible()
    fetched = page.request.get(link.get_attribute("href"))
    assert fetched.status == 200 and fetched.body() == CUSTOMER_FILE

    # Typing: on at the first key, off after 3 s without one; the message goes when Enter is pressed.
    page.keyboard.type("One moment")

    def customer_got(kind: str) -> bool:
        site.drain(thread_id)
        return kind in site.customer.types()

    wait_for(lambda: customer_got("typing_start"), timeout=5, what="typing on at the customer's")
    wait_for(lambda: customer_got("typing_stop"), timeout=8, what="typing off after 3 s idle")
    page.keyboard.press("Enter")
    expect(chat.get_by_role("log")).to_contain_text("One moment")
    site.drain(thread_id)
    assert "One moment" in site.customer.texts()

    # The agent's file: chosen (the one thing a test cannot do by keyboard: the OS file dialog), sent by keyboard.
    chat.get_by_label(f"File to send with {CUSTOMER_NAME}").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"the agent's notes"}
    )
    tab_to(page, chat.get_by_role("button", name=f"Send file with {CUSTOMER_NAME}"))
    page.keyboard.press("Enter")
    expect(chat.get_by_role("log").get_by_role("link", name="notes.txt")).to_be_visible()
    site.drain(thread_id)
    with site.customer.lock:
        files = [a for r in site.customer.received if r.get("type") == "attachment" for a in r["attachments"]]
    assert [f["name"] for f in files] == ["notes.txt"], files
    signed = urlsplit(files[0]["url"])  # the signed link the customer's app fetches
    served = site.app.test_client().get(f"{signed.path}?{signed.query}")
    assert served.status_code == 200 and served.data == b"the agent's notes"

    # Transfer to the Billing queue by keyboard; Zoe is the only agent, so it comes back as an offer.
    tab_to(page, chat.locator("summary", has_text="Transfer"))
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(chat.get_by_label("To queue")).to_be_focused()
    page.keyboard.type("Billing")
    page.keyboard.press("Enter")
    expect(chat).to_have_count(0)
    expect(page.locator("#notices")).to_contain_text("went to queue Billing")
    offer = page.locator(f'.offer[data-chat="{chat_id}"]')
    expect(offer).to_contain_text("Billing")
    page.keyboard.press("o")
    page.keyboard.press("a")
    expect(chat.get_by_label(f"Message with {CUSTOMER_NAME}")).to_be_focused()
    site.drain(thread_id)

    # The customer leaves: the chat says so and can be dismissed.
    site.customer_says("cust-4", None, kind="close")
    expect(chat.get_by_text("The customer left the chat.")).to_be_visible()
    expect(chat.get_by_label(f"Message with {CUSTOMER_NAME}")).to_be_hidden()  # nothing left to write
    screenshot(page, "agent-desktop-customer-left")
    tab_to(page, chat.get_by_role("button", name=f"Dismiss this chat with {CUSTOMER_NAME}"))
    page.keyboard.press("Enter")
    expect(chat).to_have_count(0)

    # R rejects the focused offer.
    other = threads.load(site.runtime.redis, site.customer_says("cust-5", "Anyone there?")).remote_id
    expect(page.locator(f'.offer[data-chat="{other}"]')).to_be_visible()
    page.keyboard.press("o")
    page.keyboard.press("r")
    expect(page.locator("#notices")).to_contain_text(f"You rejected the chat from {CUSTOMER_NAME}")


def test_embedded_in_finesse_the_desktop_has_no_chrome_and_no_login_form(open_desktop, site):
    # The gadget's frame without the cookie: the token comes in the fragment and the API is called
    # with it (Bearer), the events by long polling (EventSource sends no header).
    login = site.app.test_client().post("/agent/login", json={"login": LOGIN, "password": PASSWORD})
    assert login.status_code == 200, login.get_data(as_text=True)
    token = login.get_json()["token"]
    page = open_desktop(viewport={"width": 400, "height": 640})
    page.goto(f"/agent/?embedded=1#token={token}")
    expect(page.locator("#desk")).to_be_visible()
    assert token not in page.url, "the token leaves the address at once"
    expect(page.locator("#top")).to_be_hidden()
    expect(page.locator("#login-view")).to_be_hidden()
    expect(page.locator("#connection")).to_have_text("Live (polling)")
    go_ready(page)
    thread_id = site.customer_says("cust-6", "Hello from the gadget")
    chat_id = threads.load(site.runtime.redis, thread_id).remote_id
    expect(page.locator(f'.offer[data-chat="{chat_id}"]')).to_be_visible()
    screenshot(page, "agent-desktop-embedded")

    # With the cookie of a login in this browser, the embedded page is made without the login form.
    other = open_desktop(viewport={"width": 400, "height": 640})
    log_in_by_keyboard(other)
    other.goto("/agent/?embedded=1")
    expect(other.locator("#desk")).to_be_visible()
    expect(other.locator("#top")).to_be_hidden()
    expect(other.locator("#login-form")).to_have_count(0)
    expect(other.locator(f'.offer[data-chat="{chat_id}"]')).to_be_visible()
