"""Logs as one JSON object per line, carrying the event id, store and trace id of the work in
hand, for every service and the Helm runner (gunicorn's own logs included, via
storeplatform.gunicorn_conf).

The fields of the work in hand live in a context variable: `with bound(event_id=..., store=...)`
around one event makes every record logged inside it (in that thread) carry them.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

_NONE: Mapping[str, Any] = MappingProxyType({})
_FIELDS: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "storeplatform_log_fields", default=_NONE)

# Attributes a caller may attach with `extra=` (anything else in a record is ignored).
EXTRA_FIELDS = ("event_id", "event_type", "store", "trace_id", "span_id", "outcome", "action")


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every record logged inside the block carries these fields (None values are left out)."""
    token = _FIELDS.set({**_FIELDS.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to every later record of this context (a process's own identity: the runner)."""
    _FIELDS.set({**_FIELDS.get(), **{k: v for k, v in fields.items() if v is not None}})


def current() -> Mapping[str, Any]:
    """The fields bound now."""
    return _FIELDS.get()


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the bound fields, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": _timestamp(record.created),
                                 "level": record.levelname.lower(), "logger": record.name}
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            entry.update(_access_fields(record.args))
        else:
            entry["message"] = record.getMessage()
        entry.update(_FIELDS.get())
        entry.update({key: getattr(record, key) for key in EXTRA_FIELDS
                      if getattr(record, key, None) is not None})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    """gunicorn's access atoms (m, U, s, M) as fields, instead of a combined-log-format line."""
    method, path, status = atoms["m"], atoms["U"], atoms["s"]
    return {"message": f"{method} {path} {status}", "method": method, "path": path,
            "status": int(status) if str(status).isdigit() else status,
            "duration_ms": atoms["M"]}


def handler() -> logging.Handler:
    """A stderr handler writing JSON lines."""
    stream = logging.StreamHandler()
    stream.setFormatter(JsonFormatter())
    return stream


def setup(level: str = "INFO") -> None:
    """JSON lines on stderr for the root logger, unless a server (gunicorn) configured it."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler())
    root.setLevel(level)


def message_of(line: str) -> str:
    """The message of a JSON log line; any other line as it is (a termination message from
    /dev/termination-log is plain text, one read from the log tail is a JSON record)."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if isinstance(record, dict) and isinstance(record.get("message"), str):
        return record["message"]
    return line
