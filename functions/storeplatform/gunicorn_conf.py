"""gunicorn settings of every service: `gunicorn --config python:storeplatform.gunicorn_conf`.

- Prometheus multiprocess mode (storeplatform.metrics): the sample directory is set before
  any worker imports the client, emptied when the server starts (samples of an earlier run
  would be added to this one's), and each exiting worker's live gauges are dropped.
  PROMETHEUS_MULTIPROC_DIR names it; without it, a fresh temporary directory per server.
- Logs as JSON lines (storeplatform.logs), gunicorn's own and the access log included.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from storeplatform import logs

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="storeplatform-metrics-")

_JSON = {"()": logs.JsonFormatter}
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": _JSON},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json",
                   "stream": "ext://sys.stderr"},
        "stdout": {"class": "logging.StreamHandler", "formatter": "json",
                   "stream": "ext://sys.stdout"},
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
    },
}


def on_starting(_server) -> None:
    """Empty the sample directory (gunicorn's master, before any worker starts)."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(_server, worker) -> None:
    """A worker is gone: its live gauges no longer count."""
    from prometheus_client import multiprocess  # after the directory is set

    multiprocess.mark_process_dead(worker.pid)
