"""Flows made in the UI or API (the config store): validated like check-config, every error at once,
references checked both ways (rules and entry points name flows that exist; a flow in use cannot go),
provisioned flows read-only, and flows exported and imported like the other kinds."""

from __future__ import annotations

import pytest

from connector.config.overrides import ConfigConflict, ConfigInvalid, NotFound
from connector.operations import import_export
from tests.flows.editing import PROVISIONED_FILE, PROVISIONED_FLOW, flow, rule, with_provisioned_flow


@pytest.fixture
def settings(settings, tmp_path):
    return with_provisioned_flow(settings, tmp_path)


def test_a_flow_is_created_merged_and_named_by_a_rule(runtime):
    store = runtime.overrides
    stored = store.save("flows", flow(), runtime.provisioned, create=True)
    assert stored.item.steps[0].pattern == "[A-Z]{2}[0-9]{6}"
    runtime.config_changed()
    merged = runtime.config
    assert [f.name for f in merged.flows] == [PROVISIONED_FLOW, "intake"]
    store.save("rules", rule(), runtime.provisioned, create=True)
    runtime.config_changed()
    vip = next(r for r in runtime.config.rules if r.name == "sms-vip")
    assert runtime.config.flow_for(vip.action).name == "intake"


def test_every_problem_of_a_flow_is_named_at_once(runtime):
    bad = flow(
        on_fail="route",
        closing="flow_closing",
        steps=[
            {"name": "a", "type": "ask", "question": "ask_topic", "attribute": "x", "answer": "regex", "pattern": "("},
            {"name": "a", "type": "ask", "question": "ask_topic", "attribute": "y", "answer": "choices",
             "choices": ["one"]},
            {"name": "c", "type": "telepathy"},
            {"name": "d", "type": "ask", "question": "ask_nothing_here", "attribute": "z", "attempts": 0},
        ],
    )  # fmt: skip
    with pytest.raises(ConfigInvalid) as caught:
        runtime.overrides.save("flows", bad, runtime.provisioned, create=True)
    errors = caught.value.errors
    assert "not a valid regular expression" in " ".join(errors["steps.0.pattern"])
    assert errors["steps.1.choices"] == ["a choices answer needs at least two choices"]
    assert errors["steps.2.type"] == ["Must be one of: " + ", ".join(_kinds()) + "."]
    assert errors["closing"] == ["only a flow with on_fail: close sends a closing message"]
    assert errors["steps.3.attempts"] == ["Must be greater than or equal to 1 and less than or equal to 10."]
    assert errors["steps.3.question"] == [
        "no template 'ask_nothing_here': add message_templates/<locale>/ask_nothing_here.txt.j2"
    ], "the step's template is checked beside its other error"
    assert "steps.0.question" not in errors, "ask_topic exists"
    assert not runtime.overrides.raw_items("flows"), "nothing written"


def _kinds() -> list[str]:
    from connector.config.schemas import STEP_SCHEMAS

    return list(STEP_SCHEMAS)


def test_a_template_no_locale_has_is_named_beside_the_schema_errors(runtime):
    bad = flow(steps=[{"name": "a", "type": "ask", "question": "ask_nothing_here", "attribute": "x", "attempts": 0}])
    with pytest.raises(ConfigInvalid) as caught:
        runtime.overrides.save("flows", bad, runtime.provisioned, create=True)
    assert caught.value.errors == {
        "steps.0.attempts": ["Must be greater than or equal to 1 and less than or equal to 10."],
        "steps.0.question": ["no template 'ask_nothing_here': add message_templates/<locale>/ask_nothing_here.txt.j2"],
    }


def test_names_are_unique_and_provisioned_flows_read_only(runtime):
    store = runtime.overrides
    store.save("flows", flow(), runtime.provisioned, create=True)
    with pytest.raises(ConfigConflict, match="a flow named 'intake' already exists"):
        store.save("flows", flow(), runtime.provisioned, create=True)
    with pytest.raises(ConfigConflict, match=f"defined in .*{PROVISIONED_FILE} and is read-only here"):
        store.save("flows", flow(PROVISIONED_FLOW), runtime.provisioned, create=True)
    with pytest.raises(ConfigConflict, match="read-only"):
        store.delete("flows", PROVISIONED_FLOW, runtime.provisioned)
    with pytest.raises(NotFound):
        store.save("flows", flow("elsewhere"), runtime.provisioned, create=False)


def test_rules_and_entry_points_must_name_a_flow_that_exists(runtime):
    store = runtime.overrides
    with pytest.raises(ConfigInvalid) as caught:
        store.save("rules", rule(flow_name="nope"), runtime.provisioned, create=True)
    assert caught.value.errors == {"action.flow": ["no flow named 'nope'"]}
    lab = {
        "name": "Lab",
        "type": "ece",
        "base_url": "http://127.0.0.1:9/ece",
        "client_key": "key",
        "client_secret": "secret",
        "entry_points": [{"name": "Care", "id": "1001", "flow": "nope"}, {"name": "Desk", "id": "1002", "flow": 7}],
    }
    with pytest.raises(ConfigInvalid) as caught:
        store.save("integrations", lab, runtime.provisioned, create=True)
    assert caught.value.errors == {
        "entry_points.1.flow": ["Not a valid string."],
        "entry_points.0.flow": ["no flow named 'nope'"],
    }
    lab["entry_points"] = [{"name": "Care", "id": "1001", "flow": PROVISIONED_FLOW}]
    store.save("integrations", lab, runtime.provisioned, create=True)


def test_a_flow_in_use_cannot_be_deleted_and_the_refusal_names_its_users(runtime):
    store = runtime.overrides
    store.save("flows", flow(), runtime.provisioned, create=True)
    store.save("rules", rule(), runtime.provisioned, create=True)
    lab = {
        "name": "Lab",
        "type": "ece",
        "base_url": "http://127.0.0.1:9/ece",
        "client_key": "key",
        "client_secret": "secret",
        "entry_points": [{"name": "Care", "id": "1001", "flow": "intake"}],
    }
    store.save("integrations", lab, runtime.provisioned, create=True)
    with pytest.raises(ConfigConflict) as caught:
        store.delete("flows", "intake", runtime.provisioned)
    assert str(caught.value) == "flow 'intake' is used by rule sms-vip, entry point Lab/Care: change them first"
    store.delete("rules", "sms-vip", runtime.provisioned)
    store.save(
        "integrations", {**lab, "entry_points": [{"name": "Care", "id": "1001"}]}, runtime.provisioned, create=False
    )
    store.delete("flows", "intake", runtime.provisioned)
    assert not store.raw_items("flows")


def test_an_edit_replaces_the_flow_and_the_name_is_its_key(runtime):
    store = runtime.overrides
    store.save("flows", flow(), runtime.provisioned, create=True)
    store.save("flows", flow(on_fail="close", closing="flow_closing"), runtime.provisioned, create=False)
    assert store.raw("flows", "intake")["on_fail"] == "close"


def test_flows_are_exported_and_imported_before_what_names_them(runtime):
    store = runtime.overrides
    store.save("flows", flow(), runtime.provisioned, create=True)
    store.save("rules", rule(), runtime.provisioned, create=True)
    runtime.config_changed()
    exported = import_export.export(runtime.config)
    assert "flows:\n- name: provisioned-intake" in exported.text
    assert "pattern: '[A-Z]{2}[0-9]{6}'" in exported.text
    one = import_export.export(runtime.config, "flows", "intake")
    assert one.items == 1 and one.filename == "intake.yaml"
    store.delete("rules", "sms-vip", runtime.provisioned)
    store.delete("flows", "intake", runtime.provisioned)
    runtime.config_changed()
    # One file with a flow and a rule that names it: the plan sees the flow, the apply writes it first.
    text = import_export.export(runtime.config, "flows", PROVISIONED_FLOW).text.replace(PROVISIONED_FLOW, "imported")
    text += "rules:\n- {name: sms-imported, channel: sms, event: mo, asset: test-sms, keyword: IMP,\n"
    text += "   action: {forward_to: TestRouter, entry_point: Sales, flow: imported}}\n"
    planned = import_export.plan(text, runtime.config, runtime.provisioned, store)
    assert planned.ok, planned.problems
    assert [(c.kind, c.key, c.action) for c in planned.writes] == [
        ("flows", "imported", "add"),
        ("rules", "sms-imported", "add"),
    ]
    import_export.apply(planned, store, runtime.provisioned)
    assert store.raw("rules", "sms-imported")["action"]["flow"] == "imported"
    assert store.raw("flows", "imported")["steps"][0]["choices"] == ["Quote", "Other"]


def test_an_import_naming_a_flow_that_does_not_exist_is_refused(runtime):
    text = (
        "integrations:\n- {name: Lab, type: ece, base_url: 'http://127.0.0.1:9/ece', client_key: k,\n"
        "   client_secret: '${LAB_SECRET}', entry_points: [{name: Care, id: '1001', flow: ghost}]}\n"
        "rules:\n- {name: sms-ghost, channel: sms, event: mo, asset: test-sms, keyword: G,\n"
        "   action: {forward_to: TestRouter, entry_point: Sales, flow: ghost}}\n"
    )
    planned = import_export.plan(text, runtime.config, runtime.provisioned, runtime.overrides, env={"LAB_SECRET": "s"})
    found = {(p.item, p.field, p.message) for p in planned.problems}
    assert ("integrations ('Lab')", "entry_points.0.flow", "no flow named 'ghost'") in found
    assert ("rules[0] ('sms-ghost')", "action.flow", "no flow named 'ghost'") in found


VERIFY = {
    "name": "check",
    "type": "verify",
    "url": "https://identity.example.com/verify",
    "secret": "identity-secret-0123456789",
}


def test_a_step_secret_is_masked_kept_on_a_masked_edit_and_exported_as_a_reference(runtime):
    store = runtime.overrides
    with_verify = flow(steps=[*flow()["steps"], VERIFY])
    store.save("flows", with_verify, runtime.provisioned, create=True)
    runtime.config_changed()
    from connector.config.overrides import MASK
    from connector.operations import flows

    shown = flows.row(runtime.config, "intake")
    assert shown is not None and shown.fields["steps"][1]["secret"] == MASK
    # Steps moved and the secret sent back masked: the stored one of the step with that name is kept.
    moved = flow(steps=[{**VERIFY, "secret": MASK}, *flow()["steps"]])
    store.save("flows", moved, runtime.provisioned, create=False)
    assert store.raw("flows", "intake")["steps"][0]["secret"] == VERIFY["secret"]
    runtime.config_changed()
    exported = import_export.export(runtime.config, "flows", "intake")
    assert VERIFY["secret"] not in exported.text
    assert "secret: ${INTAKE_STEPS_0_SECRET}" in exported.text and exported.variables == ["INTAKE_STEPS_0_SECRET"]
    with pytest.raises(ConfigInvalid):
        store.save("flows", flow("fresh", steps=[{**VERIFY, "secret": MASK}]), runtime.provisioned, create=True)
