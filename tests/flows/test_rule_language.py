"""A rule's `language:` condition: matched against the first message's language (detected, else the
channel's locale, else the phone's country), explained by the rule tester in the API and the UI,
saved from the rule form, and refused when it is not a language code."""

from __future__ import annotations

import time
from datetime import date

from connector.config.model import Rule, RuleAction
from connector.rules import Probe, customer_language, match, needs_language, why_not

SPANISH = "Hola, necesito ayuda con mi factura por favor"
ORDER = ["sms-es", "sms-sales", "sms-all", "messenger", "whatsapp", "apple", "inapp"]


def es_rule(**more: object) -> Rule:
    return Rule(
        name="es",
        channel="sms",
        event="mo",
        asset="sms-1",
        action=RuleAction("ECE", "Soporte"),
        language="es",
        **more,  # type: ignore[arg-type]
    )


def probe(language: str | None) -> Probe:
    return Probe("sms", "mo", "sms-1", "hola", date(2026, 12, 9), language=language)


def test_the_condition_matches_the_language_and_says_why_not() -> None:
    assert why_not(es_rule(), probe("es")) is None
    assert why_not(es_rule(), probe("fr")) == "language is fr, rule wants es"
    assert why_not(es_rule(), probe(None)) == "language is unknown, rule wants es"
    other = Rule("any", "sms", "mo", "sms-1", RuleAction("ECE", "Support"))
    assert match([es_rule(), other], probe("en")).rule == "any"
    assert needs_language([es_rule()]) and not needs_language([other])


def test_the_language_is_detected_then_the_channel_locale_then_the_phone_country() -> None:
    assert customer_language(SPANISH, {}, "sms", "+15550001111") == "es"
    assert customer_language("ok", {"locale": "pt_BR"}, "messenger", "6024417683491234") == "pt"
    assert customer_language("ok", {}, "whatsapp", "34612345678") == "es"
    assert customer_language("ok", {}, "messenger", "34612345678") is None, "a PSID is no phone number"


def test_the_check_costs_under_a_millisecond_at_p99() -> None:
    """The drain runs it on each new conversation's first message when a rule tests the language."""
    customer_language("warm up", {}, "sms", "")
    lines = [SPANISH, "Bonjour, ma commande n'est pas arrivée", "ok", "Wo ist meine Bestellung?", "obrigado"] * 40
    took = []
    for text in lines:
        start = time.perf_counter()
        customer_language(text, {}, "sms", "+34612345678")
        took.append(time.perf_counter() - start)
    took.sort()
    assert took[int(len(took) * 0.99)] < 0.001


def es_rule_body() -> dict[str, object]:
    return {
        "name": "sms-es",
        "channel": "sms",
        "event": "mo",
        "asset": "test-sms",
        "language": "es",
        "action": {"forward_to": "TestRouter", "entry_point": "Sales"},
    }


def test_the_api_saves_the_condition_and_the_tester_explains_it(api_client) -> None:
    editor = api_client("editor")
    created = editor.post("/api/v1/rules", json=es_rule_body())
    assert created.status_code == 201, created.json
    assert created.json["language"] == "es"
    assert editor.put("/api/v1/rules/order", json={"order": ORDER}).status_code == 200

    spanish = editor.post("/api/v1/rules/test", json={"channel": "sms", "asset": "test-sms", "text": SPANISH}).json
    assert spanish["rule"] == "sms-es" and spanish["language"] == "es" and spanish["language_source"] == "detected"
    english = editor.post("/api/v1/rules/test", json={"channel": "sms", "asset": "test-sms", "text": "hello there"})
    assert english.json["rules"][0]["reason"] == "language is en, rule wants es"
    short = editor.post("/api/v1/rules/test", json={"channel": "sms", "asset": "test-sms", "text": "ok"}).json
    assert short["rules"][0]["reason"] == "language is unknown, rule wants es", "too short to tell"
    given = {"channel": "sms", "asset": "test-sms", "text": "ok", "language": "es"}
    answer = editor.post("/api/v1/rules/test", json=given).json
    assert answer["rule"] == "sms-es" and answer["language_source"] == "given"


def test_the_api_refuses_a_language_that_is_not_a_code(api_client) -> None:
    editor = api_client("editor")
    refused = editor.post("/api/v1/rules", json={**es_rule_body(), "language": "Spanish"})
    assert refused.status_code == 422
    assert "language" in str(refused.json["errors"])
    tester = editor.post("/api/v1/rules/test", json={"channel": "sms", "asset": "test-sms", "language": "ES"})
    assert tester.status_code == 422 and "language" in str(tester.json["errors"])


def test_the_ui_form_saves_the_language_and_the_tester_shows_it(operator, runtime) -> None:
    editor = operator("editor")
    form = {
        "csrf_token": editor.csrf,
        "name": "sms-es",
        "channel": "sms",
        "event": "mo",
        "asset": "test-sms",
        "keyword": "",
        "language": "es",
        "forward_to": "TestRouter",
        "entry_point": "Sales",
        "start": "",
        "end": "",
        "status": "active",
    }
    saved = editor.post("/admin/rules/new", data=form)
    assert saved.status_code in (302, 303), saved.get_data(as_text=True)[:500]
    (rule,) = [r for r in runtime.config.rules if r.name == "sms-es"]
    assert rule.language == "es"
    runtime.overrides.set_rule_order(ORDER, runtime.config)
    runtime.config_changed()
    page = editor.get(
        "/admin/rules/",
        query_string={"channel": "sms", "asset": "test-sms", "text": "Bonjour, ma commande n'est pas arrivée"},
    )
    text = page.get_data(as_text=True)
    assert "Language: fr (detected in the text)" in text
    assert "language is fr, rule wants es" in text
    given = editor.get("/admin/rules/", query_string={"channel": "sms", "asset": "test-sms", "language": "es"})
    assert "Rule &#39;sms-es&#39; matches" in given.get_data(as_text=True)
    bad = editor.get("/admin/rules/", query_string={"channel": "sms", "asset": "test-sms", "language": "Spanish"})
    assert "a language code like es" in bad.get_data(as_text=True)
