"""Tests of the sandbox's provider simulators and customer emulator.

`LiveServer` serves a WSGI app on a loopback port chosen by the OS; the app is set after the port
is known, because the simulators build their media URLs from their own base URL.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


class LiveServer:
    def __init__(self) -> None:
        self.app: Any = None
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-test-server", daemon=True
        )

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)

    def start(self, app: Any) -> LiveServer:
        self.app = app
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
