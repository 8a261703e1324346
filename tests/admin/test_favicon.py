"""The UI's icon: every page links it, and /favicon.ico (asked for by browsers on pages that link none,
like the agent desktop) answers with it instead of a 404 in the console."""

from __future__ import annotations

import re


def icon_link(page: str) -> str:
    found = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', page)
    assert found, "the page links no icon"
    return found.group(1)


def test_favicon_ico_answers_with_the_svg(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200 and answer.mimetype == "image/svg+xml"
    assert answer.get_data(as_text=True).lstrip().startswith("<svg")


def test_the_login_page_and_the_pages_behind_it_link_the_icon(client, operator):
    for page in (client.get("/admin/login"), operator("viewer").get("/admin/")):
        href = icon_link(page.get_data(as_text=True))
        linked = client.get(href)
        assert linked.status_code == 200 and linked.mimetype == "image/svg+xml"
        assert linked.data == client.get("/favicon.ico").data
