"""Detached processes with pid files, stopped by process group.

Each process starts in its own session (so its process group id is its pid) and
survives the command that started it. The pid file also records the process start
time, so a pid the kernel has reused for something else is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger("localkube.procs")

STOP_GRACE_SECONDS = 10.0


def start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot (None: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has exited already
        return None
    return int(fields[19])


def spawn(argv: Sequence[str], log_path: Path, pid_path: Path, *,
          env: Mapping[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """Starts argv detached (new session), output appended to log_path, pid in pid_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(env) if env is not None else None, cwd=cwd)
    write_pid(pid_path, proc.pid)
    return proc


def write_pid(pid_path: Path, pid: int) -> None:
    pid_path.write_text(json.dumps({"pid": pid, "start": start_time(pid)}))


def read_pid(pid_path: Path) -> tuple[int, int | None] | None:
    try:
        data = json.loads(pid_path.read_text())
    except (OSError, ValueError):
        return None
    return int(data["pid"]), data.get("start")


def is_running(pid_path: Path) -> bool:
    """True when the process recorded in pid_path is still that process and alive."""
    recorded = read_pid(pid_path)
    if recorded is None:
        return False
    pid, started = recorded
    current = start_time(pid)
    return current is not None and current == started


def _reap(pid: int) -> None:
    """Collects the exit status when the process is our own child (else a zombie stays)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop(pid_path: Path, grace: float = STOP_GRACE_SECONDS) -> bool:
    """SIGTERM to the process group, SIGKILL after grace; True when something was stopped."""
    recorded = read_pid(pid_path)
    if recorded is None or not is_running(pid_path):
        pid_path.unlink(missing_ok=True)
        return False
    pid = recorded[0]
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_running(pid_path):
            break
        time.sleep(0.1)
    else:
        log.warning("pid %d ignored SIGTERM for %.0f s; killing its process group", pid, grace)
    # The group may hold children that outlive the leader: always finish with SIGKILL.
    _signal_group(pid, signal.SIGKILL)
    _reap(pid)
    pid_path.unlink(missing_ok=True)
    return True
