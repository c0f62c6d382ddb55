"""A store's provisioning steps in time: queued, helm install, set-up, test order, ready.

The runner records when each step started in one namespace annotation (JSON, step -> RFC 3339
time), where it outlives the Job: `queued` is the request's time, `install` its own start,
`setup` and `test` come from Helm's own record of its hooks (`helm status -o json`: the
set-up Job is a post-install hook, the test order a test hook), then `ready` or `failed`.
A step ends when the next one starts. list-stores hands the record to the dashboard as it is,
after one check: a record older than the install Job in hand belongs to an earlier attempt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from storeplatform import contract

STEPS = ("queued", "install", "setup", "test")  # in order; then "ready" or "failed"
ENDS = ("ready", "failed")
LABELS = {"queued": "queued", "install": "helm install", "setup": "set-up",
          "test": "test order", "ready": "ready", "failed": "failed"}
CLOCK_SLACK_SECONDS = 5  # the runner's clock against the API server's

Timeline = dict[str, str]


def now_text(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def read(annotations: Mapping[str, str]) -> Timeline:
    """The recorded steps (only known step names with valid times)."""
    try:
        recorded = json.loads(annotations.get(contract.ANNOTATION_TIMELINE) or "{}")
    except ValueError:
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {step: now_text(time) for step, value in recorded.items()
            if step in (*STEPS, *ENDS) and (time := parse_time(value)) is not None}


def annotation(timeline: Mapping[str, str]) -> dict[str, str]:
    """The namespace annotation holding a timeline."""
    return {contract.ANNOTATION_TIMELINE: json.dumps(dict(timeline), separators=(",", ":"))}


def hook_starts(release: Mapping[str, Any]) -> Timeline:
    """`setup` and `test` start times from a release as `helm status -o json` prints it:
    the last run of its post-install/post-upgrade hooks, and of its test hooks."""
    starts: dict[str, datetime] = {}
    for hook in release.get("hooks") or []:
        events = set(hook.get("events") or [])
        step = "test" if "test" in events else "setup" if events & {
            "post-install", "post-upgrade"} else None
        started = parse_time((hook.get("last_run") or {}).get("started_at"))
        if step and started and (step not in starts or started < starts[step]):
            starts[step] = started
    return {step: now_text(time) for step, time in starts.items()}


def of_store(ns: Mapping[str, Any], install_job: Mapping[str, Any] | None) -> Timeline:
    """The timeline list-stores shows: the runner's record, unless the install Job in hand is
    newer than the record's start (a new attempt whose runner has not started yet), then
    just `queued` at the Job's creation."""
    meta = ns.get("metadata") or {}
    recorded = read(meta.get("annotations") or {})
    job_created = parse_time(((install_job or {}).get("metadata") or {}).get(
        "creationTimestamp"))
    started = parse_time(recorded.get("install") or recorded.get("queued"))
    if job_created and (started is None or
                        (job_created - started).total_seconds() > CLOCK_SLACK_SECONDS):
        return {"queued": now_text(job_created)}
    return recorded


def failed_step(timeline: Mapping[str, str]) -> str | None:
    """The step that was running when the store failed (the last one started)."""
    started = [step for step in STEPS if step in timeline]
    return started[-1] if started else None
