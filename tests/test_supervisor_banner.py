"""What `make run` prints about the operator login: the sandbox's demo password, never a real one."""

from __future__ import annotations

from connector.supervisor import SANDBOX_ADMIN_PASSWORD, Supervisor


def test_the_sandbox_login_is_printed():
    line = Supervisor._login_line({"CONNECTOR_ADMIN_PASSWORD": SANDBOX_ADMIN_PASSWORD})
    assert line == f"log in as admin / {SANDBOX_ADMIN_PASSWORD}"


def test_an_operator_set_password_is_not_echoed():
    line = Supervisor._login_line({"CONNECTOR_ADMIN_PASSWORD": "s3cret-of-the-deployment"})
    assert "s3cret" not in line and "CONNECTOR_ADMIN_PASSWORD" in line


def test_without_a_password_it_says_how_to_get_a_login():
    assert "set CONNECTOR_ADMIN_PASSWORD" in Supervisor._login_line({})
