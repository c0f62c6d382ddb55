"""The store owner's way into wp-admin, without any function reading a store's credentials.

reset (create-store, on io.storeplatform.store.admin-password.reset): start the runner Job
  `admin-password-<store>`, as the same runner identity as the store's Helm Jobs. The runner
  makes a random password, sets it with wp-cli, and leaves it in the one-time Secret
  `storeplatform-admin-password` in the store's namespace (storeplatform.wpcli).
reveal (list-stores, asked directly by the gateway): hand that Secret's password over once.
  The read and the delete are one step: the Secret is deleted with its uid as precondition,
  and only the caller whose delete succeeded gets the password; every other caller is told
  it was already shown. list-stores may get and delete Secrets of that one name only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from storeplatform import contract, deadletters, manifests, timeline
from storeplatform.errors import Kind, PlatformError
from storeplatform.kube import Kube, Obj
from storeplatform.lifecycle import jobs, namespaces
from storeplatform.status import job_state

SETTINGS: dict[str, Any] = {
    # How the runner runs wp-cli: "job" (a Job in the store's namespace, from the chart's
    # own set-up hook), or the absolute path of a local wp-cli stand-in (make dev only).
    "RUNNER_WP_CLI": "job",
}


def reset(kube: Kube, store: str, event_id: str, settings: Mapping[str, Any]) -> jobs.Outcome:
    """Start the reset Job of this request; a redelivery keeps it, a newer request replaces
    whatever an older one left (running or finished). Safe to repeat."""
    namespace = namespaces.read_managed(kube, store)
    if namespace is None:
        raise PlatformError(Kind.INVALID, "store_not_found", f"there is no store {store}")
    annotations = namespace["metadata"].get("annotations") or {}
    if namespaces.is_deleting(namespace):
        raise PlatformError(Kind.INVALID, "store_deleting", f"store {store} is being deleted")
    if annotations.get(contract.ANNOTATION_PHASE) != "ready":
        raise PlatformError(Kind.INVALID, "store_not_ready",
                            f"store {store} is not ready; reset its admin password once it is")
    job = manifests.runner_job(contract.ACTION_RESET_ADMIN_PASSWORD, store, event_id, {
        **settings, "EVENT_ID": event_id, "JOB_BACKOFF_LIMIT": 0})  # deadline: budget.py
    meta = job["metadata"]
    standing = kube.read_or_none("Job", meta["name"], meta["namespace"])
    if standing is not None:
        made_by = (standing["metadata"].get("annotations") or {}).get(
            contract.ANNOTATION_EVENT_ID)
        if made_by == event_id:
            return jobs.Outcome(meta["name"])
        jobs.remove(kube, standing)
    if kube.create_or_keep(job) is None:
        raise PlatformError(Kind.RETRY_LATER, "job_being_removed",
                            "the previous reset job of this store is still being removed; retry")
    return jobs.Outcome(meta["name"], created=True)


def _state(record: Mapping[str, Any], **answer: Any) -> dict[str, Any]:
    return {"name": record["name"], "id": record["id"], **answer}


def reveal(kube: Kube, store: str, reset_id: str, platform_ns: str,
           now: datetime) -> dict[str, Any]:
    """The reset's state for the gateway: shown (with the password, this one time), pending,
    failed (with the reason) or gone (shown already, expired, replaced)."""
    asked = {"name": store, "id": reset_id}
    secret = kube.read_or_none("Secret", contract.ADMIN_PASSWORD_SECRET, store)
    if secret is not None and _annotation(secret, contract.ANNOTATION_RESET_ID) == reset_id:
        return _hand_over(kube, store, secret, asked, now)
    ns = next(iter(kube.list_items("Namespace", fields=f"metadata.name={store}")), None)
    if ns is None or not contract.manages(ns):
        return _state(asked, state="gone", code="store_not_found",
                      message=f"there is no store {store}")
    record = _record(ns)
    if record.get("id") == reset_id:
        if record.get("state") == "failed":
            return _state(asked, state="failed", code="reset_failed",
                          message=str(record.get("reason") or "the reset failed"))
        if record.get("state") == "applied":
            return _state(asked, state="gone", code="already_shown",
                          message="this password was shown already (or expired); "
                                  "reset again for a new one")
        return _state(asked, state="pending", status="resetting",
                      progress="setting the new password with wp-cli")
    return _not_started(kube, asked, platform_ns)


def _hand_over(kube: Kube, store: str, secret: Obj, asked: dict[str, Any],
               now: datetime) -> dict[str, Any]:
    meta = secret["metadata"]
    if _annotation(secret, contract.ANNOTATION_PHASE) != "applied":
        return _state(asked, state="pending", status="resetting",
                      progress="setting the new password with wp-cli")
    expires = timeline.parse_time(_annotation(secret, contract.ANNOTATION_EXPIRES_AT))
    won = kube.delete_exactly("Secret", meta["name"], store, meta["uid"])
    if expires is not None and now > expires:
        return _state(asked, state="gone", code="expired",
                      message="the new password was not picked up in time and was discarded; "
                              "reset again")
    if not won:
        return _state(asked, state="gone", code="already_shown",
                      message="this password was shown already; reset again for a new one")
    data = {key: base64.b64decode(value).decode() for key, value in
            (secret.get("data") or {}).items()}
    return _state(asked, state="shown", user=data.get("user", ""),
                  password=data.get("password", ""))


def _not_started(kube: Kube, asked: dict[str, Any], platform_ns: str) -> dict[str, Any]:
    """Nothing in the store's namespace knows this reset yet: its Job, or its dead letter."""
    name = contract.job_name(contract.ACTION_RESET_ADMIN_PASSWORD, asked["name"])
    job = next(iter(kube.list_items("Job", platform_ns, fields=f"metadata.name={name}")), None)
    made_by = ((job or {}).get("metadata", {}).get("annotations") or {}).get(
        contract.ANNOTATION_EVENT_ID)
    if job is not None and made_by == asked["id"] and job_state(job) == "failed":
        return _state(asked, state="failed", code="reset_failed",
                      message="the reset job failed before it started: see `kubectl -n "
                              f"{platform_ns} describe job {name}`")
    if job is None or made_by != asked["id"]:
        letters = deadletters.read_back(kube.list_items(
            "Event", platform_ns, fields=f"reason={contract.DEAD_LETTER_REASON}"))
        letter = next((d for d in letters if d.get("id") == asked["id"]), None)
        if letter is not None:
            return _state(asked, state="failed", code="undeliverable",
                          message=f"the reset request was not delivered: {letter['error']}")
    return _state(asked, state="pending", status="resetting",
                  progress="waiting for the reset job to start")


def _annotation(obj: Mapping[str, Any], key: str) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(key)


def _record(ns: Mapping[str, Any]) -> dict[str, Any]:
    try:
        record = json.loads(_annotation(ns, contract.ANNOTATION_ADMIN_RESET) or "{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}
