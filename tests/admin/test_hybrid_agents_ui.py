"""The Agents page's Hybrid Chat settings: each Finesse agent's skills and most chats with an edit form,
and "Local agents" with "Add a local agent" for a deployment without Finesse. A password is hashed,
shown only as "set" / "not set", kept when left empty; errors inline; viewers change nothing;
provisioned logins read-only."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace

from werkzeug.security import check_password_hash

from connector.config.model import HybridAgent
from connector.config.overrides import AGENTS
from connector.store import keys
from tests.operations.blending_data import make_section, seed_agents

URL = "/admin/agents/"
PASSWORD = "zoe-password-1"


def text(answer) -> str:
    return html.unescape(answer.get_data(as_text=True))


def flat(fragment: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))


def row(page: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{row_id}">(.*?)</tr>', page, re.S)
    assert found, f"no row {row_id}"
    return flat(found.group(1))


def stored(runtime, key: str = "zoe") -> dict:
    return json.loads(runtime.redis.hget(keys.config_items(AGENTS), key))


def local_form(csrf: str, **overrides: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf,
        "login": "zoe",
        "name": "Zoe",
        "password": PASSWORD,
        "skills": "english",
        "max_chats": "",
    }
    form.update(overrides)
    return form


def test_each_finesse_agent_shows_its_hybrid_chat_settings(operator, runtime):
    make_section(runtime)  # finesse.max_chats 3
    seed_agents(runtime)
    runtime.overrides.save_agent(
        {"login": "Alice", "skills": ["english", "billing"], "max_chats": 2}, runtime.provisioned
    )
    editor = operator("editor")
    page = text(editor.get(URL))
    assert "Hybrid Chat" in re.search(r'<table id="agents">.*?</thead>', page, re.S).group(0)
    alice, bob = row(page, "agent-1001"), row(page, "agent-1002")
    assert "english , billing · at most 2 chat(s)" in alice
    assert "no skills · at most 3 chat(s) (default)" in bob
    assert 'href="/admin/agents/hybrid/Alice"' in page and 'href="/admin/agents/hybrid/bob"' in page
    viewer_page = text(operator("viewer").get(URL))
    assert "/admin/agents/hybrid/" not in viewer_page and "Add a local agent" not in viewer_page


def test_a_finesse_agents_settings_are_edited_without_a_password(operator, runtime):
    make_section(runtime)
    seed_agents(runtime)
    editor = operator("editor")
    form_page = text(editor.get(f"{URL}hybrid/bob"))
    assert 'name="skills"' in form_page and 'name="max_chats"' in form_page
    assert 'name="password"' not in form_page and 'name="name"' not in form_page
    answer = editor.post(
        f"{URL}hybrid/bob", data={"csrf_token": editor.csrf, "skills": "english sales", "max_chats": "4"}
    )
    assert answer.status_code == 302
    bob = runtime.config.hybrid_agent("bob")
    assert bob.skills == ("english", "sales") and bob.max_chats == 4 and not bob.local
    assert "english , sales · at most 4 chat(s)" in row(text(editor.get(URL)), "agent-1002")


def test_errors_show_inline_and_nothing_is_saved(operator, runtime):
    make_section(runtime)
    seed_agents(runtime)
    editor = operator("editor")
    answer = editor.post(f"{URL}hybrid/bob", data={"csrf_token": editor.csrf, "skills": "ok not/ok", "max_chats": "0"})
    assert answer.status_code == 422
    page = text(answer)
    skills = re.search(r'<p class="field-error" id="skills-error">([^<]+)</p>', page)
    assert skills and skills[1].startswith("not/ok: a skill is 1-64 letters")
    assert 'id="max_chats-error"' in page and 'value="ok, not/ok"' in page
    assert runtime.config.hybrid_agent("bob") is None


def test_a_local_agent_is_added_with_a_hashed_password_shown_as_set(operator, runtime):
    editor = operator("editor")
    page = text(editor.get(URL))
    assert 'id="local-agents"' in page and "Add a local agent" in page
    form_page = text(editor.get(f"{URL}local/new"))
    for field in ("login", "name", "password", "skills", "max_chats"):
        assert f'name="{field}"' in form_page, field
    answer = editor.post(f"{URL}local/new", data=local_form(editor.csrf))
    assert answer.status_code == 302
    raw = stored(runtime)
    assert check_password_hash(raw["password_hash"], PASSWORD) and "password" not in raw
    page = text(editor.get(URL))
    zoe = row(page, "local-zoe")
    assert "zoe Zoe english 3 (default) set UI / API" in zoe
    assert PASSWORD not in page and raw["password_hash"] not in page


def test_an_edit_with_an_empty_password_keeps_it(operator, runtime):
    editor = operator("editor")
    editor.post(f"{URL}local/new", data=local_form(editor.csrf))
    before = stored(runtime)["password_hash"]
    form_page = text(editor.get(f"{URL}hybrid/ZOE"))
    assert 'id="password-state">set<' in form_page and "leave empty to keep it" in form_page
    assert before not in form_page
    answer = editor.post(f"{URL}hybrid/ZOE", data=local_form(editor.csrf, password="", name="Zoe Z", max_chats="2"))
    assert answer.status_code == 302
    after = stored(runtime)
    assert after["password_hash"] == before and after["name"] == "Zoe Z" and after["max_chats"] == 2


def test_a_local_agent_needs_a_password_and_a_free_login(operator, runtime):
    editor = operator("editor")
    answer = editor.post(f"{URL}local/new", data=local_form(editor.csrf, password=""))
    assert answer.status_code == 422
    assert re.search(r'id="password-error">a local agent needs a password<', text(answer))
    short = editor.post(f"{URL}local/new", data=local_form(editor.csrf, password="short"))
    assert short.status_code == 422 and 'id="password-error"' in text(short)
    editor.post(f"{URL}local/new", data=local_form(editor.csrf))
    taken = editor.post(f"{URL}local/new", data=local_form(editor.csrf, login="ZOE"))
    assert taken.status_code == 422 and "already exists" in text(taken)


def test_a_local_agent_is_removed(operator, runtime):
    editor = operator("editor")
    editor.post(f"{URL}local/new", data=local_form(editor.csrf))
    answer = editor.post(f"{URL}hybrid/zoe/delete", data={"csrf_token": editor.csrf}, follow_redirects=True)
    assert "Local agent zoe removed" in text(answer)
    assert runtime.config.hybrid_agent("zoe") is None


def test_a_viewer_cannot_add_edit_or_remove(operator, runtime):
    editor = operator("editor")
    editor.post(f"{URL}local/new", data=local_form(editor.csrf))
    viewer = operator("viewer")
    assert viewer.post(f"{URL}local/new", data=local_form(viewer.csrf, login="amy")).status_code == 403
    assert viewer.post(f"{URL}hybrid/zoe", data=local_form(viewer.csrf, skills="billing")).status_code == 403
    assert viewer.post(f"{URL}hybrid/zoe/delete", data={"csrf_token": viewer.csrf}).status_code == 403
    assert runtime.config.hybrid_agent("zoe").skills == ("english",) and runtime.config.hybrid_agent("amy") is None


def test_a_provisioned_agent_is_read_only_with_its_file(operator, runtime):
    zoe = HybridAgent("zoe", name="Zoe", password="from-the-environment", source="entrypoints/agents.yaml")
    runtime._config = replace(runtime.provisioned, hybrid_agents=(zoe,))
    runtime.config_changed()
    editor = operator("editor")
    page = text(editor.get(URL))
    assert "defined in entrypoints/agents.yaml" in row(page, "local-zoe")
    assert "/admin/agents/hybrid/zoe" not in page and "from-the-environment" not in page
    answer = editor.post(f"{URL}hybrid/zoe", data=local_form(editor.csrf, skills="billing"))
    assert answer.status_code == 409
    assert runtime.config.hybrid_agent("zoe") == zoe


def test_the_import_page_exports_and_imports_hybrid_agents(operator, runtime):
    runtime.overrides.save_agent(
        {"login": "zoe", "password": PASSWORD, "skills": ["english"]}, runtime.provisioned, create=True
    )
    admin = operator("admin")
    page = text(admin.get("/admin/transfer/"))
    assert "/admin/transfer/export?kind=hybrid_agents" in page
    exported = text(admin.get("/admin/transfer/export?kind=hybrid_agents&view=1"))
    assert "login: zoe" in exported and "password_hash: scrypt:" in exported and PASSWORD not in exported
    yaml_text = "hybrid_agents:\n  - {login: amy, password: amy-password-1, skills: [billing]}\n"
    preview = text(admin.post("/admin/transfer/import", data={"csrf_token": admin.csrf, "yaml": yaml_text}))
    assert "hybrid_agents <strong>amy</strong>" in preview and "added" in preview


def test_every_error_of_a_local_agent_is_in_one_answer(operator, runtime):
    """The fields, the missing password and a skill spelled unlike the queues' are told together."""
    queue = {"name": "Chat", "type": "hybrid", "entry_points": [{"name": "Support", "skills": ["English"]}]}
    runtime.overrides.save("integrations", queue, runtime.provisioned, create=True)
    runtime.config_changed()
    editor = operator("editor")
    form = local_form(editor.csrf, login="zoe/z", password="", skills="english", max_chats="0")
    answer = editor.post(f"{URL}local/new", data=form)
    assert answer.status_code == 422
    page = text(answer)
    assert re.search(r'id="login-error">a login is 1-128 characters', page)
    assert re.search(r'id="password-error">a local agent needs a password<', page)
    assert re.search(r"id=\"skills-error\">english: queue Support of Chat writes it 'English'", page)
    assert 'id="max_chats-error"' in page
    assert runtime.overrides.raw_items(AGENTS) == {}
