"""The steps that wait for no answer, through the pure engine: `language` (detected, too short →
the channel's locale → the phone's country → the default), `branch` (by language, by an answer,
first match wins, none: the rule's entry point) and `hours` (open, closed → discard, closed →
route, a holiday), each decided at the event's acceptance time."""

from __future__ import annotations

from datetime import UTC, date, datetime

from connector.flows import branching, engine
from connector.flows.definition import AskStep, Branch, BranchStep, Condition, Flow, HoursStep, LanguageStep
from connector.flows.hours import load_calendar

LANGUAGE = LanguageStep("lang")
TOPIC = AskStep(name="topic", question="ask_topic", attribute="topic", answer="choices", choices=("Billing", "Other"))
BY_LANGUAGE = Branch(Condition(language="es"), "Soporte")
BY_TOPIC = Branch(Condition(attributes=(("topic", "billing"),)), "Billing")
ROUTE = BranchStep("route", (BY_LANGUAGE, BY_TOPIC))
MADRID = load_calendar(
    {
        "time_zone": "Europe/Madrid",
        "weekly": {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": [{"date": "2026-12-25", "name": "Navidad"}],
    }
)
WEDNESDAY_NOON = datetime(2026, 12, 9, 11, 0, tzinfo=UTC)  # 12:00 in Madrid
WEDNESDAY_NIGHT = datetime(2026, 12, 9, 21, 0, tzinfo=UTC)  # 22:00 in Madrid
CHRISTMAS_NOON = datetime(2026, 12, 25, 11, 0, tzinfo=UTC)  # a Friday, but a holiday
FACTS = branching.Facts(locales=("en", "es"), default_locale="en", entry_point="Support")


def event(text: str) -> dict[str, object]:
    return {"provider_id": text[:8], "text": text}


def run(flow: Flow, text: str, facts: branching.Facts = FACTS) -> tuple[engine.FlowState | None, list[engine.Action]]:
    return engine.start(flow, event(text), facts)


def locale_of(actions: list[engine.Action]) -> branching.LocaleSet:
    (found,) = [a for a in actions if isinstance(a, branching.LocaleSet)]
    return found


# -- language ---------------------------------------------------------------------------------------


def test_a_clear_first_message_sets_the_detected_locale_and_the_flow_goes_on() -> None:
    state, actions = run(Flow("f", (LANGUAGE, TOPIC)), "Hola, quiero saber dónde está mi pedido")
    found = locale_of(actions)
    assert (found.choice.locale, found.choice.source, found.language) == ("es", "detected", "es")
    assert isinstance(actions[-1], engine.Ask) and actions[-1].step == "topic", "it waits for no answer"
    assert state is not None and state.step == 1


def test_a_short_message_falls_back_to_the_channel_locale() -> None:
    facts = branching.Facts(locales=("en", "es"), channel_locale="es_ES", phone="+4915112345678")
    found = locale_of(run(Flow("f", (LANGUAGE,)), "ok", facts)[1])
    assert (found.choice.locale, found.choice.source, found.language) == ("es", "channel", "es")


def test_then_to_the_country_of_the_phone() -> None:
    facts = branching.Facts(locales=("en", "es"), phone="+34 612 345 678")
    found = locale_of(run(Flow("f", (LANGUAGE,)), "ok", facts)[1])
    assert (found.choice.locale, found.choice.source) == ("es", "country")


def test_then_to_the_default() -> None:
    facts = branching.Facts(locales=("en", "es"), default_locale="es", phone="0612345678")
    found = locale_of(run(Flow("f", (LANGUAGE,)), "ok", facts)[1])
    assert (found.choice.locale, found.choice.source, found.language) == ("es", "default", None)


def test_an_unsupported_language_keeps_the_customer_language_for_branches() -> None:
    """French on an en/es deployment is answered in the default, but a branch still reads `fr`."""
    found = locale_of(run(Flow("f", (LANGUAGE,)), "Bonjour, je voudrais suivre ma commande s'il vous plaît")[1])
    assert (found.choice.locale, found.choice.source, found.language) == ("en", "default", "fr")


# -- branch -----------------------------------------------------------------------------------------


def branched(actions: list[engine.Action]) -> branching.Branched:
    (found,) = [a for a in actions if isinstance(a, branching.Branched)]
    return found


def test_a_branch_matches_the_language_a_language_step_found() -> None:
    state, actions = run(Flow("f", (LANGUAGE, ROUTE)), "Buenas tardes, tengo un problema con mi factura")
    assert branched(actions) == branching.Branched("route", "Soporte", 0)
    assert state is None and isinstance(actions[-1], engine.Route)


def test_without_a_language_step_a_branch_reads_the_conversation_language_then_the_text() -> None:
    facts = branching.Facts(language="es")
    assert branched(run(Flow("f", (ROUTE,)), "ok", facts)[1]).entry_point == "Soporte"
    detected = run(Flow("f", (ROUTE,)), "Necesito ayuda con mi cuenta, por favor")[1]
    assert branched(detected).entry_point == "Soporte"


def test_a_branch_matches_an_answer_of_the_same_turn_case_ignored() -> None:
    flow = Flow("f", (TOPIC, ROUTE))
    state, _ = run(flow, "Hello there, I need some help with my account")
    assert state is not None
    state, actions = engine.receive(flow, state, event("billing"), "billing", None, FACTS)
    assert actions[0] == engine.Answered("topic", "topic", "Billing")
    assert branched(actions) == branching.Branched("route", "Billing", 1)
    assert state is None and isinstance(actions[-1], engine.Route)


def test_the_first_matching_branch_wins() -> None:
    facts = branching.Facts(language="es", attributes={"topic": "Billing"})
    assert branched(run(Flow("f", (ROUTE,)), "x", facts)[1]).branch == 0


def test_no_match_keeps_the_entry_point() -> None:
    facts = branching.Facts(language="en", attributes={"topic": "Other"})
    assert branched(run(Flow("f", (ROUTE,)), "Hello, I would like some help", facts)[1]) == branching.Branched(
        "route", None, None
    )


def test_a_condition_with_both_parts_needs_both() -> None:
    both = Condition(language="es", attributes=(("topic", "Billing"),))
    assert branching.holds(both, [], branching.Facts(language="es", attributes={"topic": "Billing"}), [])
    assert not branching.holds(both, [], branching.Facts(language="es", attributes={"topic": "Other"}), [])
    assert not branching.holds(both, [], branching.Facts(language="en", attributes={"topic": "Billing"}), [])


# -- hours ------------------------------------------------------------------------------------------


def hours_flow(closed: str, step_calendar: bool = False) -> Flow:
    hours = HoursStep("open", closed=closed, calendar=MADRID if step_calendar else None)
    return Flow("f", (ROUTE, hours, TOPIC))


def at(when: datetime) -> branching.Facts:
    return branching.Facts(at=when, entry_point="Support", calendars={"Soporte": MADRID}, language="es")


def checked(actions: list[engine.Action]) -> branching.HoursChecked:
    (found,) = [a for a in actions if isinstance(a, branching.HoursChecked)]
    return found


def test_open_hours_go_on_to_the_next_step() -> None:
    state, actions = run(hours_flow("discard"), "x", at(WEDNESDAY_NOON))
    assert checked(actions) == branching.HoursChecked("open", True, "discard", "entry point Soporte")
    assert state is not None and isinstance(actions[-1], engine.Ask)


def test_closed_hours_with_discard_end_the_flow_without_routing() -> None:
    state, actions = run(hours_flow("discard"), "x", at(WEDNESDAY_NIGHT))
    assert checked(actions).open is False
    assert state is None and not any(isinstance(a, engine.Route | engine.Ask) for a in actions)
    assert branching.ends_flow(checked(actions))


def test_closed_hours_with_route_go_on() -> None:
    state, actions = run(hours_flow("route"), "x", at(WEDNESDAY_NIGHT))
    assert checked(actions).open is False and not branching.ends_flow(checked(actions))
    assert state is not None and isinstance(actions[-1], engine.Ask)


def test_a_holiday_is_closed_on_a_weekday() -> None:
    assert CHRISTMAS_NOON.date() == date(2026, 12, 25) and CHRISTMAS_NOON.weekday() == 4
    assert checked(run(hours_flow("discard"), "x", at(CHRISTMAS_NOON))[1]).open is False


def test_the_step_calendar_wins_and_an_entry_point_without_hours_is_open() -> None:
    facts = branching.Facts(at=WEDNESDAY_NIGHT, entry_point="Support")
    assert checked(run(Flow("f", (HoursStep("open"),)), "x", facts)[1]).calendar == "none"
    found = checked(run(Flow("f", (HoursStep("open", calendar=MADRID),)), "x", facts)[1])
    assert (found.open, found.calendar) == (False, "step")


def test_the_same_event_decides_the_same() -> None:
    """The time is the event's (`Facts.at`), not the clock: a repeat after a crash decides alike."""
    facts = at(WEDNESDAY_NIGHT)
    assert run(hours_flow("discard"), "x", facts)[1] == run(hours_flow("discard"), "x", facts)[1]
