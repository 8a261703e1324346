"""A viewer is shown no form they cannot submit: every page a viewer can reach from the menu, with
items of every kind made in the UI (those get edit and delete buttons), opens for them and holds no
form that posts (but Log out); an admin walking the same pages still gets every form."""

from __future__ import annotations

import html
import re
from collections import deque
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from connector.store import dead_letters
from connector.store.boxes import Box
from tests.operations.blending_data import make_section, seed_agents
from tests.operations.test_conversations import seed

SKIPPED = ("/admin/static/", "/admin/logout", "/admin/transfer/export")
"""Not pages: the UI's files, the logout action, the YAML download."""
MAX_PAGES = 400


class Forms(HTMLParser):
    """The forms of a page that post, by their action (the page's own URL when they name none)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.posting: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and (found.get("method") or "get").lower() == "post":
            self.posting.append(found.get("action") or self.url)


@pytest.fixture
def everything(runtime, redis, helpdesk):
    """One UI-made item of each kind beside the provisioned ones: an ECE integration with an entry point
    (with business hours), an asset, a flow, a rule that runs it, a local agent and a Finesse agent's
    settings, the finesse: section, a conversation and a dead letter."""
    runtime.overrides.save(
        "integrations",
        {
            "name": "Lab",
            "type": "ece",
            "base_url": "http://127.0.0.1:9/ece",
            "client_key": "key",
            "client_secret": "secret",
            "callback_auth": {"type": "none"},
            "entry_points": [
                {
                    "name": "Care",
                    "id": "1001",
                    "hours": {"time_zone": "Europe/Madrid", "weekly": {"mon": ["09:00-18:00"]}},
                }
            ],
        },
        runtime.provisioned,
        create=True,
    )
    runtime.overrides.save(
        "assets",
        {
            "name": "lab-sms",
            "channel": "sms",
            "provider": "twilio",
            "number": "+15550009999",
            "account_sid": "AC" + "0" * 32,
            "auth_token": "token",
        },
        runtime.provisioned,
        create=True,
    )
    runtime.overrides.save(
        "flows",
        {
            "name": "ui-flow",
            "steps": [{"name": "topic", "type": "ask", "question": "ask_topic", "attribute": "topic"}],
        },
        runtime.provisioned,
        create=True,
    )
    runtime.overrides.save(
        "rules",
        {
            "name": "ui-rule",
            "channel": "sms",
            "event": "mo",
            "asset": "lab-sms",
            "action": {"forward_to": "Helpdesk", "entry_point": "Billing", "flow": "ui-flow"},
        },
        runtime.provisioned,
        create=True,
    )
    make_section(runtime, chat_mrd_id="2")
    seed_agents(runtime)
    runtime.overrides.save_agent(
        {"login": "zoe", "name": "Zoe", "password": "zoe-password-1", "skills": ["english"]}, runtime.provisioned
    )
    runtime.overrides.save_agent({"login": "alice", "skills": ["english"], "max_chats": 2}, runtime.provisioned)
    runtime.config_changed()
    thread_id, _ = seed(redis, 2)
    dead_letters.add(redis, thread_id, Box.IN, b'{"kind": "text", "text": "hi"}', "window closed")


def walk(browser, app) -> dict[str, list[str]]:
    """Every /admin/ page reachable from the overview through the links on the pages: page → the
    endpoints its posting forms go to. Each page must open (200) for whoever walks."""
    adapter = app.url_map.bind("localhost")
    seen: dict[str, list[str]] = {}
    queue = deque(["/admin/"])
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        answer = browser.get(url)
        assert answer.status_code == 200, f"{url} is linked but answers {answer.status_code}"
        page = answer.get_data(as_text=True)
        forms = Forms(url)
        forms.feed(page)
        seen[url] = [
            adapter.match(urlsplit(html.unescape(action)).path, method="POST")[0]
            for action in forms.posting
            if action != "/admin/logout"
        ]
        for link in re.findall(r'href="(/admin/[^"#]*)', page):
            target = html.unescape(link)
            if not target.startswith(SKIPPED) and target not in seen:
                queue.append(target)
    assert len(seen) < MAX_PAGES, "the walk ended before seeing every page"
    return seen


def test_a_viewer_is_shown_no_form_that_posts(app, operator, everything):
    pages = walk(operator("viewer"), app)
    assert len(pages) > 40, "the walk reached the item pages"
    for expected in (
        "/admin/rules/",
        "/admin/flows/",
        "/admin/flows/ui-flow",
        "/admin/agents/",
        "/admin/integrations/Lab",
        "/admin/integrations/Lab/entry-points/Care",
        "/admin/templates/en/welcome",
    ):
        assert expected in pages, f"{expected} was not reached"
    offending = {url: endpoints for url, endpoints in pages.items() if endpoints}
    assert not offending, f"forms a viewer cannot submit: {offending}"


def test_the_forms_a_viewer_cannot_reach_answer_403(operator, everything):
    viewer = operator("viewer")
    for url in (
        "/admin/rules/new",
        "/admin/rules/ui-rule/edit",
        "/admin/flows/new",
        "/admin/flows/ui-flow/edit",
        "/admin/agents/local/new",
        "/admin/agents/hybrid/zoe",
        "/admin/integrations/Lab/edit",
        "/admin/integrations/Lab/entry-points/Care/edit",
        "/admin/assets/new",
    ):
        assert viewer.get(url).status_code == 403, url


def test_an_admin_walking_the_same_pages_gets_every_form(app, operator, everything):
    pages = walk(operator("admin"), app)
    endpoints = {endpoint for found in pages.values() for endpoint in found}
    expected = {
        "admin_accounts.save_user",
        "admin_accounts.change_password",
        "admin_accounts.issue_token",
        "admin_agents.sync",
        "admin_agents.new_local",
        "admin_agents.edit_hybrid",
        "admin_agents.delete_hybrid",
        "admin_assets.edit",
        "admin_assets.delete",
        "admin_dead_letters.requeue",
        "admin_dead_letters.requeue_selected",
        "admin_dead_letters.delete",
        "admin_finesse.check",
        "admin_finesse.edit",
        "admin_finesse.delete",
        "admin_integrations.create",
        "admin_integrations.edit",
        "admin_integrations.delete",
        "admin_integrations.new_entry_point",
        "admin_integrations.edit_entry_point",
        "admin_integrations.delete_entry_point",
        "admin_integrations.save_attributes",
        "admin_integrations.refresh_all",
        "admin_integrations.refresh_one",
        "admin_rules.create",
        "admin_rules.edit",
        "admin_rules.move",
        "admin_rules.delete",
        "admin_flows.create",
        "admin_flows.edit",
        "admin_flows.delete",
        "admin_templates.edit",
        "admin_transfer.reload",
        "admin_transfer.preview",
    }
    assert expected <= endpoints, f"missing for an admin: {sorted(expected - endpoints)}"


def test_an_editor_edits_rules_templates_and_agents(operator, everything):
    editor = operator("editor")
    for url in ("/admin/rules/new", "/admin/rules/ui-rule/edit", "/admin/agents/local/new", "/admin/agents/hybrid/zoe"):
        assert editor.get(url).status_code == 200, url
    page = editor.get("/admin/templates/en/welcome").get_data(as_text=True)
    assert '<form method="post" action="/admin/templates/en/welcome"' in page
