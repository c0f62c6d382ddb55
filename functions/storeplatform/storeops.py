"""Kubernetes steps shared by create-store and delete-store, each safe to repeat."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client import V1Namespace

from storeplatform import config as cfg
from storeplatform import contract as c
from storeplatform import kube, resources
from storeplatform.errors import ApiError
from storeplatform.status import job_state

log = logging.getLogger(__name__)

# Settings of every function that starts runner Jobs (create-store, delete-store).
RUNNER_SETTINGS: dict[str, Any] = {
    "KUBECONFIG": "",
    "KUBE_TIMEOUT": 10.0,
    "PLATFORM_NAMESPACE": c.PLATFORM_NAMESPACE,
    "RUNNER_IMAGE": cfg.REQUIRED,
    "K_SINK": "",
    "HELM_TIMEOUT": "10m",
    "JOB_BACKOFF_LIMIT": 2,
    "JOB_DEADLINE_SECONDS": 1200,
    "JOB_TTL_SECONDS": 3600,
    "LOG_LEVEL": "INFO",
}


def read_namespace(kc: kube.Clients, name: str) -> V1Namespace | None:
    """The namespace, or None when it does not exist."""
    try:
        return kc.core.read_namespace(name, _request_timeout=kc.timeout)
    except Exception as err:
        if kube.is_status(err, 404):
            return None
        raise


def find_job(kc: kube.Clients, namespace: str, name: str) -> dict[str, Any] | None:
    """The Job as plain data, or None."""
    try:
        job = kc.batch.read_namespaced_job(name, namespace, _request_timeout=kc.timeout)
    except Exception as err:
        if kube.is_status(err, 404):
            return None
        raise
    return kc.batch.api_client.sanitize_for_serialization(job)


def remove_job(kc: kube.Clients, namespace: str, job: Mapping[str, Any]) -> None:
    """Delete a Job and its pods (a running runner is stopped); gone already is fine."""
    name = job["metadata"]["name"]
    try:
        kc.batch.delete_namespaced_job(
            name, namespace, propagation_policy="Background",
            body={"preconditions": {"uid": job["metadata"]["uid"]}},
            _request_timeout=kc.timeout)
        log.info("deleted job %s/%s", namespace, name)
    except Exception as err:
        if not kube.is_status(err, 404, 409):
            raise


def start_job(kc: kube.Clients, job: Mapping[str, Any], values_secret: str | None = None) -> None:
    """Create the Job; if it already exists (a concurrent delivery), leave it alone.

    The values Secret, if any, is then owned by the Job so it is collected with it.
    """
    namespace = job["metadata"]["namespace"]
    try:
        created = kc.batch.create_namespaced_job(namespace, job, _request_timeout=kc.timeout)
    except Exception as err:
        if not kube.is_status(err, 409):
            raise
        current = find_job(kc, namespace, job["metadata"]["name"])
        if current is not None and current["metadata"].get("deletionTimestamp"):
            raise ApiError(503, "job_being_removed",
                           "the previous job of this store is still being removed; retry",
                           retryable=True) from err
        return
    log.info("created job %s/%s", namespace, job["metadata"]["name"])
    if values_secret:
        owner = resources.owner_reference(kc.batch.api_client.sanitize_for_serialization(created))
        kc.core.patch_namespaced_secret(values_secret, namespace,
                                        {"metadata": {"ownerReferences": [owner]}},
                                        _request_timeout=kc.timeout)


def ensure_role_binding(kc: kube.Clients, store: str, platform_namespace: str) -> None:
    """Give the Helm runner its rights in the store namespace (and nowhere else)."""
    body = resources.runner_role_binding(store, platform_namespace)
    try:
        kc.rbac.create_namespaced_role_binding(store, body, _request_timeout=kc.timeout)
    except Exception as err:
        if not kube.is_status(err, 409):
            raise


def keep_existing_job(kc: kube.Clients, namespace: str, name: str, event_id: str) -> bool:
    """True when a Job of that name stands and must not be replaced.

    A running or finished Job is kept (duplicate delivery). A failed Job is kept for a
    redelivery of the event that made it, and removed for a new request, which retries.
    """
    existing = find_job(kc, namespace, name)
    if existing is None:
        return False
    made_by = (existing["metadata"].get("annotations") or {}).get(c.ANNOTATION_EVENT_ID)
    if job_state(existing) != "failed" or made_by == event_id:
        return True
    remove_job(kc, namespace, existing)
    return False
