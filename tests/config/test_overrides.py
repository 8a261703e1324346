"""The configuration store: UI/API items beside the provisioned files, validated by the same schemas,
read-only where provisioned, secrets kept across masked edits, and seen by every process."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connector.config.overrides import MASK, ConfigConflict, ConfigInvalid, ConfigOverrides, NotFound, masked
from connector.config.schemas import EntryPointSchema
from connector.messages.context import sample_context
from connector.relay import system_messages
from connector.runtime import Runtime

INTEGRATION = {
    "name": "Lab",
    "type": "ece",
    "base_url": "https://ece.lab.example.com",
    "client_key": "key",
    "client_secret": "secret-value",
    "callback_auth": {"type": "bearer", "token": "callback-token"},
    "entry_points": [{"name": "Care", "id": "2001"}],
}
ASSET = {
    "name": "lab-sms",
    "channel": "sms",
    "number": "+15550003333",
    "account_sid": "AClab",
    "auth_token": "twilio-secret",
}
RULE = {
    "name": "lab-rule",
    "channel": "sms",
    "event": "mo",
    "asset": "lab-sms",
    "action": {"forward_to": "Lab", "entry_point": "Care"},
}


@pytest.fixture
def store(runtime: Runtime) -> ConfigOverrides:
    return runtime.overrides


def save_all(store: ConfigOverrides, runtime: Runtime) -> None:
    store.save("integrations", INTEGRATION, runtime.provisioned, create=True)
    store.save("assets", ASSET, runtime.provisioned, create=True)
    store.save("rules", RULE, runtime.provisioned, create=True)


def test_saved_items_join_the_provisioned_configuration(store, runtime):
    save_all(store, runtime)
    runtime.config_changed()
    config = runtime.config
    assert config.integration("Lab").entry_point("Care").id == "2001"
    assert config.integration("TestRouter").source == "tests/config/channels.yaml"
    assert config.asset("sms", "lab-sms")["auth_token"] == "twilio-secret"
    assert [r.name for r in config.rules][-1] == "lab-rule", "new rules follow the provisioned ones"
    assert config.integration("Lab").source is None


def test_another_process_sees_a_change_after_the_version_moves(store, settings, redis):
    other = Runtime(settings)
    assert other.config.integration("Lab") is None
    store.save("integrations", INTEGRATION, other.provisioned, create=True)
    other.config_changed()  # instead of waiting CONFIG_CHECK_SECONDS
    assert other.config.integration("Lab") is not None


def test_invalid_items_name_each_field(store, runtime):
    bad = {**INTEGRATION, "base_url": "not a url", "entry_points": [{"name": "Care"}]}
    with pytest.raises(ConfigInvalid) as caught:
        store.save("integrations", bad, runtime.provisioned, create=True)
    assert set(caught.value.errors) == {"base_url", "entry_points.0.id"}
    assert store.raw_items("integrations") == {}, "nothing written"


def test_provisioned_items_are_read_only(store, runtime):
    clash = {**INTEGRATION, "name": "TestRouter"}
    with pytest.raises(ConfigConflict, match=r"tests/config/channels\.yaml"):
        store.save("integrations", clash, runtime.provisioned, create=True)
    with pytest.raises(ConfigConflict, match="read-only"):
        store.delete("rules", "sms-sales", runtime.provisioned)


def test_a_rule_must_point_at_existing_items(store, runtime):
    with pytest.raises(ConfigInvalid) as caught:
        store.save("rules", {**RULE, "asset": "nope"}, runtime.provisioned, create=True)
    assert set(caught.value.errors) == {"asset", "action.forward_to"}


def test_items_in_use_cannot_be_deleted_or_lose_their_entry_point(store, runtime):
    save_all(store, runtime)
    with pytest.raises(ConfigConflict, match="lab-rule"):
        store.delete("integrations", "Lab", runtime.provisioned)
    with pytest.raises(ConfigConflict, match="lab-rule"):
        store.delete("assets", "sms/lab-sms", runtime.provisioned)
    renamed_ep = {**INTEGRATION, "entry_points": [{"name": "Other", "id": "2002"}]}
    with pytest.raises(ConfigConflict, match="Care"):
        store.save("integrations", renamed_ep, runtime.provisioned, create=False)
    store.delete("rules", "lab-rule", runtime.provisioned)
    store.delete("assets", "sms/lab-sms", runtime.provisioned)
    store.delete("integrations", "Lab", runtime.provisioned)
    with pytest.raises(NotFound):
        store.delete("integrations", "Lab", runtime.provisioned)


def test_create_refuses_a_taken_name_and_update_needs_an_existing_one(store, runtime):
    store.save("integrations", INTEGRATION, runtime.provisioned, create=True)
    with pytest.raises(ConfigConflict, match="already exists"):
        store.save("integrations", INTEGRATION, runtime.provisioned, create=True)
    with pytest.raises(NotFound):
        store.save("integrations", {**INTEGRATION, "name": "Other"}, runtime.provisioned, create=False)


def test_masked_secrets_sent_back_keep_the_stored_ones(store, runtime):
    store.save("integrations", INTEGRATION, runtime.provisioned, create=True)
    shown = masked("integrations", store.raw("integrations", "Lab"))
    assert shown["client_secret"] == MASK and shown["callback_auth"]["token"] == MASK
    assert "secret-value" not in str(shown) and "callback-token" not in str(shown)

    edited = {**shown, "version": "12.6"}
    store.save("integrations", edited, runtime.provisioned, create=False)
    kept = store.raw("integrations", "Lab")
    assert kept["client_secret"] == "secret-value" and kept["callback_auth"]["token"] == "callback-token"
    assert kept["version"] == "12.6"

    store.save("integrations", {**edited, "client_secret": "rotated"}, runtime.provisioned, create=False)
    assert store.raw("integrations", "Lab")["client_secret"] == "rotated"


def test_rule_order_covers_every_rule_once(store, runtime):
    save_all(store, runtime)
    runtime.config_changed()
    names = [r.name for r in runtime.config.rules]
    with pytest.raises(ConfigInvalid, match="missing lab-rule"):
        store.set_rule_order(names[:-1], runtime.config)
    with pytest.raises(ConfigInvalid, match="repeated"):
        store.set_rule_order([*names, names[0]], runtime.config)
    store.set_rule_order(["lab-rule", *names[:-1]], runtime.config)
    runtime.config_changed()
    assert runtime.config.rules[0].name == "lab-rule", "a UI rule may go before provisioned ones"


def test_deployment_template_override_replaces_the_file_for_its_locale(store, runtime, redis):
    from connector.store.threads import Thread

    thread = Thread(id="t1", channel="sms", asset="test-sms", customer="+15550001234", details={"locale": "es"})
    before = system_messages.render(runtime, thread, "welcome")
    store.save_template("es", "welcome", "Hola desde la consola.")
    runtime.config_changed()
    assert system_messages.render(runtime, thread, "welcome") == "Hola desde la consola."
    english = replace(thread, details={"locale": "en"})
    assert system_messages.render(runtime, english, "welcome") != "Hola desde la consola."
    assert store.reset_template("es", "welcome")
    runtime.config_changed()
    assert system_messages.render(runtime, thread, "welcome") == before
    with pytest.raises(ConfigInvalid):
        store.save_template("english!", "welcome", "x")


def test_entry_point_overrides_per_locale_win_over_all_locale_ones(runtime):
    from connector.relay.system_messages import templates_of

    entry_point = EntryPointSchema().load(
        {
            "name": "Care",
            "id": "2001",
            "messages": {"welcome": "Welcome, all locales.", "es": {"welcome": "Bienvenida."}},
        }
    )
    templates = templates_of(runtime)
    context = sample_context("welcome")
    assert templates.render("welcome", context, locale="es", entry_point=entry_point) == "Bienvenida."
    assert templates.render("welcome", context, locale="en", entry_point=entry_point) == "Welcome, all locales."
    overrides = {"en": {"welcome": "Deployment welcome."}}
    assert templates.source("welcome", "en", None, overrides) == ("Deployment welcome.", "deployment override (en)")


def test_a_broken_entry_point_override_falls_back_to_the_deployment_override(runtime):
    from connector.relay.system_messages import templates_of

    entry_point = EntryPointSchema().load({"name": "Care", "id": "2001", "messages": {"welcome": "{{ broken "}})
    overrides = {"en": {"welcome": "Deployment welcome."}}
    text = templates_of(runtime).render(
        "welcome", sample_context("welcome"), locale="en", entry_point=entry_point, overrides=overrides
    )
    assert text == "Deployment welcome."


def test_entry_point_messages_name_unknown_keys():
    with pytest.raises(Exception) as caught:
        EntryPointSchema().load(
            {"name": "Care", "id": "1", "messages": {"welcom": "x", "es": {"bye": "y"}, "fr": "not a map"}}
        )
    messages = caught.value.messages["messages"]
    assert set(messages) == {"welcom", "es.bye", "fr"}


@pytest.mark.parametrize("folder", ["entrypoints", "entrypoints/sandbox", "tests/config"])
def test_every_provisioned_item_round_trips_through_its_raw_shape(folder):
    """raw.of is what the UI shows and exports: loading it again gives the same item."""
    import base64
    import re
    from pathlib import Path

    from connector.config import raw
    from connector.config.loader import load_config
    from connector.config.overrides import validate
    from connector.settings import PROJECT_ROOT

    directory = PROJECT_ROOT / folder
    text = "".join(p.read_text() for p in Path(directory).glob("*.yaml"))
    env = {name: base64.b64encode(b"x" * 32).decode() for name in re.findall(r"\$\{([A-Z_]+)\}", text)}
    config = load_config(directory, env=env)
    for kind, items in (("integrations", config.integrations), ("assets", config.assets), ("rules", config.rules)):
        assert items, f"{folder} has {kind}"
        for item in items:
            assert replace(validate(kind, raw.of(kind, item)), source=item.source) == item, item.name


def test_an_unreachable_redis_serves_the_last_configuration(store, runtime, settings):
    from dataclasses import replace as replace_settings

    store.save("integrations", INTEGRATION, runtime.provisioned, create=True)
    runtime.config_changed()
    assert runtime.config.integration("Lab") is not None
    runtime.settings = replace_settings(settings, redis_url="unix:///tmp/no-such-redis.sock")
    runtime.__dict__.pop("redis", None)  # the cached client: the next one talks to the dead socket
    runtime.config_changed()
    assert runtime.config.integration("Lab") is not None, "the last merge keeps serving"

    cold = Runtime(replace_settings(settings, redis_url="unix:///tmp/no-such-redis.sock"))
    assert cold.config.integration("TestRouter") is not None, "the files alone, rather than an error"


def test_the_deployment_type_decides_who_may_chat_by_default():
    """UCCX gives synced agents no chat role (the reference's compatibility table): nobody chats
    there until the operator says who; on UCCE everyone does. An explicit policy always wins."""
    from connector.config.schemas import FinesseSchema

    base = {"publisher": "https://finesse-a:8445", "admin_user": "a", "admin_password": "p"}
    assert FinesseSchema().load(base).chat_enabled == "all"
    assert FinesseSchema().load({**base, "deployment": "uccx"}).chat_enabled == "none"
    assert FinesseSchema().load({**base, "deployment": "uccx", "chat_enabled": "team:Support"}).chat_enabled == (
        "team:Support"
    )
