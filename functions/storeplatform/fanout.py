"""Independent API calls of one event, made at the same time: the event waits for the
slowest call instead of for their sum.

Each call runs in the caller's context (its log fields and trace). The first runs in the
caller's thread (so it may fan out again), the others on a pool shared by the process; a
call on the pool that fans out again runs its own calls in turn, so no pool thread ever
waits for the pool. Every call runs to its end; then the first error, in the order the
calls were given, is raised, so what the event reports does not depend on which call was
faster.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

# Calls in flight per process at most: a few per event, a few events at a time per worker.
WORKERS = 16
_pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="fanout")
_inside = threading.local()


def _run_inside(call: Callable[[], Any]) -> Any:
    _inside.active = True
    try:
        return call()
    finally:
        _inside.active = False


def all_of(*calls: Callable[[], Any]) -> list[Any]:
    """The results of calls, in order; made together."""
    if len(calls) <= 1 or getattr(_inside, "active", False):
        return [call() for call in calls]
    futures = [_pool.submit(contextvars.copy_context().run, _run_inside, call)
               for call in calls[1:]]
    first: Future[Any] = Future()
    try:
        first.set_result(calls[0]())
    except Exception as err:  # raised below, once the others have ended
        first.set_exception(err)
    done = [first, *futures]
    error = next((e for e in (f.exception() for f in done) if e is not None), None)
    if error is not None:
        raise error
    return [future.result() for future in done]
