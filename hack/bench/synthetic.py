"""Synthetic stores made straight in the API, so that helm is not what is measured: each a
namespace with the platform's labels (marked ready by a "runner"), the storefront's
Deployment (no replicas: no pods to run) and its Ingress, all with the store label."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from storeplatform import contract, engines, manifests

TIMEOUT = 30


def objects(store: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(namespace, deployment, ingress) of one store, as the platform and its chart label them."""
    namespace = manifests.namespace(store, engines.DEFAULT, datetime.now(UTC))
    namespace["metadata"]["annotations"][contract.ANNOTATION_PHASE] = "ready"
    component = engines.get(engines.DEFAULT).storefront_component
    labels = {contract.LABEL_STORE: store, contract.LABEL_COMPONENT: component,
              "app.kubernetes.io/instance": store, "app.kubernetes.io/managed-by": "Helm"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"{store}-{component}", "labels": labels},
        "spec": {"replicas": 0, "selector": {"matchLabels": {contract.LABEL_STORE: store}},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": component, "image": "wordpress:6.8-apache"}]}}}}
    ingress = {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": store, "labels": labels},
        "spec": {"rules": [{"host": f"{store}.localhost", "http": {"paths": [{
            "path": "/", "pathType": "Prefix", "backend": {"service": {
                "name": f"{store}-{component}", "port": {"number": 8080}}}}]}}]}}
    return namespace, deployment, ingress


def _create(api: client.ApiClient, store: str) -> None:
    namespace, deployment, ingress = objects(store)
    calls = ((client.CoreV1Api(api).create_namespace, (namespace,)),
             (client.AppsV1Api(api).create_namespaced_deployment, (store, deployment)),
             (client.NetworkingV1Api(api).create_namespaced_ingress, (store, ingress)))
    for call, args in calls:
        try:
            call(*args, _request_timeout=TIMEOUT)
        except ApiException as err:
            if err.status != 409:
                raise


def create(api: client.ApiClient, stores: Iterable[str], parallel: int = 8) -> None:
    """Make the stores (already there is fine), `parallel` at a time."""
    with ThreadPoolExecutor(parallel) as pool:
        for done in pool.map(lambda store: _create(api, store), stores):
            del done
