"""In the sandbox, an editor saves a template and sends it as a test in one click: saving stays on the
template's page, and the asset they last sent through is chosen again."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from connector import create_app
from connector.runtime import Runtime
from connector.sandbox.http import serving
from connector.sandbox.providers import ProviderSimulators

URL = "/admin/templates/en/agent_assigned"


@pytest.fixture
def sandbox_server():
    with serving() as server:
        yield server


@pytest.fixture
def app(settings, redis, sandbox_server):
    """The connector in sandbox mode with a second SMS asset whose Twilio is the simulator on loopback."""
    runtime = Runtime(replace(settings, sandbox=True))
    runtime.overrides.save(
        "assets",
        {
            "name": "sim-sms",
            "channel": "sms",
            "number": "+15550003333",
            "account_sid": "ACsim0000000000000000000000000000",
            "auth_token": "sim-token",
            "api_base_url": f"{sandbox_server.url}/twilio",
        },
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()
    sandbox_server.app = ProviderSimulators(runtime.config.assets, sandbox_server.url).create_app()
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    return app


def chosen_asset(page: str) -> str | None:
    found = re.search(r'<select id="send-asset".*?</select>', page, re.S)
    assert found, "no Send as test form"
    selected = re.search(r"<option selected>([^<]+)</option>", found.group(0))
    return selected.group(1) if selected else None


def save(editor, text: str):
    return editor.post(URL, data={"csrf_token": editor.csrf, "action": "save", "text": text})


def test_save_stays_on_the_template_and_the_last_asset_is_chosen_again(operator):
    editor = operator("editor")
    assert chosen_asset(editor.get(URL).get_data(as_text=True)) is None, "nothing sent yet: the first asset"

    saved = save(editor, "Hi, {{ agent.name }} here.")
    assert saved.status_code == 302 and saved.headers["Location"] == URL
    sent = editor.post(f"{URL}/send-test", data={"csrf_token": editor.csrf, "asset": "sms/sim-sms"})
    page = sent.get_data(as_text=True)
    assert "Test sent" in page and "Hi, CiscoAgent1 here." in page
    assert chosen_asset(page) == "sms/sim-sms"

    again = save(editor, "Hello, {{ agent.name }} here.")
    assert again.headers["Location"] == URL
    page = editor.get(URL).get_data(as_text=True)
    assert "saved; it is in effect now" in page
    assert chosen_asset(page) == "sms/sim-sms", "one click sends the new text where the last test went"
    resent = editor.post(f"{URL}/send-test", data={"csrf_token": editor.csrf, "asset": chosen_asset(page)})
    assert "Hello, CiscoAgent1 here." in resent.get_data(as_text=True)

    other = operator("editor", name="other-editor")
    assert chosen_asset(other.get(URL).get_data(as_text=True)) is None, "remembered per operator session"


def test_a_failed_send_still_remembers_the_asset(operator):
    editor = operator("editor")
    save(editor, "")  # the message is off: nothing to send
    refused = editor.post(f"{URL}/send-test", data={"csrf_token": editor.csrf, "asset": "sms/sim-sms"})
    assert refused.status_code == 302 and refused.headers["Location"] == URL
    page = editor.get(URL).get_data(as_text=True)
    assert "Not sent:" in page and chosen_asset(page) == "sms/sim-sms"
