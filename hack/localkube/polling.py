"""Waiting for a local component: poll a check until it holds, a deadline passes, or the
process that should make it hold has died (so a crash is reported at once, not as a
timeout)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

INTERVAL = 0.25  # s between checks


def until(what: str, check: Callable[[], bool], deadline: float, *,
          dead: Callable[[], str | None] = lambda: None,
          tolerate: tuple[type[BaseException], ...] = (),
          error: type[Exception] = TimeoutError, hint: str = "") -> None:
    """Return once check() is true. `dead()` names a process that exited (raised as
    error); a check raising one of `tolerate` counts as not yet; past the deadline,
    error("timed out waiting for <what><hint>")."""
    while True:
        died = dead()
        if died:
            raise error(f"{died} exited while waiting for {what}")
        with contextlib.suppress(*tolerate):
            if check():
                return
        if time.monotonic() > deadline:
            raise error(f"timed out waiting for {what}{hint}")
        time.sleep(INTERVAL)
