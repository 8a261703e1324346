"""The Agents page: each agent's states as media blending keeps them, the last sync and its outcome,
and "Sync now" for editors (a plain form with its CSRF token, no JavaScript)."""

from __future__ import annotations

import html
import re

from connector.store import keys
from tests.operations.blending_data import make_section, seed_agents

URL = "/admin/agents/"


def text(answer) -> str:
    return html.unescape(answer.get_data(as_text=True))


def row(page: str, agent_id: str) -> str:
    found = re.search(rf'<tr id="agent-{agent_id}">(.*?)</tr>', page, re.S)
    assert found, f"no row for agent {agent_id}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))


def test_the_page_shows_each_agents_states_and_the_last_sync(operator, runtime):
    make_section(runtime)
    seed_agents(runtime)
    page = text(operator("viewer").get(URL))
    alice, bob = row(page, "1001"), row(page, "1002")
    for expected in ("alice", "Alice Archer", "Support", "NOT_READY", "reason id 12", "ACTIVE", " 2 ", "yes"):
        assert expected in alice, expected
    assert 'team Support is in "team:Support"' in alice
    assert "bob" in bob and "Sales" in bob and "READY" in bob
    assert 'no team Sales is not in "team:Support"' in bob, "not chat-enabled, and why"
    assert "400 Invalid State" in bob
    assert re.search(r"Held NOT_READY.*Chat-enabled.*Logged in to the connector.*Last error", page, re.S)
    assert "2026-09-21 14:13:20 UTC" in page, "when the last sync ran"
    assert "2 agents (2 added, 0 updated, 0 removed), 1 chat-enabled" in page
    assert "every 120 s" in page and "team:Support" in page


def test_sync_now_is_for_editors_and_asks_the_listener(operator, runtime):
    make_section(runtime)
    assert "Sync now" not in text(operator("viewer").get(URL))
    editor = operator("editor")
    assert "Sync now" in text(editor.get(URL))

    assert editor.post(f"{URL}sync").status_code == 400, "no CSRF token, no sync"
    assert runtime.redis.get(keys.agent_sync_requested()) is None
    answer = editor.post(f"{URL}sync", data={"csrf_token": editor.csrf})
    assert answer.status_code == 302
    assert runtime.redis.get(keys.agent_sync_requested()) is not None
    page = text(editor.get(URL))
    assert "Agent sync requested" in page and "waiting for the listener" in page

    viewer = operator("viewer", name="watcher")
    assert viewer.post(f"{URL}sync", data={"csrf_token": viewer.csrf}).status_code == 403


def test_without_a_finesse_section_the_page_says_so_and_offers_no_sync(operator, runtime):
    editor = operator("editor")
    page = text(editor.get(URL))
    assert "Media blending is not configured" in page and "Sync now" not in page
    assert "No agents yet" in page
    editor.post(f"{URL}sync", data={"csrf_token": editor.csrf})
    assert "No sync: media blending is not configured" in text(editor.get(URL))
    assert runtime.redis.get(keys.agent_sync_requested()) is None


def test_a_failed_sync_shows_its_error(operator, runtime):
    make_section(runtime)
    seed_agents(runtime)
    runtime.redis.hset(keys.agent_sync_status(), mapping={"error": "no Finesse node is in service"})
    assert "failed: no Finesse node is in service" in text(operator("viewer").get(URL))


def test_find_narrows_the_list(operator, runtime):
    make_section(runtime)
    seed_agents(runtime)
    page = text(operator("viewer").get(URL, query_string={"q": "sales"}))
    assert 'id="agent-1002"' in page and 'id="agent-1001"' not in page
    assert "1 of 2 agent(s) match" in page


def test_the_menu_leads_to_agents_and_finesse(operator):
    page = text(operator("viewer").get("/admin/"))
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', page, re.S).group(1)
    assert 'href="/admin/agents/"' in nav and ">Agents<" in nav
    assert 'href="/admin/finesse/"' in nav and ">Finesse<" in nav
