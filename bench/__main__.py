"""`make bench`: runs every benchmark against the real stack and writes bench/results/latest.md."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

from bench import (
    blending,
    capacity,
    conversation_search,
    durability,
    ece_relay,
    flows,
    http_clients,
    hybrid,
    hybrid_load,
    language,
    pages,
    slow_ece,
    slow_provider,
    webhook_ack,
)


def hybrid_section() -> str:
    """Hybrid Chat: the routing decision alone, then offers and agent messages on the real stack."""
    return "\n\n".join([hybrid.run(), hybrid_load.run()])


BENCHMARKS = {
    "webhook_ack": webhook_ack.run,
    "blending": blending.run,
    "ece_relay": ece_relay.run,
    "slow_ece": slow_ece.run,
    "slow_provider": slow_provider.run,
    "http_clients": http_clients.run,
    "pages": pages.run,
    "conversation_search": conversation_search.run,
    "hybrid": hybrid_section,
    "language": language.run,
    "flows": flows.run,
    "durability": durability.run,
    "capacity": capacity.run,
}

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> int:
    if argv[:1] == ["soak"]:
        # The chaos soak is no table of latest.md: its own report, bench/results/soak-<timestamp>.md.
        from bench.soak.run import main as soak_main

        return soak_main()
    run_line = (
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}."
    )
    sections = ["# Benchmarks", ""]  # each result below carries its own run line
    RESULTS.mkdir(exist_ok=True)
    for name in argv or list(BENCHMARKS):
        table = BENCHMARKS[name]()
        (RESULTS / f"{name}.md").write_text(f"{run_line}\n\n{table}\n")
        print(table, flush=True)
    # latest.md gathers the last run of each benchmark, so running one does not erase the others.
    for name in BENCHMARKS:
        if (RESULTS / f"{name}.md").exists():
            sections += [(RESULTS / f"{name}.md").read_text(), ""]
    (RESULTS / "latest.md").write_text("\n".join(sections).rstrip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
