"""JSON log lines (logs.py): one object per record, with the fields of the work in hand."""

import json
import logging

import pytest

from storeplatform import logs


def record(message="hello %s", args=("world",), name="storeplatform.test", **extra):
    entry = logging.LogRecord(name, logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(entry, key, value)
    return entry


def formatted(entry: logging.LogRecord) -> dict:
    line = logs.JsonFormatter().format(entry)
    assert "\n" not in line
    return json.loads(line)


def test_a_record_is_one_json_object_with_time_level_logger_message():
    out = formatted(record())
    assert out["message"] == "hello world"
    assert out["level"] == "info" and out["logger"] == "storeplatform.test"
    assert out["time"].endswith("Z") and "T" in out["time"]


def test_bound_fields_are_on_every_record_inside_the_block_only():
    with logs.bound(event_id="e-1", store="store-a", trace_id=None):
        inside = formatted(record())
        with logs.bound(store="store-b"):
            nested = formatted(record())
    after = formatted(record())
    assert (inside["event_id"], inside["store"]) == ("e-1", "store-a")
    assert "trace_id" not in inside  # None values are left out
    assert nested["store"] == "store-b" and nested["event_id"] == "e-1"
    assert "event_id" not in after and "store" not in after


def test_known_extras_become_fields_and_unknown_ones_do_not():
    out = formatted(record(outcome="accepted", password="hunter2"))
    assert out["outcome"] == "accepted"
    assert "password" not in out


def test_gunicorns_access_atoms_become_fields():
    atoms = {"m": "GET", "U": "/stores", "s": "304", "M": 12, "r": "GET /stores HTTP/1.1"}
    entry = record(message='%(r)s', args=(atoms,), name="gunicorn.access")
    out = formatted(entry)
    assert out["message"] == "GET /stores 304"
    assert (out["method"], out["path"], out["status"], out["duration_ms"]) == \
        ("GET", "/stores", 304, 12)


def test_exceptions_stay_inside_the_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        entry = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        import sys
        entry.exc_info = sys.exc_info()
    out = formatted(entry)
    assert "ValueError: boom" in out["exception"]


@pytest.mark.parametrize(("line", "message"), [
    ('{"message": "helm test failed: x", "level": "error"}', "helm test failed: x"),
    ("helm test failed: x", "helm test failed: x"),  # /dev/termination-log: plain text
    ('{"no": "message"}', '{"no": "message"}'),
    ("[1, 2]", "[1, 2]"),
])
def test_message_of_reads_a_json_record_or_keeps_the_line(line, message):
    assert logs.message_of(line) == message
