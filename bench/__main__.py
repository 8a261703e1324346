"""`make bench`: runs every benchmark against the real stack and writes bench/results/latest.md."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

from bench import blending, ece_relay, webhook_ack

BENCHMARKS = {"webhook_ack": webhook_ack.run, "blending": blending.run, "ece_relay": ece_relay.run}

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> int:
    sections = [
        "# Benchmarks",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
        f"{__import__('os').cpu_count()} cores, Python {platform.python_version()}.",
        "",
    ]
    chosen = argv or list(BENCHMARKS)
    for name in chosen:
        sections += [BENCHMARKS[name](), ""]
    text = "\n".join(sections) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
