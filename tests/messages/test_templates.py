"""System-message templates: shipped defaults, selection, locales, the sandbox and the output cap."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from connector.config.model import EntryPoint
from connector.config.schemas import MESSAGE_TYPES
from connector.messages import MessageContext, MessageTemplates, TemplateError, resolve_locale, sample_context
from connector.messages import templates as templates_module
from connector.messages.context import customer_context, hours_context, queue_context

SHIPPED = Path(__file__).resolve().parents[2] / "message_templates"


@pytest.fixture
def templates() -> MessageTemplates:
    return MessageTemplates(SHIPPED)


@pytest.fixture
def private_dir(tmp_path: Path) -> Path:
    """A copy of the shipped templates a test may edit."""
    target = tmp_path / "message_templates"
    shutil.copytree(SHIPPED, target)
    return target


def support(**messages: str) -> EntryPoint:
    return EntryPoint(name="Support", id="1001", messages=messages)


# -- shipped defaults ---------------------------------------------------------------------------------


def test_en_and_es_ship_a_file_for_every_type(templates: MessageTemplates) -> None:
    assert {"en", "es"} <= set(templates.locales())
    for locale in ("en", "es"):
        for message_type in MESSAGE_TYPES:
            assert (SHIPPED / locale / f"{message_type}.txt.j2").is_file(), (locale, message_type)


@pytest.mark.parametrize("locale", ["en", "es"])
@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_every_type_renders_with_its_sample_context(
    templates: MessageTemplates, message_type: str, locale: str
) -> None:
    text = templates.render(message_type, sample_context(message_type), locale=locale, entry_point=None)
    assert text and text == text.strip()
    assert "{" not in text and "}" not in text
    templates.validate(templates.source(message_type, locale)[0])


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_spanish_is_not_the_english_text(templates: MessageTemplates, message_type: str) -> None:
    context = sample_context(message_type)
    english = templates.render(message_type, context, locale="en", entry_point=None)
    assert templates.render(message_type, context, locale="es", entry_point=None) != english


@pytest.mark.parametrize(
    ("message_type", "expected"),
    [
        (
            "welcome",
            "Thank you for contacting us. We are here to help you resolve your issue. "
            "Please be patient until an agent attends you.",
        ),
        ("agent_assigned", "You are now chatting with CiscoAgent1."),
        ("transfer_queue", "You have been transferred to the Network Issues queue."),
        ("attachment_accepted", "The agent has accepted your attachment."),
        ("agent_closed", "The agent has marked your chat closed."),
        ("no_agents", "Sorry! There are no agents available right now to be with you. Please come back later."),
        (
            "queue_status",
            "Thank you for waiting. You are number 3 in the queue. The estimated wait is about 5 minutes.",
        ),
    ],
)
def test_english_defaults_follow_the_reference_wording(
    templates: MessageTemplates, message_type: str, expected: str
) -> None:
    assert templates.render(message_type, sample_context(message_type), locale="en", entry_point=None) == expected


@pytest.mark.parametrize(
    ("queue", "locale", "expected"),
    [
        (
            queue_context(1, 1, 30),
            "en",
            "Thank you for waiting. You are number 1 in the queue. The estimated wait is about 1 minute.",
        ),
        (
            queue_context(None, None, None),
            "en",
            "Thank you for waiting. An agent will be with you as soon as possible.",
        ),
        (
            queue_context(2, 5, None),
            "es",
            "Gracias por esperar. Usted es el número 2 en la cola. Un agente le atenderá lo antes posible.",
        ),
    ],
)
def test_queue_status_without_position_or_estimate(
    templates: MessageTemplates, queue: dict, locale: str, expected: str
) -> None:
    context = replace(sample_context("queue_status"), queue=queue)
    assert templates.render("queue_status", context, locale=locale, entry_point=None) == expected


def test_a_missing_agent_or_transfer_name_still_reads_well(templates: MessageTemplates) -> None:
    bare = MessageContext(
        customer=customer_context("sms", "+15550002222"), entry_point={"name": "Support", "id": "1001"}
    )
    assert (
        templates.render("agent_assigned", bare, locale="en", entry_point=None) == "You are now chatting with an agent."
    )
    assert (
        templates.render("transfer_queue", bare, locale="en", entry_point=None)
        == "You have been transferred to another queue."
    )


# -- selection ------------------------------------------------------------------------------------------


def test_entry_point_override_wins_in_every_locale(templates: MessageTemplates) -> None:
    entry_point = support(agent_assigned="{{ agent.name }} is here for {{ customer.name }}.")
    context = sample_context("agent_assigned")
    for locale in ("en", "es", "fr", None):
        assert templates.render("agent_assigned", context, locale=locale, entry_point=entry_point) == (
            "CiscoAgent1 is here for Alex Morgan."
        )
    assert templates.source("agent_assigned", "es", entry_point) == (
        "{{ agent.name }} is here for {{ customer.name }}.",
        "entry point Support override",
    )
    # other types of the same entry point keep their files
    assert templates.source("welcome", "es", entry_point)[1] == "message_templates/es/welcome.txt.j2"


@pytest.mark.parametrize("override", ["", "   \n", "{% if agent %}{{ agent.name }}{% endif %}"])
def test_an_empty_override_turns_the_message_off(templates: MessageTemplates, override: str) -> None:
    entry_point = support(welcome=override)
    assert templates.render("welcome", sample_context("welcome"), locale="en", entry_point=entry_point) is None


def test_an_empty_file_turns_the_message_off(private_dir: Path) -> None:
    (private_dir / "es" / "agent_closed.txt.j2").write_text("")
    templates = MessageTemplates(private_dir)
    assert templates.render("agent_closed", sample_context("agent_closed"), locale="es", entry_point=None) is None
    assert templates.render("agent_closed", sample_context("agent_closed"), locale="en", entry_point=None)


def test_a_locale_without_the_file_uses_the_default_locale(private_dir: Path) -> None:
    (private_dir / "fr").mkdir()
    (private_dir / "fr" / "welcome.txt.j2").write_text("Bonjour {{ customer.name }} !\n")
    templates = MessageTemplates(private_dir)
    context = sample_context("agent_closed")
    assert templates.render("welcome", context, locale="fr_FR", entry_point=None) == "Bonjour Alex Morgan !"
    assert (
        templates.render("agent_closed", context, locale="fr", entry_point=None)
        == "The agent has marked your chat closed."
    )
    assert templates.source("agent_closed", "fr")[1] == "message_templates/en/agent_closed.txt.j2"


def test_a_locale_folder_added_or_removed_while_running_is_seen_at_the_next_message(
    private_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = MessageTemplates(private_dir)
    mtime = private_dir.stat().st_mtime_ns
    assert "de" not in templates.locales()
    (private_dir / "de").mkdir()
    (private_dir / "de" / "welcome.txt.j2").write_text("Hallo!\n")
    os.utime(private_dir, ns=(mtime, mtime))  # a filesystem whose mtime did not move
    assert "de" not in templates.locales(), "the listing is kept while the mtime stays"
    monkeypatch.setattr(templates_module, "LOCALES_RECHECK_SECONDS", 0.0)
    assert "de" in templates.locales(), "listed again once the recheck age passed"
    assert templates.render("welcome", sample_context("welcome"), locale="de", entry_point=None) == "Hallo!"
    monkeypatch.setattr(templates_module, "LOCALES_RECHECK_SECONDS", 3600.0)
    shutil.rmtree(private_dir / "de")
    assert "de" not in templates.locales(), "the directory's mtime moved"


def test_the_entry_point_default_locale_applies_when_the_customer_has_none(templates: MessageTemplates) -> None:
    entry_point = EntryPoint(name="Ventas", id="1002", default_locale="es")
    context = sample_context("agent_closed")
    assert (
        templates.render("agent_closed", context, locale=None, entry_point=entry_point)
        == "El agente ha cerrado su chat."
    )
    assert (
        templates.render("agent_closed", context, locale="de_DE", entry_point=entry_point)
        == "El agente ha cerrado su chat."
    )
    assert templates.render("agent_closed", context, locale="en_GB", entry_point=entry_point) == (
        "The agent has marked your chat closed."
    )


def test_an_edited_file_is_read_again(private_dir: Path) -> None:
    templates = MessageTemplates(private_dir)
    context = sample_context("welcome")
    assert templates.render("welcome", context, locale="en", entry_point=None).startswith("Thank you")
    path = private_dir / "en" / "welcome.txt.j2"
    path.write_text("Hello {{ customer.name }}.")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert templates.render("welcome", context, locale="en", entry_point=None) == "Hello Alex Morgan."


def test_unknown_message_types_are_programming_errors(templates: MessageTemplates) -> None:
    with pytest.raises(ValueError, match="unknown message type 'hello'"):
        templates.render("hello", sample_context("welcome"), locale="en", entry_point=None)
    with pytest.raises(ValueError, match="unknown message type"):
        sample_context("hello")


@pytest.mark.parametrize(
    ("customer", "entry_point_default", "available", "expected"),
    [
        ("es", "en", ["en", "es"], "es"),
        ("es_MX", "en", ["en", "es"], "es"),
        ("es-MX", "en", ["en", "es", "es_MX"], "es_MX"),
        ("pt-BR", "en", ["en", "pt_BR"], "pt_BR"),
        ("pt_br", "en", ["en", "pt_BR"], "pt_BR"),
        ("PT-br", "en", ["en", "pt_BR", "pt"], "pt_BR"),
        ("pt_PT", "en", ["en", "pt_BR"], "pt_BR"),  # same language beats another language
        ("es", "en", ["en", "es_MX"], "es_MX"),
        ("en_US.UTF-8", "es", ["en", "es"], "en"),
        ("zh-Hant-TW", "en", ["en", "zh_Hant"], "zh_Hant"),
        ("fr", "es", ["en", "es"], "es"),
        ("fr", "de", ["en", "es"], "en"),
        (None, "es", ["en", "es"], "es"),
        ("", None, ["en", "es"], "en"),
        ("  ", "es-ES", ["en", "es"], "es"),
        (None, None, [], "en"),
    ],
)
def test_locale_resolution(
    customer: str | None, entry_point_default: str | None, available: list[str], expected: str
) -> None:
    assert resolve_locale(customer, entry_point_default, available) == expected


# -- the sandbox ----------------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ agent['__class__'] }}",
    "{{ [1, 2].append(3) }}",
    "{% for x in range(10**9) %}x{% endfor %}",
    "{% for x in range(1000000000) %}{% endfor %}",
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "{{ 10 ** 10 ** 10 }}",
    "{{ 'x' | center(1000000000) }}",
    "{{ 'x'.zfill(1000000000) }}",
    "{{ 'ab' * 100000 }}",
    "{{ '%0999999999d' | format(1) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set t %}{{ ns.s }}{{ ns.s }}{% endset %}"
    "{% set ns.s = t %}{% endfor %}",
    "{% macro grow(s) %}{{ grow(s + s) }}{% endmacro %}{{ grow('x') }}",
    "{{ lipsum(100000) }}",
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("source", ESCAPES)
def test_escape_and_exhaustion_attempts_fail_safely(templates: MessageTemplates, source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        templates.render_source(source, sample_context("agent_assigned"))
    assert caught.value.line == 1
    assert "Traceback" not in caught.value.message


@pytest.mark.parametrize("source", ESCAPES)
def test_a_broken_override_falls_back_to_the_default_file(
    templates: MessageTemplates, source: str, caplog: pytest.LogCaptureFixture
) -> None:
    entry_point = support(agent_assigned=source)
    with caplog.at_level(logging.ERROR, logger="connector.messages.templates"):
        text = templates.render(
            "agent_assigned", sample_context("agent_assigned"), locale="es", entry_point=entry_point
        )
    assert text == "Ahora está conversando con CiscoAgent1."
    [record] = caplog.records
    assert record.template == "entry point Support override"
    assert record.message_type == "agent_assigned"


def test_a_broken_file_after_a_broken_override_sends_nothing(
    private_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (private_dir / "en" / "agent_closed.txt.j2").write_text("Bye\n{{ ''.__class__ }}\n")
    templates = MessageTemplates(private_dir)
    entry_point = support(agent_closed="{% if %}")
    with caplog.at_level(logging.ERROR, logger="connector.messages.templates"):
        text = templates.render("agent_closed", sample_context("agent_closed"), locale="en", entry_point=entry_point)
    assert text is None
    assert [(r.template, r.line) for r in caplog.records] == [
        ("entry point Support override", 1),
        ("message_templates/en/agent_closed.txt.j2", 2),
    ]


def test_ordinary_jinja_still_works(templates: MessageTemplates) -> None:
    source = (
        "{% set first = customer.name.split(' ')[0] %}"
        "Hi {{ first|upper }}, {{ '%d'|format(queue.position) }} of {{ queue.depth }}"
        "{% for i in range(2) %}.{% endfor %} {{ queue.wait_seconds // 60 }}m {{ customer.details.psid[:4] }}"
        "{{ agent.name.first.letter }}"
    )
    assert templates.render_source(source, sample_context("queue_status")) == "Hi ALEX, 3 of 7.. 4m 6024"


# -- errors an operator can act on ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "fragment"),
    [
        ("Hello\nthere\n{% if agent %}unclosed", 3, "endif"),
        ("Hello {{ agent.name }", 1, "unexpected '}'"),
        ("a\nb\n{{ agent.name | nosuchfilter }}", 3, "nosuchfilter"),
        ("one\n{{ agnet.name }}", 2, "unknown variable 'agnet'"),
        ("one\ntwo\n{{ customer.__class__ }}", 3, "'__class__' is not allowed"),
    ],
)
def test_validate_names_the_line(templates: MessageTemplates, source: str, line: int, fragment: str) -> None:
    with pytest.raises(TemplateError) as caught:
        templates.validate(source)
    assert caught.value.line == line
    assert fragment in caught.value.message
    assert str(caught.value).startswith(f"line {line}: ")


def test_validate_accepts_loops_sets_and_macros(templates: MessageTemplates) -> None:
    templates.validate(
        "{% macro who(a) %}{{ a.name }}{% endmacro %}{% set n = 1 %}"
        "{% for x in range(3) %}{{ loop.index }}{{ who(agent) }}{{ n }}{% endfor %}{{ namespace(a=1).a }}"
    )


def test_render_errors_name_the_line(templates: MessageTemplates) -> None:
    with pytest.raises(TemplateError) as caught:
        templates.render_source("a\nb\n{{ queue.position + 'x' }}", sample_context("queue_status"))
    assert caught.value.line == 3
    assert "TypeError" in caught.value.message


# -- output cap -----------------------------------------------------------------------------------------


def test_output_is_capped_on_a_word_boundary() -> None:
    templates = MessageTemplates(SHIPPED, output_cap=60)
    source = "{% for i in range(50) %}word{{ i }} {% endfor %}"
    full = " ".join(f"word{i}" for i in range(50))
    text = templates.render_source(source, sample_context("welcome"))
    assert len(text) <= 60
    assert text.endswith("…")
    kept = text[:-1]
    assert full.startswith(kept) and full[len(kept)] == " "


def test_capped_output_of_a_runaway_template_stops_early() -> None:
    templates = MessageTemplates(SHIPPED, output_cap=100)
    text = templates.render(
        "welcome",
        sample_context("welcome"),
        locale="en",
        entry_point=support(welcome="{% for i in range(10000) %}{{ 'spam ' * 100 }}{% endfor %}"),
    )
    assert text is not None and len(text) == 100 and text.endswith("spam…")


def test_a_short_message_is_not_touched_by_the_cap() -> None:
    templates = MessageTemplates(SHIPPED, output_cap=100)
    assert templates.render_source("  Hi!\n\n", sample_context("welcome")) == "Hi!"


# -- context --------------------------------------------------------------------------------------------


def test_the_context_holds_only_plain_values() -> None:
    class Live:
        def __str__(self) -> str:
            return "live"

    context = MessageContext(
        customer={"name": "A", "details": {"profile": Live(), "vip": True, "score": 2.6, "nested": {"x": 1}}},
        agent={"id": 7, "name": None},
        entry_point={"name": "Support", "id": "1001"},
        queue={"wait_seconds": 61.2},
    )
    values = context.as_dict()
    assert values["customer"]["details"] == {"profile": "live", "vip": "true", "score": 3, "nested": "{'x': 1}"}
    assert values["agent"] == {"id": 7, "name": None}
    assert values["transfer"] is None and values["attachment"] is None

    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        return value is None or isinstance(value, str | int)

    assert plain(values)
    for message_type in MESSAGE_TYPES:
        assert plain(sample_context(message_type).as_dict())


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(None, None), (-5, None), (0, 1), (59, 1), (60, 1), (61, 2), (250, 5), (3600.4, 61)],
)
def test_wait_minutes_round_up(seconds: float | None, minutes: int | None) -> None:
    assert queue_context(1, 2, seconds)["wait_minutes"] == minutes


@pytest.mark.parametrize(
    ("next_opening", "time_zone", "locale", "shown"),
    [
        ("2026-12-07T09:00:00+01:00", "Europe/Madrid", "en", "Mon, Dec 7, 9:00 AM"),
        ("2026-12-07T09:00:00+01:00", "Europe/Madrid", "es", "lun, 7 de diciembre, 9:00"),
        # The same instant given in UTC is shown on the calendar's wall clock, not in UTC.
        ("2026-12-07T08:00:00+00:00", "Europe/Madrid", "es_ES", "lun, 7 de diciembre, 9:00"),
        ("2026-07-06T13:00:00+00:00", "America/New_York", "en_US", "Mon, Jul 6, 9:00 AM"),
        ("2026-12-07T09:00:00+01:00", "Europe/Madrid", "not-a-locale", "Mon, Dec 7, 9:00 AM"),
    ],
)
def test_hours_next_opening_is_shown_in_the_calendars_zone_for_the_locale(
    next_opening: str, time_zone: str, locale: str, shown: str
) -> None:
    found = hours_context(next_opening, time_zone, locale)
    assert found == {"next_opening": shown, "next_opening_iso": next_opening, "time_zone": time_zone}


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        (
            "en",
            "Thank you for your message. We are closed right now: we open again Mon, Dec 7, 9:00 AM "
            "(Europe/Madrid time), please write to us then.",
        ),
        (
            "es",
            "Gracias por su mensaje. Ahora mismo estamos cerrados: volvemos a abrir: lun, 7 de diciembre, 9:00 "
            "(hora de Europe/Madrid); escríbanos entonces.",
        ),
    ],
)
def test_out_of_hours_says_when_the_calendar_opens_next(
    templates: MessageTemplates, locale: str, expected: str
) -> None:
    context = replace(
        sample_context("out_of_hours"), hours=hours_context("2026-12-07T09:00:00+01:00", "Europe/Madrid", locale)
    )
    assert templates.render("out_of_hours", context, locale=locale, entry_point=None) == expected


def test_out_of_hours_without_a_next_opening_keeps_the_general_sentence(templates: MessageTemplates) -> None:
    context = replace(sample_context("out_of_hours"), hours=hours_context(None, None, "en"))
    assert templates.render("out_of_hours", context, locale="en", entry_point=None) == (
        "Thank you for your message. We are closed right now: please write to us again during our business hours."
    )
