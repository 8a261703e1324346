"""Language detection and the locale choice: the chat-line table row by row, then the fallbacks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connector.flows.language import (
    COUNTRY_LANGUAGES,
    DETECTED_LANGUAGES,
    MIN_CONFIDENCE,
    MIN_LETTERS,
    SURE_CONFIDENCE,
    LocaleChoice,
    choose_locale,
    detect,
    is_reliable,
    match_locale,
    phone_language,
)

TABLE = yaml.safe_load((Path(__file__).parent / "chat_lines.yaml").read_text(encoding="utf-8"))
LINES = [(row["text"], written_in, row["expect"]) for written_in, rows in TABLE.items() for row in rows]
SIX = ("ar", "de", "en", "es", "fr", "pt")


def test_the_table_has_ten_lines_or_more_in_each_of_the_six_languages() -> None:
    assert sorted(TABLE) == sorted(SIX) == sorted(DETECTED_LANGUAGES)
    assert all(len(rows) >= 10 for rows in TABLE.values())
    assert len(LINES) >= 60
    assert len({text for text, _, _ in LINES}) == len(LINES)


@pytest.mark.parametrize(("text", "written_in", "expect"), LINES, ids=[f"{w}:{t}" for t, w, _ in LINES])
def test_chat_line(text: str, written_in: str, expect: str | None) -> None:
    """A line is detected as `expect`, or (null) falls back: here to the default, as nothing else is given."""
    choice = choose_locale([text], supported=SIX, default="en")
    if expect is None:
        assert (choice.source, choice.locale) == ("default", "en")
    else:
        assert (choice.source, choice.locale) == ("detected", expect)
    assert (choice.language, choice.confidence) == detect(text, languages=SIX)


def test_the_table_is_mostly_detected_and_never_confidently_wrong_in_the_six_languages() -> None:
    """The bench prints the accuracy; this pins its floor so a library upgrade cannot halve it unseen."""
    detected = [(written_in, expect) for _, written_in, expect in LINES if expect is not None]
    wrong = [pair for pair in detected if pair[0] != pair[1]]
    assert len(detected) >= 0.75 * len(LINES)
    assert wrong == [("ar", "fr")]  # the Darija line in Latin letters, documented in the table


# -- detect ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "👍", "48213", "??", "+34 612 345 678"])
def test_a_text_without_letters_has_no_language(text: str) -> None:
    assert detect(text) == (None, 0.0)


def test_detection_considers_only_the_given_languages() -> None:
    italian = "buongiorno, il mio ordine non è ancora arrivato"
    assert detect(italian, languages={"en", "it"})[0] == "it"
    assert detect(italian)[0] in DETECTED_LANGUAGES
    assert detect(italian, languages={"xx", "yy"}) == (None, 0.0)  # no language the model knows


# -- thresholds -----------------------------------------------------------------------------------------


def test_reliable_needs_enough_letters_and_confidence() -> None:
    word = "a" * MIN_LETTERS
    assert is_reliable(word, MIN_CONFIDENCE)
    assert not is_reliable(word, MIN_CONFIDENCE - 0.01)
    assert not is_reliable(word[:-1] + " 1!", 0.98)  # digits and punctuation are not letters
    assert is_reliable("نعم", SURE_CONFIDENCE)


def test_several_messages_are_read_together() -> None:
    assert choose_locale(["hola", "necesito ayuda con mi pedido"], supported=SIX, default="en").source == "detected"
    together = choose_locale(["hola", "ok"], supported=SIX, default="en")
    assert (together.source, together.locale) == ("default", "en")


# -- fallbacks, in order ------------------------------------------------------------------------------


def test_detection_wins_over_the_channel_and_the_phone() -> None:
    choice = choose_locale(
        ["bonjour, ma commande n'est pas arrivée"],
        supported=SIX,
        default="en",
        channel_locale="es_ES",
        phone="+4915112345678",
    )
    assert choice.locale == "fr"
    assert choice.source == "detected"
    assert choice.language == "fr"
    assert choice.confidence >= MIN_CONFIDENCE


def test_short_text_falls_back_to_the_channel_locale() -> None:
    choice = choose_locale(["ok"], supported=SIX, default="en", channel_locale="es_ES", phone="+4915112345678")
    assert (choice.locale, choice.source) == ("es", "channel")
    assert choice.confidence < MIN_CONFIDENCE


def test_then_to_the_country_of_the_phone_number() -> None:
    choice = choose_locale(["ok"], supported=SIX, default="en", phone="whatsapp:+33612345678")
    assert (choice.locale, choice.source) == ("fr", "country")


def test_an_unsupported_channel_locale_is_skipped_for_the_phone() -> None:
    choice = choose_locale(["ok"], supported=SIX, default="en", channel_locale="it_IT", phone="+5511987654321")
    assert (choice.locale, choice.source) == ("pt", "country")


def test_then_to_the_default() -> None:
    assert choose_locale(["ok"], supported=SIX, default="es", phone="+81 90 1234 5678") == LocaleChoice(
        "es", "default", *detect("ok", languages=SIX)
    )
    nothing = choose_locale([], supported=SIX, default="en")
    assert nothing == LocaleChoice("en", "default", None, 0.0)


def test_an_unsupported_detected_language_falls_back() -> None:
    """French is recognised (not forced into English or Spanish) and, unsupported, falls back."""
    choice = choose_locale(
        ["je voudrais annuler mon abonnement"], supported=("en", "es"), default="en", channel_locale="es_MX"
    )
    assert (choice.locale, choice.source, choice.language) == ("es", "channel", "fr")
    assert choice.confidence >= MIN_CONFIDENCE
    default = choose_locale(["je voudrais annuler mon abonnement"], supported=("en", "es"), default="en")
    assert (default.locale, default.source, default.language) == ("en", "default", "fr")


def test_a_supported_locale_outside_the_six_is_detected() -> None:
    choice = choose_locale(["buongiorno, il mio ordine non è ancora arrivato"], supported=("en", "it"), default="en")
    assert (choice.locale, choice.source) == ("it", "detected")


def test_locales_are_matched_as_template_folders_are() -> None:
    """A detected language or a channel locale maps onto the folder name as spelled (pt → pt_BR)."""
    supported = ("en", "es", "pt_BR")
    detected = choose_locale(["nao consigo entrar na minha conta"], supported=supported, default="en")
    assert (detected.locale, detected.source) == ("pt_BR", "detected")
    assert choose_locale(["ok"], supported=supported, default="en", channel_locale="pt-BR").locale == "pt_BR"
    assert choose_locale(["ok"], supported=supported, default="en", channel_locale="en_US.UTF-8").locale == "en"
    assert choose_locale(["ok"], supported=supported, default="EN").locale == "en"
    assert choose_locale(["ok"], supported=supported, default="fr").locale == "fr"  # the default as given


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("es_ES", "es"),
        ("es", "es"),
        ("pt", "pt_BR"),
        ("pt_PT", "pt_BR"),
        ("pt-br", "pt_BR"),
        ("de_DE", None),
        ("", None),
        (None, None),
    ],
)
def test_match_locale(wanted: str | None, expected: str | None) -> None:
    assert match_locale(wanted, ("en", "es", "pt_BR")) == expected


# -- the country table ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "language"),
    [
        ("+34 612 345 678", "es"),
        ("+33 6 12 34 56 78", "fr"),
        ("+49 151 1234567", "de"),
        ("+55 11 98765-4321", "pt"),
        ("+351 912 345 678", "pt"),
        ("+52 55 1234 5678", "es"),
        ("+1 (415) 555-0100", "en"),
        ("+44 7700 900123", "en"),
        ("+966 50 123 4567", "ar"),
        ("+20 10 1234 5678", "ar"),
        ("+212 6 12 34 56 78", "ar"),
        ("whatsapp:+5511987654321", "pt"),
        ("4915112345678", "de"),  # a WhatsApp wa_id: international, without the +
        ("0034612345678", "es"),  # 00 dialled for +
        ("+81 90 1234 5678", None),  # Japan: not in the table
        ("0612345678", None),  # national: no country to read
        ("12345", None),  # short code
        ("6024417683491234", None),  # a Messenger PSID is not a phone number (16 digits)
        ("", None),
        (None, None),
    ],
)
def test_phone_language(phone: str | None, language: str | None) -> None:
    assert phone_language(phone) == language


def test_the_country_table_is_a_prefix_code_of_the_six_languages() -> None:
    """E.164 calling codes are prefix-free; a code inside another would shadow it in the lookup."""
    codes = list(COUNTRY_LANGUAGES)
    assert all(code.isdigit() and 1 <= len(code) <= 3 and code[0] != "0" for code in codes)
    assert not [(a, b) for a in codes for b in codes if a != b and b.startswith(a)]
    assert set(COUNTRY_LANGUAGES.values()) == set(DETECTED_LANGUAGES)
