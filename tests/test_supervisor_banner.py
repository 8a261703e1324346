"""What `make run` prints about the operator login (the sandbox's demo password, never a real one) and
how many web processes it starts."""

from __future__ import annotations

import os
import re

from connector.settings import Settings
from connector.supervisor import SANDBOX_ADMIN_PASSWORD, Supervisor, default_web_workers


def test_the_sandbox_login_is_printed():
    line = Supervisor._login_line({"CONNECTOR_ADMIN_PASSWORD": SANDBOX_ADMIN_PASSWORD})
    assert line == f"log in as admin / {SANDBOX_ADMIN_PASSWORD}"


def test_an_operator_set_password_is_not_echoed():
    line = Supervisor._login_line({"CONNECTOR_ADMIN_PASSWORD": "s3cret-of-the-deployment"})
    assert "s3cret" not in line and "CONNECTOR_ADMIN_PASSWORD" in line


def test_without_a_password_it_says_how_to_get_a_login():
    assert "set CONNECTOR_ADMIN_PASSWORD" in Supervisor._login_line({})


def test_web_processes_follow_web_concurrency_else_cores_plus_one(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    assert default_web_workers() == 5
    for unusable in ("", "0", "many"):
        monkeypatch.setenv("WEB_CONCURRENCY", unusable)
        assert default_web_workers() == (os.cpu_count() or 1) + 1


def test_the_web_process_count_reaches_gunicorn(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    argv = Supervisor(Settings()).gunicorn_argv("python")
    assert argv[argv.index("--workers") + 1] == "4"


def test_every_address_the_banner_prints_answers(client):
    """A newcomer copies these from the terminal: none may be a 404 (the API's address shows its reference)."""
    env = {"REDIS_URL": "unix:///tmp/redis.sock", "CONNECTOR_CONFIG_DIR": "entrypoints/sandbox"}
    text = "\n".join(Supervisor(Settings(), port=8000, sandbox=True).banner_lines(env))
    addresses = [a for a in re.findall(r"http://localhost:8000(\S*)", text) if "<" not in a]
    assert "/api/v1/" in addresses and "/api/v1/openapi.json" in addresses
    for path in addresses:
        answer = client.get(path, follow_redirects=True)
        assert answer.status_code != 404, f"{path} answered 404"  # /readyz may say 503: no workers here
    reference = client.get("/api/v1/", follow_redirects=True).get_data(as_text=True)
    assert "/api/v1/openapi.json" in reference and "swagger-ui-bundle.js" in reference
