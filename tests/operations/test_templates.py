"""The template editor service: what each cell says is in effect agrees with the relay's own
selection, overrides are saved where the relay reads them, and "send as test" goes through a real
channel send to the sandbox provider simulators."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connector.config.model import EntryPoint
from connector.config.overrides import ConfigConflict, ConfigInvalid, NotFound
from connector.config.schemas import MESSAGE_TYPES
from connector.messages.context import sample_context
from connector.operations.templates import Scope, SendTestUnavailable, TemplateEditor, TemplateError
from connector.relay.system_messages import templates_of
from connector.runtime import Runtime
from connector.sandbox.http import serving
from connector.sandbox.providers import ProviderSimulators

HELPDESK = Scope("Helpdesk", "Billing")
WELCOME_EN = "message_templates/en/welcome.txt.j2"


def add_integration(runtime: Runtime, messages: dict | None = None) -> None:
    """A UI integration (editable) with one entry point."""
    entry_point = {"name": "Billing", "id": "2001", **({"messages": messages} if messages else {})}
    runtime.overrides.save(
        "integrations",
        {"name": "Helpdesk", "type": "hybrid", "base_url": "http://127.0.0.1:9/router", "entry_points": [entry_point]},
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()


def relay_text(runtime: Runtime, message_type: str, locale: str, entry_point: EntryPoint | None = None) -> str | None:
    """What the relay would send: MessageTemplates.render with the merged configuration."""
    return templates_of(runtime).render(
        message_type,
        sample_context(message_type),
        locale=locale,
        entry_point=entry_point,
        overrides=runtime.config.templates,
    )


def billing(runtime: Runtime) -> EntryPoint:
    return runtime.config.integration("Helpdesk").entry_point("Billing")


def test_the_matrix_covers_every_type_and_locale_from_the_shipped_files(runtime):
    editor = TemplateEditor(runtime)
    matrix = editor.matrix(Scope())
    assert list(matrix) == list(MESSAGE_TYPES)
    assert editor.locales() == ["en", "es"]
    cell = matrix["welcome"]["en"]
    assert (cell.origin, cell.where, cell.override, cell.off) == ("file", WELCOME_EN, None, False)
    assert cell.text.startswith("Thank you for contacting us")


def test_a_deployment_override_is_in_effect_for_the_relay_and_reset_restores_the_file(runtime):
    editor = TemplateEditor(runtime)
    cell = editor.save(Scope(), "agent_assigned", "es", "Hola, soy {{ agent.name }}.")
    assert (cell.origin, cell.where, cell.override) == ("deployment", "deployment override (es)", "locale")
    assert cell.inherited_where == "message_templates/es/agent_assigned.txt.j2"
    assert relay_text(runtime, "agent_assigned", "es") == "Hola, soy CiscoAgent1."
    assert editor.cell(Scope(), "agent_assigned", "en").origin == "file", "other locales keep their file"

    after, removed = editor.reset(Scope(), "agent_assigned", "es")
    assert removed == "locale" and after.origin == "file" and after.override is None
    assert relay_text(runtime, "agent_assigned", "es").startswith("Ahora")
    assert editor.reset(Scope(), "agent_assigned", "es")[1] is None, "nothing left to reset"


def test_an_empty_override_turns_the_message_off(runtime):
    cell = TemplateEditor(runtime).save(Scope(), "welcome", "en", "")
    assert cell.off and cell.origin == "deployment"
    assert relay_text(runtime, "welcome", "en") is None


def test_a_broken_template_is_refused_with_its_line_and_nothing_is_saved(runtime):
    editor = TemplateEditor(runtime)
    with pytest.raises(TemplateError) as broken:
        editor.save(Scope(), "welcome", "en", "Hello\n{{ agent.name }\nbye")
    assert broken.value.line == 2
    with pytest.raises(TemplateError, match="unknown variable 'agnet'") as unknown:
        editor.save(Scope(), "welcome", "en", "Hi\n\n{{ agnet.name }}")
    assert unknown.value.line == 3
    assert runtime.overrides.templates() == {}


def test_a_new_locale_comes_from_a_deployment_override(runtime):
    editor = TemplateEditor(runtime)
    editor.save(Scope(), "welcome", "fr", "Bonjour !")
    assert editor.locales() == ["en", "es", "fr"]
    other = editor.cell(Scope(), "agent_assigned", "fr")
    assert other.origin == "file" and other.where == "message_templates/en/agent_assigned.txt.j2", "falls back to en"
    with pytest.raises(ConfigInvalid) as bad:
        editor.save(Scope(), "welcome", "not a locale", "x")
    assert "locale" in bad.value.errors
    with pytest.raises(ConfigInvalid) as unknown_type:
        editor.cell(Scope(), "goodbye", "en")
    assert "type" in unknown_type.value.errors


def test_an_entry_point_override_per_locale_is_stored_in_the_integration(runtime):
    add_integration(runtime)
    editor = TemplateEditor(runtime)
    cell = editor.save(HELPDESK, "welcome", "es", "¡Hola desde Billing!")
    assert (cell.origin, cell.override, cell.where) == ("entry_point", "locale", "entry point Billing override (es)")
    stored = runtime.overrides.raw("integrations", "Helpdesk")["entry_points"][0]["messages"]
    assert stored == {"es": {"welcome": "¡Hola desde Billing!"}}
    assert relay_text(runtime, "welcome", "es", billing(runtime)) == "¡Hola desde Billing!"
    assert editor.cell(HELPDESK, "welcome", "en").origin == "file", "English keeps the file"
    assert editor.cell(Scope(), "welcome", "es").origin == "file", "deployment-wide is untouched"


def test_an_entry_point_override_for_every_locale_replaces_this_locales_own(runtime):
    add_integration(runtime, messages={"es": {"welcome": "Hola", "agent_closed": "Adiós"}})
    editor = TemplateEditor(runtime)
    cell = editor.save(HELPDESK, "welcome", "es", "Welcome to Billing", all_locales=True)
    assert cell.override == "all locales" and cell.text == "Welcome to Billing"
    stored = runtime.overrides.raw("integrations", "Helpdesk")["entry_points"][0]["messages"]
    assert stored == {"welcome": "Welcome to Billing", "es": {"agent_closed": "Adiós"}}
    assert relay_text(runtime, "welcome", "en", billing(runtime)) == "Welcome to Billing"

    after, removed = editor.reset(HELPDESK, "welcome", "en")
    assert removed == "all locales" and after.origin == "file"
    assert runtime.overrides.raw("integrations", "Helpdesk")["entry_points"][0]["messages"] == {
        "es": {"agent_closed": "Adiós"}
    }


def test_an_entry_point_override_above_a_deployment_one_resets_to_it(runtime):
    add_integration(runtime)
    editor = TemplateEditor(runtime)
    editor.save(Scope(), "no_agents", "en", "Nobody is here, sorry.")
    cell = editor.save(HELPDESK, "no_agents", "en", "Billing is closed.")
    assert cell.inherited == "Nobody is here, sorry." and cell.inherited_where == "deployment override (en)"
    after, _ = editor.reset(HELPDESK, "no_agents", "en")
    assert (after.origin, after.text) == ("deployment", "Nobody is here, sorry.")


def test_provisioned_entry_points_are_read_only_naming_their_file(runtime):
    editor = TemplateEditor(runtime)
    scope = Scope("TestRouter", "Support")
    assert editor.cell(scope, "welcome", "en").read_only.endswith("channels.yaml")
    with pytest.raises(ConfigConflict, match=r"channels\.yaml and is read-only here"):
        editor.save(scope, "welcome", "en", "Hi")
    with pytest.raises(NotFound):
        editor.cell(Scope("TestRouter", "Ghost"), "welcome", "en")
    with pytest.raises(ConfigInvalid):
        Scope.of("TestRouter", None)


def test_an_entry_point_override_needs_a_locale_the_relay_writes_in(runtime):
    add_integration(runtime)
    with pytest.raises(ConfigInvalid) as refused:
        TemplateEditor(runtime).save(HELPDESK, "welcome", "de", "Hallo")
    assert "no templates in de yet" in refused.value.errors["locale"][0]


def test_the_preview_renders_the_sample_context_of_the_scope(runtime):
    add_integration(runtime)
    editor = TemplateEditor(runtime)
    assert editor.preview("agent_assigned", "en", "With {{ agent.name }}") == "With CiscoAgent1"
    assert editor.preview("welcome", "es", "{{ entry_point.name }} {{ customer.locale }}", HELPDESK) == "Billing es"
    assert editor.preview("welcome", "en", "{% if agent %}x{% endif %}") == "", "renders nothing: off"
    with pytest.raises(TemplateError) as broken:
        editor.preview("welcome", "en", "a\nb\n{% if %}")
    assert broken.value.line == 3


def test_send_as_test_is_refused_outside_the_sandbox(runtime):
    with pytest.raises(SendTestUnavailable, match="only in the sandbox"):
        TemplateEditor(runtime).send_test(Scope(), "welcome", "en", "sms/test-sms")


def test_send_as_test_goes_through_the_channel_to_the_sandbox_customer(settings, redis):
    runtime = Runtime(replace(settings, sandbox=True))
    with serving() as server:
        runtime.overrides.save(
            "assets",
            {
                "name": "sim-sms",
                "channel": "sms",
                "number": "+15550003333",
                "account_sid": "ACsim0000000000000000000000000000",
                "auth_token": "sim-token",
                "api_base_url": f"{server.url}/twilio",
            },
            runtime.provisioned,
            create=True,
        )
        runtime.config_changed()
        providers = ProviderSimulators(runtime.config.assets, server.url)
        server.app = providers.create_app()
        editor = TemplateEditor(runtime)
        editor.save(Scope(), "agent_assigned", "en", "Test: {{ agent.name }} for {{ customer.address }}")

        sent = editor.send_test(Scope(), "agent_assigned", "en", "sms/sim-sms")
        assert sent.customer == "+15551230001" and sent.parts == 1
        assert sent.look_at == f"{server.url}/customer/"
        records = providers.store.sent("sms", "+15551230001", asset="sim-sms")
        assert [r["text"] for r in records] == ["Test: CiscoAgent1 for +15551230001"]

        with pytest.raises(ConfigInvalid) as unknown:
            editor.send_test(Scope(), "agent_assigned", "en", "sms/ghost")
        assert "asset" in unknown.value.errors
        editor.save(Scope(), "welcome", "en", "")
        with pytest.raises(ConfigInvalid, match="this message is off"):
            editor.send_test(Scope(), "welcome", "en", "sms/sim-sms")
