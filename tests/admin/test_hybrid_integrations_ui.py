"""The integration pages for Hybrid Chat: the settings form asks none of ECE's fields, queues show and
edit skills, priority, offer and inactivity timeouts and max wait (then the unavailable policy), where
ECE's form keeps its fields and calls max wait the Wait indicator's threshold; errors inline; viewers
change nothing."""

from __future__ import annotations

import html
import re

ECE_INPUTS = ('name="base_url"', 'name="client_key"', 'name="client_secret"', 'name="callback_auth_type"')


def text(answer) -> str:
    return html.unescape(answer.get_data(as_text=True))


def make_chat(runtime) -> None:
    runtime.overrides.save(
        "integrations",
        {
            "name": "Chat",
            "type": "hybrid",
            "entry_points": [
                {"name": "Support", "id": "q-1", "skills": ["english"], "priority": 2, "offer_timeout_seconds": 20},
            ],
        },
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()


def make_ece(runtime) -> None:
    runtime.overrides.save(
        "integrations",
        {
            "name": "Lab",
            "type": "ece",
            "base_url": "http://127.0.0.1:9/ece",
            "client_key": "k",
            "client_secret": "s",
            "entry_points": [{"name": "Support", "id": "1001"}],
        },
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()


def queue_form(csrf: str, **overrides: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf,
        "name": "Sales",
        "skills": "english, sales",
        "priority": "3",
        "offer_timeout_seconds": "25",
        "enabled": "on",
        "max_wait_seconds": "300",
        "unavailable_action": "close",
        "unavailable_after_seconds": "60",
        "default_locale": "en",
    }
    form.update(overrides)
    return form


def test_the_hybrid_settings_form_asks_none_of_eces_fields(operator):
    admin = operator("admin")
    index = text(admin.get("/admin/integrations/"))
    assert "New integration: Hybrid Chat" in index and "/admin/integrations/new?type=hybrid" in index
    hybrid = text(admin.get("/admin/integrations/new?type=hybrid"))
    assert not [field for field in ECE_INPUTS if field in hybrid]
    assert '<option value="hybrid" selected>' in hybrid and "runs in the connector" in hybrid
    ece = text(admin.get("/admin/integrations/new?type=ece"))
    assert all(field in ece for field in ECE_INPUTS)


def test_a_hybrid_integration_is_saved_without_eces_fields_even_if_posted(operator, runtime):
    admin = operator("admin")
    form = {
        "csrf_token": admin.csrf,
        "name": "Chat",
        "type": "hybrid",
        "base_url": "",
        "client_key": "typed by mistake",
        "callback_auth_type": "bearer",
        "action": "save",
    }
    assert admin.post("/admin/integrations/new", data=form).status_code == 302
    assert runtime.overrides.raw("integrations", "Chat") == {"name": "Chat", "type": "hybrid"}


def test_the_hybrid_page_shows_each_queues_fields_and_no_ece_settings(operator, runtime):
    make_chat(runtime)
    page = text(operator("viewer").get("/admin/integrations/Chat"))
    assert "Callback URL" not in page and "Client secret" not in page and "Base URL" not in page
    head = re.search(r'<table id="entry-point-table".*?</thead>', page, re.S).group(0)
    for column in ("Skills", "Priority", "Offer timeout", "Max wait", "then the unavailable policy"):
        assert column in head, column
    assert "ECE id" not in head
    row = re.sub(r"\s+", " ", re.search(r'<tr data-entry-point="Support">(.*?)</tr>', page, re.S).group(1))
    assert "<code>english</code>" in row and "<td>2</td>" in row and "20 s" in row


def test_the_ece_page_calls_max_wait_the_wait_indicators_threshold(operator, runtime):
    make_ece(runtime)
    page = text(operator("viewer").get("/admin/integrations/Lab"))
    head = re.search(r'<table id="entry-point-table".*?</thead>', page, re.S).group(0)
    assert "Wait threshold" in head and "the Wait indicator's" in head
    assert "Skills" not in head and "then the unavailable policy" not in head
    form = text(operator("admin", name="boss").get("/admin/integrations/Lab/entry-points/Support/edit"))
    assert 'name="id"' in form and 'name="skills"' not in form and 'name="priority"' not in form
    assert "The Wait indicator's threshold" in form


def test_the_queue_form_asks_the_hybrid_fields_and_not_eces_id(operator, runtime):
    make_chat(runtime)
    admin = operator("admin")
    form = text(admin.get("/admin/integrations/Chat/entry-points/Support/edit"))
    assert 'name="id"' not in form and "ECE entry point id" not in form
    assert 'name="skills" value="english"' in form
    assert 'name="priority" type="number" min="0" max="1000" value="2"' in form
    assert 'name="offer_timeout_seconds" type="number" min="5" max="600" value="20"' in form
    assert "then the no agents message and then the unavailable policy" in form
    assert "New queue of Chat" in text(admin.get("/admin/integrations/Chat/entry-points/new"))


def test_a_queue_is_added_and_edited_keeping_its_id(operator, runtime):
    make_chat(runtime)
    admin = operator("admin")
    assert admin.post("/admin/integrations/Chat/entry-points/new", data=queue_form(admin.csrf)).status_code == 302
    sales = runtime.config.integration("Chat").entry_point("Sales")
    assert (sales.skills, sales.priority, sales.offer_timeout_seconds, sales.max_wait_seconds, sales.id) == (
        ("english", "sales"),
        3,
        25,
        300,
        "Sales",
    )
    edit = queue_form(admin.csrf, name="Support", skills="spanish", priority="1")
    assert admin.post("/admin/integrations/Chat/entry-points/Support/edit", data=edit).status_code == 302
    support = runtime.config.integration("Chat").entry_point("Support")
    assert (support.skills, support.priority, support.id) == (("spanish",), 1, "q-1"), "the stored id is kept"


def test_queue_errors_show_inline_naming_the_skill(operator, runtime):
    make_chat(runtime)
    admin = operator("admin")
    form = queue_form(admin.csrf, skills="english, not+ok", offer_timeout_seconds="1", priority="x")
    answer = admin.post("/admin/integrations/Chat/entry-points/new", data=form)
    assert answer.status_code == 422
    page = text(answer)
    skills = re.search(r'<p class="field-error" id="skills-error">([^<]+)</p>', page)
    assert skills and skills[1].startswith("not+ok: a skill is 1-64 letters")
    assert 'id="offer_timeout_seconds-error"' in page and 'id="priority-error"' in page
    assert 'name="skills" value="english, not+ok"' in page, "what was typed comes back"
    assert runtime.config.integration("Chat").entry_point("Sales") is None


def test_a_queues_inactivity_timeout_is_shown_edited_and_checked(operator, runtime):
    make_chat(runtime)
    admin = operator("admin")

    def support_row() -> str:
        page = text(admin.get("/admin/integrations/Chat"))
        assert "Inactivity timeout" in re.search(r'<table id="entry-point-table".*?</thead>', page, re.S).group(0)
        row = re.search(r'<tr data-entry-point="Support">(.*?)</tr>', page, re.S).group(1)
        return re.sub(r"\s+", " ", row)

    assert "<td>900 s</td>" in support_row(), "the default"
    form = text(admin.get("/admin/integrations/Chat/entry-points/Support/edit"))
    assert 'name="inactivity_timeout_seconds" type="number" min="0" max="86400" value="900"' in form
    assert "0: never" in form

    refused = admin.post(
        "/admin/integrations/Chat/entry-points/Support/edit",
        data=queue_form(admin.csrf, name="Support", inactivity_timeout_seconds="3"),
    )
    assert refused.status_code == 422
    assert '<p class="field-error" id="inactivity_timeout_seconds-error">0 (off) or 5 to 86400 seconds</p>' in text(
        refused
    )
    assert runtime.config.integration("Chat").entry_point("Support").inactivity_timeout_seconds == 900

    for typed, shown in (("0", "off"), ("600", "600 s")):
        edit = queue_form(admin.csrf, name="Support", inactivity_timeout_seconds=typed)
        assert admin.post("/admin/integrations/Chat/entry-points/Support/edit", data=edit).status_code == 302
        assert runtime.config.integration("Chat").entry_point("Support").inactivity_timeout_seconds == int(typed)
        assert f"<td>{shown}</td>" in support_row()


def test_a_viewer_sees_the_queues_but_cannot_edit_them(operator, runtime):
    make_chat(runtime)
    viewer = operator("viewer")
    page = text(viewer.get("/admin/integrations/Chat"))
    assert "<code>english</code>" in page and "Offer timeout" in page, "a viewer reads the queue fields"
    assert "/entry-points/Support/edit" not in page and "Add entry point" not in page
    answer = viewer.post("/admin/integrations/Chat/entry-points/new", data=queue_form(viewer.csrf))
    assert answer.status_code == 403
    assert runtime.config.integration("Chat").entry_point("Sales") is None


def test_test_and_save_of_a_hybrid_integration_says_what_the_router_sees(operator, runtime):
    make_chat(runtime)
    admin = operator("admin")
    form = {"csrf_token": admin.csrf, "name": "Chat", "type": "hybrid", "action": "test"}
    answer = admin.post("/admin/integrations/Chat/edit", data=form, follow_redirects=True)
    page = text(answer)
    assert "Integration Chat tested and saved." in page
    assert "queue Support: no READY agent has its skills now" in page


def test_a_repeated_queue_name_is_told_beside_the_field_errors(operator, runtime):
    make_chat(runtime)
    admin = operator("admin")
    form = queue_form(admin.csrf, name="Support", offer_timeout_seconds="1", priority="x")
    answer = admin.post("/admin/integrations/Chat/entry-points/new", data=form)
    assert answer.status_code == 422
    page = text(answer)
    assert "entry point names repeat: Support" in page
    assert 'id="offer_timeout_seconds-error"' in page and 'id="priority-error"' in page
    assert [ep.name for ep in runtime.config.integration("Chat").entry_points] == ["Support"]
