"""Export as provisioning YAML and import with validation and a diff (connector/operations/import_export.py)."""

from __future__ import annotations

import pytest
import yaml

from connector.config.loader import load_config
from connector.config.overrides import MASK, NotFound
from connector.operations import import_export

SECRETS = (
    "twilio-test-token",
    "messenger-app-secret",
    "page-token",
    "whatsapp-app-secret",
    "wa-token",
    "c2VjcmV0LWtleS1mb3ItYXBwbGUtbWVzc2FnZXMtdGVzdHM=",
    "inapp-test-secret-0123456789",
)
ECE = {
    "name": "NewECE",
    "type": "ece",
    "base_url": "https://ece.example.com",
    "client_key": "key",
    "client_secret": "${NEWECE_CLIENT_SECRET}",
    "entry_points": [{"name": "Billing", "id": "2001"}],
}
ASSET = {
    "name": "new-sms",
    "channel": "sms",
    "number": "+15550009999",
    "account_sid": "ACnew",
    "auth_token": "${NEW_SMS_AUTH_TOKEN}",
}
ENV = {"NEWECE_CLIENT_SECRET": "ece-secret", "NEW_SMS_AUTH_TOKEN": "sms-token"}


def rule(name: str, entry_point: str = "Billing", **extra) -> dict:
    return {
        "name": name,
        "channel": "sms",
        "event": "mo",
        "asset": "new-sms",
        "action": {"forward_to": "NewECE", "entry_point": entry_point},
        **extra,
    }


def document(**sections) -> str:
    return yaml.safe_dump(sections, sort_keys=False)


def plan(runtime, text: str, env=ENV) -> import_export.Plan:
    return import_export.plan(text, runtime.config, runtime.provisioned, runtime.overrides, env)


def apply(runtime, text: str, env=ENV) -> list[import_export.Change]:
    written = import_export.apply(plan(runtime, text, env), runtime.overrides, runtime.provisioned)
    runtime.config_changed()
    return written


# -- export -------------------------------------------------------------------------------------------


def test_an_export_of_everything_loads_with_check_config_and_holds_no_secret(runtime, tmp_path):
    exported = import_export.export(runtime.config)
    for secret in SECRETS:
        assert secret not in exported.text
    assert "${TEST_SMS_AUTH_TOKEN}" in exported.text and "TEST_SMS_AUTH_TOKEN" in exported.variables
    assert "#   TEST_INAPP_SECRET" in exported.text, "the header names each variable to set"

    (tmp_path / "exported.yaml").write_text(exported.text)
    env = dict(zip(exported.variables, SECRETS, strict=True))
    loaded = load_config(tmp_path, env)
    strip = lambda items: [item.__class__(**{**vars(item), "source": None}) for item in items]  # noqa: E731
    for kind in ("integrations", "assets", "rules"):
        assert strip(getattr(loaded, kind)) == strip(getattr(runtime.provisioned, kind)), kind


def test_an_export_of_one_item_holds_only_it(runtime):
    exported = import_export.export(runtime.config, "assets", "sms/test-sms")
    data = yaml.safe_load(exported.text)
    assert list(data) == ["assets"] and [a["name"] for a in data["assets"]] == ["test-sms"]
    assert data["assets"][0]["auth_token"] == "${TEST_SMS_AUTH_TOKEN}"
    assert exported.filename == "sms-test-sms.yaml"
    with pytest.raises(NotFound):
        import_export.export(runtime.config, "rules", "no-such-rule")
    with pytest.raises(ValueError, match="kind"):
        import_export.export(runtime.config, "widgets")


def test_ui_rules_are_exported_in_evaluation_order(runtime):
    apply(runtime, document(integrations=[ECE], assets=[ASSET], rules=[rule("b"), rule("a")]))
    exported = yaml.safe_load(import_export.export(runtime.config, "rules").text)
    assert [r["name"] for r in exported["rules"]][-2:] == ["b", "a"]


# -- import: the plan -----------------------------------------------------------------------------------


def test_new_items_are_added_only_on_apply_and_keep_the_file_rule_order(runtime):
    text = document(integrations=[ECE], assets=[ASSET], rules=[rule("zeta"), rule("alpha")])
    planned = plan(runtime, text)
    assert planned.ok, planned.problems
    assert [(c.kind, c.key, c.action) for c in planned.changes] == [
        ("integrations", "NewECE", "add"),
        ("assets", "sms/new-sms", "add"),
        ("rules", "zeta", "add"),
        ("rules", "alpha", "add"),
    ]
    assert runtime.overrides.raw_items("integrations") == {}, "nothing written by a plan"

    written = apply(runtime, text)
    assert len(written) == 4
    assert runtime.overrides.raw("integrations", "NewECE")["client_secret"] == "ece-secret", "resolved from env"
    names = [r.name for r in runtime.config.rules]
    assert names.index("zeta") < names.index("alpha"), "file order, not alphabetical"


def test_a_changed_item_lists_its_changed_fields_and_masked_secrets_keep_the_stored_ones(runtime):
    apply(runtime, document(integrations=[ECE]))
    changed = {
        **ECE,
        "client_secret": MASK,
        "entry_points": [{"name": "Billing", "id": "2001", "max_wait_seconds": 30}],
    }
    planned = plan(runtime, document(integrations=[changed]), env={})
    [change] = planned.changes
    assert (change.action, change.fields) == ("change", ("entry_points.0.max_wait_seconds",))
    apply(runtime, document(integrations=[changed]), env={})
    stored = runtime.overrides.raw("integrations", "NewECE")
    assert stored["client_secret"] == "ece-secret" and stored["entry_points"][0]["max_wait_seconds"] == 30

    again = plan(runtime, document(integrations=[changed]), env={})
    assert [c.action for c in again.changes] == ["unchanged"] and again.writes == []


def test_provisioned_items_show_unchanged_when_equal_and_are_refused_otherwise(runtime):
    exported = import_export.export(runtime.config, "assets")
    env = dict(zip(exported.variables, SECRETS, strict=True))
    planned = plan(runtime, exported.text, env)
    assert planned.ok and {c.action for c in planned.changes} == {"unchanged"}
    assert all("tests/config/channels.yaml" in c.reason for c in planned.changes)

    edited = yaml.safe_load(exported.text)
    edited["assets"][0]["number"] = "+15550001112"
    edited["assets"][1]["app_secret"] = MASK  # masked: the file's secret stands
    planned = plan(runtime, document(**edited), env)
    assert planned.ok, "refusing a provisioned item does not block the rest"
    sms, messenger = planned.changes[:2]
    assert (sms.action, sms.fields) == ("refused", ("number",)) and "read-only" in sms.reason
    assert messenger.action == "unchanged"


def test_one_bad_item_blocks_the_whole_import_and_problems_name_item_and_field(runtime):
    bad = {**ASSET, "name": "bad-sms", "number": "555"}
    text = document(integrations=[ECE], assets=[ASSET, bad])
    planned = plan(runtime, text)
    assert not planned.ok
    [problem] = planned.problems
    assert (problem.item, problem.field) == ("assets[1] ('bad-sms')", "number")
    assert str(problem).startswith("import: assets[1] ('bad-sms'): field 'number': ")
    with pytest.raises(import_export.ImportBlocked):
        import_export.apply(planned, runtime.overrides, runtime.provisioned)
    assert runtime.overrides.raw_items("integrations") == {} and runtime.overrides.raw_items("assets") == {}


@pytest.mark.parametrize(
    ("items", "item", "field", "message"),
    [
        ({"integrations": [ECE]}, "integrations[0] ('NewECE')", "client_secret", "NEWECE_CLIENT_SECRET is not set"),
        (
            {"integrations": [{**ECE, "client_secret": "x", "base_url": "https://${HOME}/"}]},
            "integrations[0] ('NewECE')",
            "base_url",
            "secret fields only",
        ),
        (
            {"integrations": [{**ECE, "client_secret": MASK}]},
            "integrations[0] ('NewECE')",
            "client_secret",
            "masked secret",
        ),
        (
            {
                "integrations": [{**ECE, "client_secret": "x"}],
                "assets": [{**ASSET, "auth_token": "t"}],
                "rules": [rule("r", entry_point="Nope")],
            },
            "rules[0] ('r')",
            "action.entry_point",
            "no entry point named 'Nope'",
        ),
        ({"rules": [rule("r")]}, "rules[0] ('r')", "action.forward_to", "no integration named 'NewECE'"),
        ({"widgets": []}, "top level", "widgets", "Unknown field"),
    ],
)
def test_problems_say_what_is_wrong(runtime, items, item, field, message):
    planned = plan(runtime, document(**items), env={})
    assert any(p.item == item and p.field == field and message in p.message for p in planned.problems), [
        str(p) for p in planned.problems
    ]


def test_not_yaml_and_empty_files_are_problems(runtime):
    [broken] = plan(runtime, "integrations:\n  - name: [unclosed\n").problems
    assert broken.item.startswith("line ") and "not valid YAML" in broken.message
    [empty] = plan(runtime, "").problems
    assert "empty" in empty.message


def test_an_integration_change_may_not_drop_an_entry_point_a_rule_uses(runtime):
    apply(runtime, document(integrations=[ECE], assets=[ASSET], rules=[rule("r")]))
    dropped = {**ECE, "client_secret": MASK, "entry_points": [{"name": "Other", "id": "2002"}]}
    planned = plan(runtime, document(integrations=[dropped]), env={})
    assert [(p.item, p.field) for p in planned.problems] == [("rules ('r')", "action.entry_point")]


def test_rule_order_refills_the_imported_rules_places():
    assert import_export.rule_order(["a", "x", "b", "y", "c"], ["c", "a", "b"]) == ["c", "x", "a", "y", "b"]
    assert import_export.rule_order(["a", "b"], ["zzz", "b"]) == ["a", "b"], "unknown names are ignored"


def test_env_names_are_valid_variable_names():
    assert import_export.env_name("MyECE", "callback_auth.token") == "MYECE_CALLBACK_AUTH_TOKEN"
    assert import_export.env_name("support-sms", "auth_token") == "SUPPORT_SMS_AUTH_TOKEN"
    assert import_export.env_name("1page", "app_secret") == "CC_1PAGE_APP_SECRET"


# -- import: every problem at once ------------------------------------------------------------------------


def test_schema_errors_and_unknown_references_are_shown_together(runtime):
    """One check names every problem of the file: the items' own and what rules refer to. A rule that
    points at an item of the file with problems of its own is not told that item does not exist."""
    bad_asset = {**ASSET, "number": "555"}
    text = document(
        integrations=[ECE],
        assets=[bad_asset],
        rules=[
            rule("r1", action={"forward_to": "Ghost", "entry_point": "Billing"}),
            rule("r2", asset="ghost", start="2026-05-01", end="2026-04-01"),
        ],
    )
    planned = plan(runtime, text)
    found = {(p.item, p.field) for p in planned.problems}
    assert found == {
        ("assets[0] ('new-sms')", "number"),
        ("rules[0] ('r1')", "action.forward_to"),
        ("rules[1] ('r2')", "end"),
        ("rules[1] ('r2')", "asset"),
    }, [str(p) for p in planned.problems]
    assert any(p.message == "no integration named 'Ghost'" for p in planned.problems)


def test_sections_that_load_are_checked_beside_a_broken_one(runtime):
    text = document(rules="not a list", assets=[{**ASSET, "number": "555"}])
    found = {(p.item, p.field) for p in plan(runtime, text).problems}
    assert found == {("top level", "rules"), ("assets[0] ('new-sms')", "number")}


@pytest.mark.parametrize(
    ("text", "shape"),
    [("- name: r1\n  channel: sms\n", "a list"), ("just words\n", "a text"), ("42\n", "a number")],
)
def test_a_top_level_that_is_not_a_mapping_says_so_in_words(runtime, text, shape):
    [problem] = plan(runtime, text).problems
    assert (problem.item, problem.field) == ("top level", None)
    assert problem.message.startswith(f"the file's top level is {shape}; expected a mapping with one or more of ")
    assert "integrations:, assets:, rules:" in problem.message


def test_the_summary_never_says_added_while_a_problem_blocks_the_file(runtime):
    ok = plan(runtime, document(integrations=[ECE], assets=[ASSET], rules=[rule("r1")]))
    assert import_export.summary(ok) == "3 to add, 0 to change, 0 unchanged, 0 refused"
    blocked = plan(runtime, document(integrations=[ECE], assets=[ASSET], rules=[rule("r1"), rule("bad name")]))
    assert not blocked.ok and blocked.count("add") == 3
    assert import_export.summary(blocked) == (
        "1 problem(s): nothing can be imported until they are fixed; "
        "once they are fixed: 3 to add, 0 to change, 0 unchanged, 0 refused"
    )
