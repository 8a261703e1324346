"""Structured logs: one JSON object a line, with the conversation id when there is one.

Message bodies and secrets never go into INFO records; callers pass ids and kinds in `extra`.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_AS_IS = (str, int, float, bool, type(None))
"""Values a line carries as they are; anything else goes as its text."""
_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one for all lines: `json.dumps` with options makes one per call


class JsonFormatter(logging.Formatter):
    """Every webhook writes a line at INFO, so the cost per line is kept low (bench/webhook_ack.py)."""

    _second: tuple[int, str] = (-1, "")
    """The last second formatted, with its text: lines come many to a second."""

    def _timestamp(self, created: float, msecs: float) -> str:
        second = int(created)
        cached = self._second  # one read: another thread may replace it meanwhile
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        return f"{cached[1]}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self._timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key[0] != "_":
                entry[key] = value if isinstance(value, _AS_IS) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


def configure(level: str = "INFO") -> None:
    """Install the JSON formatter on the root logger (idempotent)."""
    # The lines carry none of what these cost per record to gather (the logging HOWTO's
    # "Optimization"): the caller's file and line (a stack walk), thread and process names.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
