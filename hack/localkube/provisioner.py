"""A trivial dynamic provisioner: one hostPath PV per pending claim of our StorageClasses.

The PV is created pre-bound (claimRef) and the controller manager's PV controller
binds the claim. Released PVs with reclaim policy Delete are deleted with their data.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.bootstrap import PROVISIONER

log = logging.getLogger("localkube.provisioner")

API_TIMEOUT = 10
POLL_SECONDS = 1.0
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"


def volume_name(claim: dict[str, Any]) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def claim_class(claim: dict[str, Any]) -> str:
    return claim.get("spec", {}).get("storageClassName") or ""


def wants_volume(claim: dict[str, Any], classes: dict[str, dict[str, Any]]) -> bool:
    """A Pending claim of one of our classes, not bound to a volume yet."""
    return (claim.get("status", {}).get("phase") == "Pending"
            and not claim["spec"].get("volumeName")
            and not claim["metadata"].get("deletionTimestamp")
            and claim_class(claim) in classes)


def persistent_volume(claim: dict[str, Any], storage_class: dict[str, Any],
                      path: str) -> dict[str, Any]:
    """The PV for a claim: its requested size and access modes, pre-bound to it."""
    meta, spec = claim["metadata"], claim["spec"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume_name(claim), "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "storageClassName": claim_class(claim),
            "hostPath": {"path": path, "type": "DirectoryOrCreate"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "namespace": meta["namespace"], "name": meta["name"],
                         "uid": meta["uid"]},
        },
    }


def reclaimable(volume: dict[str, Any]) -> bool:
    """Ours, released by its claim, and meant to be deleted then."""
    return (volume["metadata"].get("annotations", {}).get(PROVISIONED_BY) == PROVISIONER
            and volume.get("status", {}).get("phase") in ("Released", "Failed")
            and volume["spec"].get("persistentVolumeReclaimPolicy") == "Delete")


class Provisioner:
    def __init__(self, api: client.ApiClient, volumes_dir: Path) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.volumes_dir = volumes_dir

    def _dicts(self, items: list[Any]) -> list[dict[str, Any]]:
        return [self.api.sanitize_for_serialization(item) for item in items]

    def reconcile(self) -> None:
        classes = {sc["metadata"]["name"]: sc for sc in self._dicts(
            self.storage.list_storage_class(_request_timeout=API_TIMEOUT).items)
            if sc.get("provisioner") == PROVISIONER}
        claims = self._dicts(self.core.list_persistent_volume_claim_for_all_namespaces(
            _request_timeout=API_TIMEOUT).items)
        for claim in claims:
            if wants_volume(claim, classes):
                self._provision(claim, classes[claim_class(claim)])
        for volume in self._dicts(self.core.list_persistent_volume(
                _request_timeout=API_TIMEOUT).items):
            if reclaimable(volume):
                self._delete(volume)

    def _provision(self, claim: dict[str, Any], storage_class: dict[str, Any]) -> None:
        path = self.volumes_dir / volume_name(claim)
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.core.create_persistent_volume(persistent_volume(claim, storage_class, str(path)),
                                               _request_timeout=API_TIMEOUT)
        except ApiException as err:
            if err.status == 409:
                return  # created on an earlier pass; the PV controller is catching up
            raise
        log.info("provisioned %s for claim %s/%s", volume_name(claim),
                 claim["metadata"]["namespace"], claim["metadata"]["name"])

    def _delete(self, volume: dict[str, Any]) -> None:
        name = volume["metadata"]["name"]
        try:
            self.core.delete_persistent_volume(name, _request_timeout=API_TIMEOUT)
        except ApiException as err:
            if err.status != 404:
                raise
        shutil.rmtree(self.volumes_dir / name, ignore_errors=True)
        log.info("deleted released volume %s", name)

    def run(self, stop: threading.Event) -> None:
        log.info("provisioner serving StorageClasses with provisioner %s", PROVISIONER)
        while not stop.is_set():
            try:
                self.reconcile()
            except Exception as err:  # the API may be restarting; never give up
                log.warning("provisioner pass failed (%s); retrying", err)
            stop.wait(POLL_SECONDS)
