"""The runner Job of a store: started at most once per request, kept on a redelivery."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storeplatform import budget, config, contract, manifests
from storeplatform.errors import Kind, PlatformError
from storeplatform.kube import CONNECTION_SETTINGS, Kube
from storeplatform.status import job_state

log = logging.getLogger(__name__)

# Settings of every function that starts runner Jobs (create-store, delete-store).
RUNNER_SETTINGS: dict[str, Any] = CONNECTION_SETTINGS | {
    "PLATFORM_NAMESPACE": contract.PLATFORM_NAMESPACE,
    "RUNNER_IMAGE": config.REQUIRED,
    "K_SINK": "",
    # The audience of the runner's OIDC token for the Broker; empty: the `default` Broker of
    # PLATFORM_NAMESPACE (contract.broker_audience).
    "BROKER_AUDIENCE": "",
    "HELM_TIMEOUT": "10m",
    "JOB_BACKOFF_LIMIT": 2,  # the Job's deadline follows from these two (budget.py)
    "JOB_TTL_SECONDS": 3600,
    "LOG_LEVEL": "INFO",
}


def check_settings(settings: Mapping[str, Any]) -> None:
    """Fail at start-up, naming the setting, when the runner's budget cannot be computed."""
    try:
        budget.job_deadline_seconds(settings["HELM_TIMEOUT"], int(settings["JOB_BACKOFF_LIMIT"]))
    except ValueError as err:
        raise config.ConfigError(f"setting HELM_TIMEOUT: {err}") from err
    if int(settings["JOB_BACKOFF_LIMIT"]) < 0:
        raise config.ConfigError("setting JOB_BACKOFF_LIMIT must not be negative")


@dataclass(frozen=True)
class Outcome:
    """What one event did, for its log line: the runner Job it started or kept, or a note."""

    job: str | None
    created: bool = False
    note: str = ""

    def __str__(self) -> str:
        if self.job is None:
            return self.note or "nothing to do"
        return f"job {self.job} {'created' if self.created else 'kept'}"


def is_kept(job: Mapping[str, Any], event_id: str) -> bool:
    """A running or finished Job is kept (a duplicate request); a failed one only for a
    redelivery of the event that made it: a new request retries.
    """
    made_by = (job["metadata"].get("annotations") or {}).get(contract.ANNOTATION_EVENT_ID)
    return job_state(job) != "failed" or made_by == event_id


def remove(kube: Kube, job: Mapping[str, Any]) -> None:
    """Delete that very Job and its pods (a running runner is stopped)."""
    meta = job["metadata"]
    kube.delete_if_present("Job", meta["name"], meta["namespace"], uid=meta["uid"])
    log.info("deleted job %s/%s", meta["namespace"], meta["name"])


UNREAD: Any = object()  # start_once reads the standing Job itself


def start_once(kube: Kube, job: Mapping[str, Any], event_id: str,
               values: Mapping[str, Any] | None = None, *, standing: Any = UNREAD,
               values_written: bool = False) -> Outcome:
    """Start the Job unless one of its name is kept (is_kept); a failed one is replaced.

    The values Secret, if any, is written just before (or, values_written, by the caller
    while no Job of its name stood) and then owned by the Job, so it is collected with it.
    `standing`: the Job of that name as the caller read it (None: there was none).
    """
    meta = job["metadata"]
    if standing is UNREAD:
        standing = kube.read_or_none("Job", meta["name"], meta["namespace"])
    if standing is not None and is_kept(standing, event_id):
        return Outcome(meta["name"])
    if standing is not None:
        remove(kube, standing)
    if values is not None and not (values_written and standing is None):
        kube.create_or_replace(values)
    created = kube.create_or_keep(job)
    if created is None:  # a concurrent delivery made it, or the old one is still going
        current = kube.read_or_none("Job", meta["name"], meta["namespace"])
        if current is not None and current["metadata"].get("deletionTimestamp"):
            raise PlatformError(Kind.RETRY_LATER, "job_being_removed",
                                "the previous job of this store is still being removed; retry")
        return Outcome(meta["name"])
    log.info("created job %s/%s", meta["namespace"], meta["name"])
    if values is not None:
        owner = manifests.owner_reference(created)
        kube.patch("Secret", values["metadata"]["name"],
                   {"metadata": {"ownerReferences": [owner]}}, meta["namespace"])
    return Outcome(meta["name"], created=True)
