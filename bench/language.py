"""Language detection benchmark: accuracy on the chat-line table and time per message.

Every line of tests/flows/chat_lines.yaml goes through `choose_locale` alone (the six languages
supported, no channel locale, no phone), so a line either is detected or falls back. Per language:
lines detected right, lines that fall back (the channel's locale decides), lines detected wrong;
and the detector's raw answer (argmax, no thresholds) for comparison. Time: `choose_locale` per
message (detection included), REPEAT rounds over the table after one warm-up; the model's load is
timed apart since a worker pays it once. Goal: p99 ≤ 1 ms per message.

The one-off comparison of candidate libraries (bench/language_candidates.py, run in a throwaway
virtualenv) is appended from bench/language_candidates.md, which is kept in git (bench/results/ is
not) because it records why py3langid was chosen.
"""

from __future__ import annotations

import statistics
import time
from importlib.metadata import version
from pathlib import Path

import yaml

from connector.flows import language

TABLE = Path(__file__).resolve().parents[1] / "tests" / "flows" / "chat_lines.yaml"
CANDIDATES = Path(__file__).resolve().parent / "language_candidates.md"
SUPPORTED = ("ar", "de", "en", "es", "fr", "pt")
REPEAT = 50
GOAL_MS = 1.0


def chat_lines() -> list[tuple[str, str, str | None]]:
    """(text, language written in, expected choose_locale answer or None for a fallback)."""
    table = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    return [(row["text"], written_in, row["expect"]) for written_in, rows in table.items() for row in rows]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def run() -> str:
    lines = chat_lines()
    started = time.perf_counter()
    language.detect("warm up: the model loads here")
    load_ms = (time.perf_counter() - started) * 1000

    counts: dict[str, dict[str, int]] = {}
    for text, written_in, _ in lines:
        row = counts.setdefault(written_in, {"lines": 0, "right": 0, "fallback": 0, "wrong": 0, "raw right": 0})
        choice = language.choose_locale([text], supported=SUPPORTED, default="en")
        row["lines"] += 1
        if choice.source != "detected":
            row["fallback"] += 1
        elif choice.locale == written_in:
            row["right"] += 1
        else:
            row["wrong"] += 1
        row["raw right"] += choice.language == written_in

    timings = []
    for _ in range(REPEAT):
        for text, _, _ in lines:
            begin = time.perf_counter()
            language.choose_locale([text], supported=SUPPORTED, default="en")
            timings.append((time.perf_counter() - begin) * 1000)
    p50, p99 = statistics.median(timings), percentile(timings, 99)

    out = [
        "## Language detection",
        "",
        f"py3langid {version('py3langid')} through `choose_locale`, on the {len(lines)} lines of "
        f"tests/flows/chat_lines.yaml, the six languages supported, no channel locale. Thresholds: "
        f"MIN_LETTERS {language.MIN_LETTERS}, MIN_CONFIDENCE {language.MIN_CONFIDENCE}, "
        f"SURE_CONFIDENCE {language.SURE_CONFIDENCE}. Accuracy = right / lines; a fallback is not "
        "an error (the channel's locale decides) but is not counted right either.",
        "",
        "| language | lines | right | fall back | wrong | accuracy | raw detector right |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = {key: 0 for key in ("lines", "right", "fallback", "wrong", "raw right")}
    for written_in, row in counts.items():
        out.append(_row(written_in, row))
        for key in total:
            total[key] += row[key]
    out += [
        _row("**all**", total),
        "",
        f"Time per message ({REPEAT} rounds of the table, {len(timings)} calls): p50 {p50:.3f} ms, "
        f"p99 {p99:.3f} ms; goal p99 ≤ {GOAL_MS:g} ms: {'yes' if p99 <= GOAL_MS else 'NO'}. "
        f"Model load (once per process): {load_ms:.0f} ms.",
    ]
    if CANDIDATES.exists():
        out += ["", CANDIDATES.read_text(encoding="utf-8").strip()]
    return "\n".join(out)


def _row(label: str, row: dict[str, int]) -> str:
    accuracy = row["right"] / row["lines"] if row["lines"] else 0.0
    return (
        f"| {label} | {row['lines']} | {row['right']} | {row['fallback']} | {row['wrong']} | "
        f"{accuracy:.0%} | {row['raw right']} |"
    )


if __name__ == "__main__":
    print(run())
