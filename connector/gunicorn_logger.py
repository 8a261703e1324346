"""gunicorn's own lines (listening, worker started, worker exiting) as JSON, like every other line.

Its stock formatter reads `%(process)d`, which `logs.configure` leaves unset for speed (a record's
process id is not worth gathering on every line), and then prints a "Logging error" traceback for
each line instead; ours reads none of it.
"""

from __future__ import annotations

import logging
from typing import IO

from gunicorn import glogging

from connector.logs import JsonFormatter


class JsonLogger(glogging.Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    """`--logger-class connector.gunicorn_logger.JsonLogger` (the supervisor passes it)."""

    def _set_handler(
        self, log: logging.Logger, output: str | None, fmt: logging.Formatter, stream: IO[str] | None = None
    ) -> None:
        super()._set_handler(log, output, JsonFormatter(), stream)
