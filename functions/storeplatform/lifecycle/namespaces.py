"""The store's namespace: the platform's or not, on its way out or not."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from storeplatform import contract
from storeplatform.errors import Kind, PlatformError
from storeplatform.kube import Kube, Obj


def read_managed(kube: Kube, store: str) -> Obj | None:
    """The store's namespace, or None; CONFLICT when one of that name does not carry every
    mark of the platform (contract.is_platform_namespace): it is never adopted."""
    namespace = kube.read_or_none("Namespace", store)
    if namespace is not None and not contract.is_platform_namespace(namespace):
        raise PlatformError(Kind.CONFLICT, "namespace_conflict",
                            f"namespace {store} exists and is not managed by the platform")
    return namespace


def is_terminating(namespace: Mapping[str, Any]) -> bool:
    """Kubernetes is removing the namespace (nothing new can be created in it)."""
    return (namespace.get("status") or {}).get("phase") == "Terminating"


def is_deleting(namespace: Mapping[str, Any]) -> bool:
    """Terminating, or marked `deleting` by delete-store (a password reset waits for it; a
    newer create does not: lifecycle/provision.py says why)."""
    annotations = (namespace.get("metadata") or {}).get("annotations") or {}
    return is_terminating(namespace) or annotations.get(contract.ANNOTATION_PHASE) == "deleting"


def mark_deleting(kube: Kube, store: str, now: datetime | None = None) -> None:
    """Say on the namespace that the store is being deleted (list-stores shows it at once),
    and since when (a mark no delete Job carries on is stuck after a while: status.py)."""
    marked_at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.patch("Namespace", store, {"metadata": {"annotations": {
        contract.ANNOTATION_PHASE: "deleting", contract.ANNOTATION_PHASE_AT: marked_at}}})
