"""The agent desktop page (`GET /agent/`) with the Flask test client: it renders, its script and
stylesheet are served, it has the login form, and every control has an accessible name. What the
page does in a browser is tests/e2e/browser/test_agent_desktop.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser

import pytest
import yaml

from connector import create_app
from connector.backends.hybrid import desktop
from connector.runtime import Runtime

VOID = {"meta", "link", "input", "br", "img", "hr", "source", "wbr", "area", "col", "embed", "track"}


class Control:
    def __init__(self, tag: str, attrs: dict[str, str], in_template: bool) -> None:
        self.tag = tag
        self.attrs = attrs
        self.in_template = in_template
        self.text = ""

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs}>{self.text!r}"


class Page(HTMLParser):
    """The page's controls, labels and ids, the ones inside <template> included."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.controls: list[Control] = []
        self.labels: dict[str, str] = {}  # for / data-for → label text
        self.wrapping: list[Control] = []  # controls inside a <label>
        self.ids: set[str] = set()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.open_controls: list[Control] = []
        self.open_labels: list[tuple[str, list[str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        in_template = any(t == "template" for t, _ in self.stack)
        for key in ("id", "data-id"):
            if key in attrs:
                self.ids.add(attrs[key])
        if tag in ("input", "select", "textarea", "button", "summary"):
            control = Control(tag, attrs, in_template)
            self.controls.append(control)
            if self.open_labels:
                self.wrapping.append(control)
            if tag not in VOID:
                self.open_controls.append(control)
        if tag == "label":
            self.open_labels.append((attrs.get("for") or attrs.get("data-for") or "", []))
        if tag not in VOID:
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        while self.stack:
            opened, _ = self.stack.pop()
            if opened == tag:
                break
        if tag == "label" and self.open_labels:
            target, words = self.open_labels.pop()
            if target:
                self.labels[target] = " ".join("".join(words).split())
        if tag in ("select", "textarea", "button", "summary") and self.open_controls:
            self.open_controls.pop()

    def handle_data(self, data: str) -> None:
        for control in self.open_controls:
            control.text += data
        for _target, words in self.open_labels:
            words.append(data)

    def name_of(self, control: Control) -> str:
        """The accessible name as a browser would compute it for these simple cases."""
        attrs = control.attrs
        if attrs.get("aria-label"):
            return attrs["aria-label"]
        if control.tag in ("button", "summary"):
            return " ".join(control.text.split())
        key = attrs.get("id") or attrs.get("data-id") or ""
        if key and key in self.labels:
            return self.labels[key]
        if control in self.wrapping:
            return "(wrapped in a label)"
        return ""


@pytest.fixture
def no_session() -> Iterator[None]:
    """The page as a browser without an agent session sees it."""
    previous = desktop.read_sessions_with(lambda: None)
    yield
    desktop.read_sessions_with(previous)  # the agent API's own, for the tests after this one


@pytest.fixture
def agent_session() -> Iterator[desktop.AgentSession]:
    """The page as an agent's browser with a cookie session sees it."""
    session = desktop.AgentSession(agent_id="local:zoe", csrf_token="csrf-token-of-zoe")
    previous = desktop.read_sessions_with(lambda: session)
    yield session
    desktop.read_sessions_with(previous)


def test_the_page_renders_with_its_script_styles_and_login_form(client, no_session):
    answer = client.get("/agent/")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    html = answer.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert 'name="viewport"' in html
    assert "<title>Agent desktop" in html
    assert 'name="csrf-token"' not in html, "no session, no token"

    script = re.search(r'<script src="([^"]+desktop\.js)"', html)
    styles = re.search(r'<link rel="stylesheet" href="([^"]+desktop\.css)"', html)
    assert script and styles
    js = client.get(script[1])
    assert js.status_code == 200 and "javascript" in js.mimetype
    assert "EventSource" in js.get_data(as_text=True)
    css = client.get(styles[1])
    assert css.status_code == 200 and css.mimetype == "text/css"
    js.close()
    css.close()

    page = Page(html)
    assert {"login-form", "login-name", "login-password", "login-submit"} <= page.ids
    assert page.labels["login-name"] == "Login"
    assert page.labels["login-password"] == "Password"
    assert 'autocomplete="current-password"' in html
    assert "<script>" not in html and " on" + "click=" not in html, "nothing inline (the CSP forbids it)"


def test_every_control_has_an_accessible_name(client, no_session):
    page = Page(client.get("/agent/").get_data(as_text=True))
    unnamed = [c for c in page.controls if not page.name_of(c)]
    assert not unnamed, unnamed
    names = {page.name_of(c) for c in page.controls}
    for expected in ("Log in", "Log out", "Ready", "Not ready", "Not ready reason", "Keyboard shortcuts"):
        assert expected in names, (expected, sorted(names))
    # In the chat and offer templates every control says which chat it is for (filled in by the script).
    in_templates = {page.name_of(c) for c in page.controls if c.in_template}
    for expected in (
        "Accept",
        "Reject",
        "Message",
        "Send",
        "File to send",
        "Send file",
        "Transfer",
        "To queue",
        "Transfer to queue",
        "To agent (agent id)",
        "Transfer to agent",
        "Close chat",
        "Wrap-up",
    ):
        assert expected in in_templates, (expected, sorted(in_templates))
    # Every label inside a template points at a control of the template.
    assert set(page.labels) <= page.ids


def test_the_live_regions_and_shortcuts_are_on_the_page(client, no_session):
    html = client.get("/agent/").get_data(as_text=True)
    assert 'id="announce" class="sr-only" aria-live="assertive"' in html  # new offers
    assert 'role="log" aria-live="polite"' in html  # each chat's messages
    assert 'id="notices" class="notices" role="status" aria-live="polite"' in html
    for key in ("<kbd>A</kbd>", "<kbd>R</kbd>", "<kbd>O</kbd>", "<kbd>Esc</kbd>", "<kbd>?</kbd>"):
        assert key in html
    assert 'id="single-keys"' in html  # single-key shortcuts can be turned off (WCAG 2.1.4)


def test_with_a_session_the_page_carries_its_csrf_token_and_the_queues(client, agent_session):
    html = client.get("/agent/").get_data(as_text=True)
    assert '<meta name="csrf-token" content="csrf-token-of-zoe">' in html
    assert 'data-session="1"' in html
    assert '<option value="Support"></option>' in html  # tests/config: TestRouter's queues
    assert 'id="login-form"' in html, "a full page keeps the form for after a logout"


def test_embedded_hides_the_chrome_and_with_a_session_the_login_form(client, agent_session):
    html = client.get("/agent/?embedded=1").get_data(as_text=True)
    assert '<body class="desktop embedded"' in html
    assert 'data-embedded="1"' in html
    assert 'id="login-form"' not in html


def test_embedded_without_a_session_still_offers_the_login_form(client, no_session):
    html = client.get("/agent/?embedded=1").get_data(as_text=True)
    assert '<body class="desktop embedded"' in html
    assert 'id="login-form"' in html
    assert "<option value=" not in html, "no queue names without a session"


@pytest.fixture
def desk_client(settings, redis, tmp_path):
    """A test client of an app with one Hybrid Chat integration and a local agent, zoe."""
    folder = tmp_path / "desk-config"
    folder.mkdir()
    queues = [{"name": "Support"}, {"name": "Billing"}]
    config = {
        "integrations": [{"name": "Desk", "type": "hybrid", "entry_points": queues}],
        "hybrid_agents": [{"login": "zoe", "name": "Zoe", "password": "zoe-password-1"}],
    }
    (folder / "desk.yaml").write_text(yaml.safe_dump(config))
    app = create_app(runtime=Runtime(replace(settings, config_dir=folder, public_base_url="http://127.0.0.1")))
    app.config["TESTING"] = True
    return app.test_client()


def test_after_a_login_the_page_carries_the_sessions_csrf_token_and_leaves_the_form_out_when_embedded(desk_client):
    answer = desk_client.post("/agent/login", json={"login": "zoe", "password": "zoe-password-1"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    token = answer.get_json()["csrf_token"]
    html = desk_client.get("/agent/").get_data(as_text=True)
    assert f'<meta name="csrf-token" content="{token}">' in html
    assert '<option value="Billing"></option>' in html and '<option value="Support"></option>' in html
    embedded = desk_client.get("/agent/?embedded=1").get_data(as_text=True)
    assert 'id="login-form"' not in embedded and f'content="{token}"' in embedded

    desk_client.post("/agent/logout", headers={"X-CSRF-Token": token})
    html = desk_client.get("/agent/").get_data(as_text=True)
    assert 'name="csrf-token"' not in html and "<option value=" not in html
