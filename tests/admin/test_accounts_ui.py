"""The Accounts page's forms: every problem of a change is told in one answer."""

from __future__ import annotations

import html

from connector.auth.users import Users
from tests.conftest import OPERATOR_PASSWORD


def test_every_problem_of_a_user_is_told_at_once(operator, runtime):
    admin = operator("admin")
    answer = admin.post(
        "/admin/accounts/users",
        data={"csrf_token": admin.csrf, "name": "no spaces", "role": "owner", "password": "short"},
        follow_redirects=True,
    )
    page = html.unescape(answer.get_data(as_text=True))
    assert "user names are 1-64 letters" in page
    assert "role must be one of viewer, editor, admin" in page
    assert "passwords have at least 8 characters" in page
    assert Users(runtime.redis).get("no spaces") is None


def test_a_wrong_current_password_and_a_weak_new_one_are_told_together(operator, runtime):
    editor = operator("editor")
    answer = editor.post(
        "/admin/accounts/password",
        data={"csrf_token": editor.csrf, "current": "not the password", "password": "short"},
        follow_redirects=True,
    )
    page = html.unescape(answer.get_data(as_text=True))
    assert "The current password is wrong." in page
    assert "The new password is refused: passwords have at least 8 characters." in page
    assert Users(runtime.redis).authenticate("editor", OPERATOR_PASSWORD) is not None, "unchanged"
