"""Synthetic stores, made straight in the Kubernetes API with the platform's labels and the
annotations the runner writes (manifests.py, contract.py, timeline.py), so list-stores derives
each one's status as for a real store without Helm: ready (a storefront Deployment that KWOK
makes available, an Ingress), failed (the runner's reason), deleting, provisioning.

    python -m tests.synthetic --kubeconfig K --count 500   (make dev's kubeconfig line)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from storeplatform import contract, manifests, timeline

PREFIX = "store-syn-"
# (status, share): most stores ready, some busy, a few failed, as a real fleet looks.
MIX = (("ready", 0.70), ("provisioning", 0.14), ("failed", 0.10), ("deleting", 0.06))
REASONS = (
    "helm test (test order through the storefront) failed: pod store-x-checkout-test failed",
    "helm upgrade --install failed: context deadline exceeded",
    'helm upgrade --install failed: pods "x" is forbidden: exceeded quota',
)


def status_of(index: int, count: int) -> str:
    """The status of the index-th of count stores, following MIX, spread over the list
    (a fixed permutation of the indexes, so every run makes the same fleet)."""
    position = (index * 7919) % count  # 7919 is prime: a permutation for any count < 7919
    edge = 0.0
    for status, share in MIX:
        edge += share * count
        if position < edge:
            return status
    return MIX[0][0]


def steps(created: datetime, status: str, index: int) -> dict[str, str]:
    """A plausible timeline for the status (seconds vary per store)."""
    at = {"queued": created, "install": created + timedelta(seconds=2 + index % 3),
          "setup": created + timedelta(seconds=20 + index % 17),
          "test": created + timedelta(seconds=70 + index % 29)}
    if status == "ready":
        at["ready"] = at["test"] + timedelta(seconds=8 + index % 5)
    elif status == "failed":
        at = {k: v for k, v in at.items() if k != "test" or index % 3 == 0}
        at["failed"] = max(at.values()) + timedelta(seconds=30)
    elif status == "provisioning":
        at = {k: v for k, v in at.items() if k in ("queued", "install")}
    return {k: timeline.now_text(v) for k, v in at.items()}


def objects(index: int, count: int, now: datetime, prefix: str = PREFIX) -> list[dict[str, Any]]:
    """The namespace (and for ready stores its Deployment and Ingress) of one store."""
    name = f"{prefix}{index:04d}"
    status = status_of(index, count)
    created = now - timedelta(minutes=3 * (count - index))
    ns = manifests.namespace(name, "woocommerce", created)
    notes = ns["metadata"]["annotations"]
    if status != "deleting":  # deleting stores are gone from the timeline's view
        notes |= timeline.annotation(steps(created, status, index))
    if status == "ready":
        notes[contract.ANNOTATION_PHASE] = "ready"
    elif status == "failed":
        notes[contract.ANNOTATION_PHASE] = "failed"
        notes[contract.ANNOTATION_REASON] = REASONS[index % len(REASONS)]
    elif status == "deleting":
        notes[contract.ANNOTATION_PHASE] = "deleting"
    made = [ns]
    if status == "ready":
        labels = contract.store_labels(name) | {contract.LABEL_COMPONENT: "wordpress"}
        made.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"{name}-wordpress", "namespace": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         # Pod Security "restricted" is enforced in store namespaces.
                         "securityContext": {"runAsNonRoot": True, "runAsUser": 33,
                                             "seccompProfile": {"type": "RuntimeDefault"}},
                         "containers": [{"name": "wordpress", "image": "wordpress:synthetic",
                                         "securityContext": {
                                             "allowPrivilegeEscalation": False,
                                             "capabilities": {"drop": ["ALL"]}}}]}}}})
        made.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": f"{name}-wordpress", "namespace": name, "labels": labels},
            "spec": {"rules": [{"host": f"{name}.localhost", "http": {"paths": [{
                "path": "/", "pathType": "Prefix", "backend": {"service": {
                    "name": f"{name}-wordpress", "port": {"number": 80}}}}]}}]}})
    return made


def _create(api: client.ApiClient, obj: dict[str, Any]) -> None:
    kind = obj["kind"]
    namespace = obj["metadata"].get("namespace")
    try:
        if kind == "Namespace":
            client.CoreV1Api(api).create_namespace(obj, _request_timeout=30)
        elif kind == "Deployment":
            client.AppsV1Api(api).create_namespaced_deployment(namespace, obj,
                                                               _request_timeout=30)
        else:
            client.NetworkingV1Api(api).create_namespaced_ingress(namespace, obj,
                                                                  _request_timeout=30)
    except ApiException as err:
        if err.status != 409:
            raise


def create(api: client.ApiClient, count: int, prefix: str = PREFIX,
           workers: int = 8) -> dict[str, str]:
    """Make count synthetic stores named <prefix>NNNN; {name: expected status}."""
    now = datetime.now(UTC)
    per_store = [objects(i, count, now, prefix) for i in range(count)]

    def make(store: list[dict[str, Any]]) -> None:
        for obj in store:  # the namespace first
            _create(api, obj)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(make, per_store))
    return {store[0]["metadata"]["name"]: status_of(i, count)
            for i, store in enumerate(per_store)}


def delete(api: client.ApiClient, names: Iterable[str], workers: int = 8) -> None:
    core = client.CoreV1Api(api)

    def gone(name: str) -> None:
        try:
            core.delete_namespace(name, _request_timeout=30)
        except ApiException as err:
            if err.status != 404:
                raise

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(gone, names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--delete", action="store_true", help="remove them instead")
    args = parser.parse_args()
    api = config.new_client_from_config(config_file=args.kubeconfig)
    if args.delete:
        names = [ns.metadata.name for ns in client.CoreV1Api(api).list_namespace(
            label_selector=contract.MANAGED_SELECTOR).items if ns.metadata.name.startswith(PREFIX)]
        delete(api, names)
        print(json.dumps({"deleted": len(names)}))
    else:
        made = create(api, args.count)
        print(json.dumps({"created": len(made)}))


if __name__ == "__main__":
    main()
