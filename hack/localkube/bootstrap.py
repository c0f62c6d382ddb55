"""Objects every local cluster starts with: KWOK's fake nodes and the default StorageClass."""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.options import KWOK_NODE_ANNOTATION, KWOK_NODE_ANNOTATION_VALUE

log = logging.getLogger("localkube.bootstrap")

PROVISIONER = "storeplatform.local/hostpath"
STORAGE_CLASS = "standard"
API_TIMEOUT = 10
# Large enough that quotas and requests, never node capacity, decide what runs.
NODE_RESOURCES = {"cpu": "256", "memory": "1Ti", "pods": "1000", "ephemeral-storage": "1Ti"}


def node_name(index: int) -> str:
    return f"localkube-node-{index}"


def fake_node(name: str) -> dict[str, Any]:
    """A Node KWOK keeps Ready; no taints, so every pod can land on it."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: KWOK_NODE_ANNOTATION_VALUE,
                            "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "type": "kwok"},
        },
        "spec": {},
        "status": {"allocatable": dict(NODE_RESOURCES), "capacity": dict(NODE_RESOURCES)},
    }


def default_storage_class() -> dict[str, Any]:
    """`standard`, the default class, served by the localkube hostPath provisioner."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def _create_if_absent(create: Any, body: dict[str, Any]) -> None:
    try:
        create(body=body, _request_timeout=API_TIMEOUT)
        log.info("created %s %s", body["kind"], body["metadata"]["name"])
    except ApiException as err:
        if err.status != 409:
            raise


def bootstrap(api: client.ApiClient, nodes: int) -> list[str]:
    """Creates the nodes and the StorageClass unless they exist; returns the node names."""
    core = client.CoreV1Api(api)
    names = [node_name(i) for i in range(nodes)]
    for name in names:
        _create_if_absent(core.create_node, fake_node(name))
    _create_if_absent(client.StorageV1Api(api).create_storage_class, default_storage_class())
    return names
