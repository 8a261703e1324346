"""`run` always starts the listener: without a finesse: section it waits for one instead of
exiting, and hands over to a restart (EXIT_TO_RELOAD) as soon as one is configured."""

from __future__ import annotations

import threading
import time

from connector.blending.listener import run_listener
from connector.config.reload import EXIT_TO_RELOAD
from connector.runtime import Runtime

SECTION = {"publisher": "http://127.0.0.1:9/finesse", "admin_user": "admin", "admin_password": "admin-password"}


def test_without_a_section_a_standalone_listener_says_so_and_exits(runtime: Runtime) -> None:
    assert runtime.config.finesse is None
    assert run_listener(runtime) == 2


def test_under_run_it_waits_and_restarts_when_a_section_is_made_on_the_finesse_page(runtime: Runtime) -> None:
    made_at: list[float] = []

    def make_section() -> None:
        made_at.append(time.monotonic())
        runtime.overrides.save_singleton("finesse", SECTION, runtime.provisioned)

    timer = threading.Timer(1.5, make_section)
    started = time.monotonic()
    timer.start()
    code = run_listener(runtime, wait_for_section=True)  # the main thread: it installs signal handlers
    timer.join()
    assert code == EXIT_TO_RELOAD, "a section appeared: restart with it"
    assert made_at and made_at[0] - started >= 1.4, "it waited for the section rather than exiting"
    assert time.monotonic() - made_at[0] < 3, "and noticed it within its configuration check"
